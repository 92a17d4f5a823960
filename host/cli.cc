#include "host/cli.h"

#include <iostream>

namespace meridian::host {
namespace {

using config::cli::json;
using config::cli::num;
using config::cli::print_table;
using config::cli::Rows;

void show_host(const json& body) {
  Rows addresses, neighbors, clients;
  for (const auto& a : body.value("addresses", json::array())) {
    addresses.push_back({a.value("address", ""), num(a, "port"), a.value("owner", "")});
  }
  for (const auto& n : body.value("neighbors", json::array())) {
    neighbors.push_back({n.value("ip", ""), num(n, "port"), n.value("state", ""), n.value("mac", "-")});
  }
  const json per_client = body.value("clients", json::object());  // items() refers to it: keep it alive
  for (const auto& [name, c] : per_client.items()) {
    clients.push_back({name, num(c, "wanted"), num(c, "requests"), num(c, "answers"), num(c, "replies")});
  }
  print_table({"ADDRESS", "PORT", "OWNER"}, addresses);
  std::cout << "\n";
  print_table({"NEXT-HOP", "PORT", "STATE", "MAC"}, neighbors);
  std::cout << "\n";
  print_table({"CLIENT", "WANTED", "REQUESTS", "ANSWERS", "REPLIES"}, clients);
}

}  // namespace

std::vector<config::cli::Command> cli_commands() { return {{"host", "/api/v1/host", {}, show_host}}; }

}  // namespace meridian::host
