#include "ptp/cli.h"

#include <iostream>

namespace meridian::ptp {
namespace {

using config::cli::json;
using config::cli::num;

void show_ptp(const json& body) {
  const json gm = body.value("grandmaster", json::object());
  std::cout << "clock " << body.value("clock_identity", "") << "  profile " << body.value("profile", "") << "  domain "
            << num(body, "domain") << "  class " << num(body, "clock_class") << "  priority " << num(body, "priority1")
            << "/" << num(body, "priority2") << (body.value("slave_only", false) ? "  slave-only" : "") << "\n";
  std::cout << "grandmaster " << gm.value("identity", "") << " (class " << num(gm, "clock_class") << ", priority "
            << num(gm, "priority1") << "/" << num(gm, "priority2") << ")  parent " << body.value("parent_port", "")
            << "  steps removed " << num(body, "steps_removed") << "\n";
  std::cout << "offset " << num(body, "offset_from_master_ns") << " ns  path delay " << num(body, "mean_path_delay_ns")
            << " ns  frequency " << body.value("frequency_ppb", 0.0) << " ppb  servo " << body.value("servo", "") << " "
            << body.value("servo_state", "") << (body.value("holdover", false) ? " (holdover)" : "")
            << "  unicast clients " << num(body, "unicast_clients") << "\n";
  config::cli::Rows rows;
  auto total = [](const json& counts) {
    uint64_t n = 0;
    for (const auto& [k, v] : counts.items()) n += v.get<uint64_t>();
    return std::to_string(n);
  };
  for (const auto& p : body.value("ports", json::array())) {
    // Timestamp source, with kernel or NIC stamp misses when there are any.
    std::string stamps = p.value("timestamping", "");
    for (const char* source : {"kernel_timestamps", "hardware_timestamps"}) {
      if (!p.contains(source)) continue;
      const json& k = p[source];
      const uint64_t missed = k.value("rx_missed", uint64_t{0}) + k.value("tx_missed", uint64_t{0});
      if (missed) stamps += " (" + std::to_string(missed) + " missed)";
    }
    rows.push_back({p.value("name", ""), p.value("port_identity", ""), p.value("state", ""), p.value("transport", ""),
                    p.value("delay_mechanism", ""), stamps, total(p.value("rx", json::object())),
                    total(p.value("tx", json::object())), total(p.value("drops", json::object()))});
  }
  config::cli::print_table({"PORT", "IDENTITY", "STATE", "TRANSPORT", "DELAY", "STAMPS", "RX", "TX", "DROPS"}, rows);
}

}  // namespace

std::vector<config::cli::Command> cli_commands() { return {{"ptp", "/api/v1/ptp", {}, show_ptp}}; }

}  // namespace meridian::ptp
