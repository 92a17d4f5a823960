#include "qos/cli.h"

#include <iostream>

namespace meridian::qos {
namespace {

using config::cli::human_rate;
using config::cli::json;
using config::cli::num;

void show_classes(const json& body) {
  bool first = true;
  for (const auto& p : body.value("ports", json::array())) {
    if (!first) std::cout << "\n";
    first = false;
    std::cout << "port " << p.value("port", "") << ": default class " << p.value("default_class", "") << ", "
              << num(p, "rules") << " rules, run by worker " << num(p, "owner_worker")
              << (p.value("stats_fresh", false) ? "" : " (counters from the last sample)") << "\n";
    config::cli::Rows rows;
    for (const auto& c : p.value("classes", json::array())) {
      const json st = c.value("stats", json::object());
      rows.push_back({c.value("id", ""), c["parent"].is_string() ? c["parent"].get<std::string>() : "-",
                      c.value("rate", ""), c.value("ceil", ""), num(c, "prio"), human_rate(st, "rate_estimate_bps"),
                      num(st, "packets"), num(st, "bytes"), num(st, "drops"), num(st, "overlimits"), num(st, "lends"),
                      num(st, "borrows"), num(st, "tokens_bytes"), num(st, "ctokens_bytes"),
                      c.value("leaf", false) ? num(st, "queue_packets") : "-", st.value("mode", "")});
    }
    config::cli::print_table({"CLASS", "PARENT", "RATE", "CEIL", "PRIO", "NOW-BPS", "PACKETS", "BYTES", "DROPS",
                              "OVERLIMITS", "LENDS", "BORROWS", "TOKENS", "CTOKENS", "QUEUE", "MODE"},
                             rows);
  }
  if (first) std::cout << "no QoS trees\n";
}

}  // namespace

std::vector<config::cli::Command> cli_commands() {
  return {{"qos", "/api/v1/qos/classes", {{"port", config::cli::kPortNameChars}}, show_classes}};
}

}  // namespace meridian::qos
