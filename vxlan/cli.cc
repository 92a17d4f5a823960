#include "vxlan/cli.h"

#include <iostream>

namespace meridian::vxlan {
namespace {

using config::cli::json;
using config::cli::num;
using config::cli::print_table;
using config::cli::Rows;

void show_fdb(const json& body) {
  Rows rows;
  for (const auto& e : body.value("entries", json::array())) {
    const bool remote = e.value("type", "") == "remote";
    rows.push_back({num(e, "vni"), e.value("mac", ""), e.value("type", ""),
                    remote ? e.value("vtep", "") : e.value("port", "") + (e.value("vlan", 0) ? "." + num(e, "vlan") : ""),
                    e.value("static", false) ? "static" : "dynamic", num(e, "age_seconds")});
  }
  print_table({"VNI", "MAC", "TYPE", "WHERE", "KIND", "AGE-S"}, rows);
  std::cout << rows.size() << " entries\n";
}

void show_neighbors(const json& body) {
  Rows rows;
  for (const auto& n : body.value("neighbors", json::array())) {
    rows.push_back({num(n, "vni"), n.value("ip", ""), n.value("mac", ""), n.value("static", false) ? "static" : "learned"});
  }
  print_table({"VNI", "IP", "MAC", "KIND"}, rows);
}

void show_vteps(const json& body) {
  Rows local;
  for (const auto& l : body.value("local", json::array())) {
    local.push_back({l.value("port", ""), l.value("ipv4", "-"), l.value("ipv6", "-"), l.value("mac", "")});
  }
  print_table({"LOCAL-PORT", "IPV4", "IPV6", "MAC"}, local);
  std::cout << "\n";
  Rows remote;
  for (const auto& r : body.value("remote", json::array())) {
    remote.push_back({r.value("ip", ""), r.value("state", ""), r.value("next_hop", "-"), r.value("port", "-"),
                      r.value("mac", "-"), r.value("flood", false) ? "yes" : "no", num(r, "fdb_entries")});
  }
  print_table({"REMOTE-VTEP", "STATE", "NEXT-HOP", "PORT", "MAC", "FLOOD", "FDB"}, remote);
}

void show_bridge_domains(const json& body) {
  Rows rows, drops;
  for (const auto& b : body.value("bridge_domains", json::array())) {
    const json c = b.value("counters", json::object());
    rows.push_back({num(b, "vni"), b.value("name", ""), num(b, "fdb_entries"), num(c, "encap_packets"),
                    num(c, "decap_packets"), num(c, "flood_packets"), num(c, "replicas"), num(c, "arp_suppressed"),
                    num(c, "learns"), num(c, "moves"), num(c, "ages")});
    const json reasons = c.value("drops", json::object());
    for (const auto& [reason, count] : reasons.items()) drops.push_back({num(b, "vni"), reason, count.dump()});
  }
  print_table({"VNI", "NAME", "FDB", "ENCAP", "DECAP", "FLOOD", "REPLICAS", "ARP-SUPPR", "LEARNS", "MOVES", "AGES"},
              rows);
  std::cout << "\n";
  if (drops.empty()) std::cout << "no drops\n";
  else print_table({"VNI", "DROP-REASON", "PACKETS"}, drops);
}

void print_cleared(const json&) { std::cout << "counters cleared\n"; }

}  // namespace

std::vector<config::cli::Command> cli_commands() {
  const std::map<std::string, std::string_view> vni{{"vni", config::cli::kVniChars}};
  return {{"fdb", "/api/v1/vxlan/fdb", {{"vni", config::cli::kVniChars}, {"mac", config::cli::kMacChars}}, show_fdb},
          {"neighbors", "/api/v1/vxlan/neighbors", vni, show_neighbors},
          {"vteps", "/api/v1/vxlan/vteps", {}, show_vteps},
          {"vxlan", "/api/v1/vxlan/bridge_domains", vni, show_bridge_domains},
          {"vxlan", "/api/v1/vxlan/counters/clear", vni, print_cleared, nullptr, "clear", "POST"}};
}

}  // namespace meridian::vxlan
