#include "multicast_gw/cli.h"

#include <iostream>

namespace meridian::mcast {
namespace {

using config::cli::json;
using config::cli::num;
using config::cli::print_table;
using config::cli::Rows;

/// Where a link is: an attachment (port, ".VLAN" when tagged) or a remote VTEP ("vtep 10.1.0.2").
std::string attachment(const json& e) {
  if (e.contains("vtep")) return "vtep " + e.value("vtep", "");
  return e.value("port", "") + (e.value("vlan", 0) ? "." + num(e, "vlan") : "");
}

void show_groups(const json& body) {
  Rows rows;
  for (const auto& g : body.value("groups", json::array())) {
    std::string sources;
    for (const auto& s : g.value("sources", json::array())) {
      if (!sources.empty()) sources += " ";
      sources += (s.value("forwarding", false) ? "" : "!") + s.value("source", "");
    }
    const bool exclude = g.value("mode", "") == "exclude";
    rows.push_back({num(g, "vni"), attachment(g), g.value("group", ""), g.value("mode", ""),
                    "v" + num(g, "compatibility"), sources.empty() ? "-" : sources,
                    exclude ? num(g, "group_expires_in_ms") : "-", num(g, "uptime_s")});
  }
  print_table({"VNI", "ATTACHMENT", "GROUP", "MODE", "COMPAT", "SOURCES (! blocked)", "EXPIRES-MS", "UP-S"}, rows);
  std::cout << rows.size() << " groups\n";
}

void show_querier(const json& body) {
  Rows rows;
  json links = body.value("interfaces", json::array());
  for (const auto& q : body.value("overlay", json::array())) {
    if (q.value("role", "") == "ingress" && q.contains("protocol")) links.push_back(q);
  }
  for (const auto& q : links) {
    rows.push_back({num(q, "vni"), attachment(q), q.value("protocol", "") + "v" + num(q, "version"),
                    q.value("address", ""), q.value("querier", ""), num(q, "groups"), num(q, "queries_sent"),
                    num(q, "queries_received"), num(q, "reports"), num(q, "joins"), num(q, "leaves")});
  }
  print_table({"VNI", "ATTACHMENT", "PROTOCOL", "OUR-ADDRESS", "QUERIER", "GROUPS", "Q-SENT", "Q-RECV", "REPORTS",
               "JOINS", "LEAVES"},
              rows);
  Rows overlay;
  for (const auto& q : body.value("overlay", json::array())) {
    if (q.value("role", "") != "edge") continue;
    std::string queriers;
    for (const auto& v : q.value("queriers", json::array())) queriers += (queriers.empty() ? "" : " ") + v.get<std::string>();
    overlay.push_back({num(q, "vni"), q.value("protocol", "") + "v" + num(q, "version"), num(q, "groups"),
                       queriers.empty() ? "(none: reports go to the flood list)" : queriers, num(q, "reports_sent")});
  }
  if (!overlay.empty()) {
    std::cout << "\nedge: our receivers reported into the overlay\n";
    print_table({"VNI", "PROTOCOL", "GROUPS", "OVERLAY-QUERIERS", "REPORTS-SENT"}, overlay);
  }
  Rows upstream;
  for (const auto& q : body.value("overlay", json::array())) {
    if (q.value("role", "") != "upstream") continue;
    if (!q.value("running", true)) {
      upstream.push_back({num(q, "vni"), attachment(q), "-", "configured, port not running: no proxy", "-", "-"});
      continue;
    }
    upstream.push_back({num(q, "vni"), attachment(q), q.value("protocol", "") + "v" + num(q, "version"),
                        q.value("configured", false) ? "configured" : "querier heard", num(q, "groups"),
                        num(q, "reports_sent")});
  }
  if (!upstream.empty()) {
    std::cout << "\nupstream proxy: the edges' membership reported to the production router\n";
    print_table({"VNI", "ATTACHMENT", "PROTOCOL", "WHY", "GROUPS", "REPORTS-SENT"}, upstream);
  }
  for (const auto& q : body.value("overlay", json::array())) {
    if (!q.contains("send_failures")) continue;
    std::cout << "vni " << num(q, "vni") << ": " << num(q, "send_failures") << " sends into the overlay failed, "
              << num(q, "edges_not_tracked") << " reports from VTEPs past the limit\n";
  }
  const json refused = body.value("refused", json::object());
  if (!refused.empty()) std::cout << "refused: " << refused.dump() << "\n";
}

void show_routes(const json& body) {
  Rows rows, outgoing;
  for (const auto& r : body.value("routes", json::array())) {
    const std::string sg = r.value("source", "") + ", " + r.value("group", "");
    const json in = r.value("incoming", json());
    rows.push_back({num(r, "vni"), sg, in.is_object() ? attachment(in) : in.is_string() ? in.get<std::string>() : "-",
                    r.contains("rate_kbps") ? num(r, "rate_kbps") : "-",
                    config::cli::human_rate(r, "measured_bps"), num(r, "packets"),
                    num(r, "uptime_s")});
    for (const auto& o : r.value("outgoing", json::array())) {
      outgoing.push_back({num(r, "vni"), sg, attachment(o), num(o, "packets"), num(o, "bytes"), num(o, "uptime_s"),
                          o.contains("expires_in_ms") ? num(o, "expires_in_ms") : "never", "admitted"});
    }
    for (const auto& n : r.value("denied", json::array())) {
      outgoing.push_back({num(r, "vni"), sg, n.value("egress", ""), "-", "-", "-", "-",
                          "denied (" + num(n, "in_use_kbps") + "+" + num(n, "rate_kbps") + ">" +
                              num(n, "budget_kbps") + " kbit/s)"});
    }
  }
  print_table({"VNI", "(S, G)", "INCOMING", "DECLARED-KBIT/S", "MEASURED-BIT/S", "PACKETS", "UP-S"}, rows);
  std::cout << rows.size() << " routes\n\n";
  print_table({"VNI", "(S, G)", "OUTGOING", "PACKETS", "BYTES", "UP-S", "EXPIRES-MS", "ADMISSION"}, outgoing);
  Rows budgets;
  for (const auto& b : body.value("budgets", json::array())) {
    budgets.push_back({num(b, "vni"), b.value("egress", ""), num(b, "in_use_kbps"),
                       b.value("budget_kbps", 0) ? num(b, "budget_kbps") : "unlimited"});
  }
  if (!budgets.empty()) {
    std::cout << "\n";
    print_table({"VNI", "EGRESS", "IN-USE-KBIT/S", "BUDGET-KBIT/S"}, budgets);
  }
}

}  // namespace

std::vector<config::cli::Command> cli_commands() {
  const std::map<std::string, std::string_view> vni{{"vni", config::cli::kVniChars}};
  return {{"igmp groups", "/api/v1/multicast/igmp/groups", vni, show_groups},
          {"mld groups", "/api/v1/multicast/mld/groups", vni, show_groups},
          {"igmp querier", "/api/v1/multicast/querier", {}, show_querier},
          {"mroutes", "/api/v1/multicast/routes", {}, show_routes}};
}

}  // namespace meridian::mcast
