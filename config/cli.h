// meridianctl's core: table printing, cell formatting, and the shape of a
// `meridianctl VERB OBJECT` command. Each module writes its own commands in
// its folder (<module>/cli.cc); the catalog of built-in modules
// (dataplane/module_catalog.cc) hands them to meridianctl. DPDK-free.
#pragma once

#include <map>
#include <string>
#include <string_view>
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

/// What a filter's value may hold: it goes into the query string as it is.
inline constexpr std::string_view kVniChars = "0123456789abcdefABCDEF:";  // as before: the server says what is wrong
inline constexpr std::string_view kMacChars = "0123456789abcdefABCDEF:";
inline constexpr std::string_view kPortNameChars = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_.-";

/// `meridianctl VERB OBJECT [FILTER VALUE]...`: a REST request and how to
/// print its answer (`show`: a GET; `clear`: a POST).
struct Command {
  std::string object;
  std::string path;
  /// Word pairs after the object ("vni N"), sent as a query: each filter's
  /// name and the characters its value may hold (kVniChars, ...).
  std::map<std::string, std::string_view> filters;
  void (*print)(const json&) = nullptr;  // null: the JSON body
  const char* member = nullptr;          // shown: this member of the body, not all of it
  const char* verb = "show";
  const char* method = "GET";
};

}  // namespace meridian::config::cli
