// meridianctl's core: table printing, cell formatting, and the shape of a
// `meridianctl VERB OBJECT` command. Each module writes its own commands in
// its folder (<module>/cli.cc); the catalog of built-in modules
// (dataplane/module_catalog.cc) hands them to meridianctl. DPDK-free.
#pragma once

#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace meridian::config::cli {

using nlohmann::json;
using Rows = std::vector<std::vector<std::string>>;

/// Columns padded to their widest cell, two spaces apart, on stdout.
void print_table(const std::vector<std::string>& header, const Rows& rows);
/// A member as a cell: strings as they are, numbers as JSON writes them, "-" when absent.
std::string num(const json& j, const char* key);
std::string fixed(double v, int digits);
/// Bits/s as an operator reads them: 30.0G, 512.3M, 9.6K.
std::string human_rate(const json& j, const char* key);

/// `meridianctl VERB OBJECT [FILTER VALUE]...`: a REST request and how to
/// print its answer (`show`: a GET; `clear`: a POST).
struct Command {
  std::string object;
  std::string path;
  std::set<std::string> filters;         // word pairs after the object ("vni", "mac", "port"), sent as a query
  void (*print)(const json&) = nullptr;  // null: the JSON body
  const char* member = nullptr;          // shown: this member of the body, not all of it
  const char* verb = "show";
  const char* method = "GET";
};

}  // namespace meridian::config::cli
