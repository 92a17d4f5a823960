#include "multicast_gw/model.h"

#include <algorithm>
#include <map>

#include "config/json_reader.h"
#include "vxlan/model.h"

namespace meridian::config {

std::string to_string(const MulticastEgress& e) {
  if (e.vtep) return "vtep " + to_string(*e.vtep);
  return e.vlan ? e.port + "." + std::to_string(e.vlan) : e.port;
}

namespace {

constexpr unsigned kMaxRateKbps = 400'000'000;  // 400 Gbit/s

/// {"port": P, "vlan": V} or {"vtep": IP}, read from an object that has other fields too.
void read_egress(ObjectReader& r, const nlohmann::json& j, MulticastEgress& e) {
  const bool port = j.contains("port"), vtep = j.contains("vtep");
  if (port == vtep) {
    r.error(r.field_path(port ? "vtep" : "port"), "expected either \"port\" (an attachment) or \"vtep\"");
  }
  r.read_string("port", e.port);
  r.read_uint("vlan", e.vlan, 0, 4094);
  if (vtep && j.contains("vlan")) r.error(r.field_path("vlan"), "a VTEP egress has no VLAN");
  IpAddress a;
  if (read_typed(r, "vtep", a, parse_ip, "an IP address")) {
    if (a.is_multicast() || a.is_unspecified()) r.error(r.field_path("vtep"), "expected a unicast VTEP address");
    else e.vtep = a;
  }
}

std::optional<IpAddress> read_source(ObjectReader& r) {
  IpAddress a;
  if (!read_typed(r, "source", a, parse_ip, "an IP address")) return std::nullopt;
  if (a.is_multicast() || a.is_unspecified()) {
    r.error(r.field_path("source"), "expected a unicast source address");
    return std::nullopt;
  }
  return a;
}

void parse_bd(const nlohmann::json& j, const std::string& path, MulticastBridgeDomain& b, FieldErrors& errors) {
  ObjectReader r(j, path, errors);
  if (!r.ok()) return;
  r.read_uint("vni", b.vni, 1, kMaxVni, true);
  r.read_raw("mode", [&](const nlohmann::json& v, const std::string& p) {
    if (v == "snoop" || v == "flood") b.mode = v.get<std::string>();
    else r.error(p, "expected \"snoop\" or \"flood\"");
  });
  r.read_raw("querier", [&](const nlohmann::json& v, const std::string& p) {
    ObjectReader q(v, p, errors);
    if (!q.ok()) return;
    q.read_bool("enabled", b.querier.enabled);
    IpAddress a;
    if (read_typed(q, "ipv4", a, parse_ip, "an IPv4 address")) {
      if (!a.is_v4() || a.is_multicast()) q.error(q.field_path("ipv4"), "expected a unicast IPv4 address (or 0.0.0.0)");
      else b.querier.ipv4 = a;
    }
    if (read_typed(q, "ipv6", a, parse_ip, "an IPv6 address")) {
      if (a.is_v4() || a.bytes[0] != 0xfe || (a.bytes[1] & 0xc0) != 0x80) {
        q.error(q.field_path("ipv6"), "expected a link-local IPv6 address (fe80::/10): MLD queries come from one");
      } else {
        b.querier.ipv6 = a;
      }
    }
  });
  r.read_uint("igmp_version", b.igmp_version, 1, 3);
  r.read_uint("mld_version", b.mld_version, 1, 2);
  // RFC 3376 §8: robustness 2..7 (1 is allowed but not advised; 0 never);
  // QQIC and Max Resp Code bound the intervals.
  r.read_uint("robustness", b.robustness, 1, 7);
  r.read_uint("query_interval_s", b.query_interval_s, 1, 31744);
  r.read_uint("query_response_interval_ms", b.query_response_interval_ms, 100, 3174400);
  r.read_uint("last_member_query_interval_ms", b.last_member_query_interval_ms, 100, 3174400);
  r.read_uint("last_member_query_count", b.last_member_query_count, 1, 7);
  r.read_bool("fast_leave", b.fast_leave);
  if (j.contains("ssm_ranges")) {
    read_typed_array(r, "ssm_ranges", b.ssm_ranges, mcast::parse_ssm_range,
                     "a multicast prefix such as \"232.0.0.0/8\" or \"ff3x::/32\"", 16);
  }
  r.read_uint("max_groups", b.max_groups, 1, 65536);
  r.read_uint("max_sources", b.max_sources, 1, 1024);
  r.read_array("static_subscriptions", [&](const nlohmann::json& v, const std::string& p) {
    ObjectReader o(v, p, errors);
    if (!o.ok()) return;
    StaticSubscription sub;
    if (read_typed(o, "group", sub.group, parse_ip, "a multicast group address", true) && !sub.group.is_multicast()) {
      o.error(o.field_path("group"), "expected a multicast group address");
    }
    sub.source = read_source(o);
    read_egress(o, v, sub.to);
    b.static_subscriptions.push_back(std::move(sub));
  }, false, 4096);
  r.read_array("flows", [&](const nlohmann::json& v, const std::string& p) {
    ObjectReader o(v, p, errors);
    if (!o.ok()) return;
    MulticastFlow f;
    auto prefix = [](const std::string& t) -> std::optional<IpPrefix> {
      if (t.find('/') == std::string::npos) {
        auto a = parse_ip(t);
        if (!a) return std::nullopt;
        return IpPrefix{*a, static_cast<uint8_t>(a->is_v4() ? 32 : 128)};
      }
      return parse_prefix(t, false);
    };
    if (read_typed(o, "group", f.group, prefix, "a multicast group or range such as \"239.1.1.0/24\"", true) &&
        !f.group.address.is_multicast()) {
      o.error(o.field_path("group"), "expected a multicast group or range");
    }
    f.source = read_source(o);
    o.read_bool("measured", f.measured);
    o.read_uint("rate_kbps", f.rate_kbps, 1, kMaxRateKbps, true);
    b.flows.push_back(std::move(f));
  }, false, 4096);
  r.read_array("budgets", [&](const nlohmann::json& v, const std::string& p) {
    ObjectReader o(v, p, errors);
    if (!o.ok()) return;
    MulticastBudget budget;
    read_egress(o, v, budget.egress);
    o.read_uint("rate_kbps", budget.rate_kbps, 1, kMaxRateKbps, true);
    b.budgets.push_back(std::move(budget));
  }, false, 4096);
  r.read_uint("default_budget_kbps", b.default_budget_kbps, 0, kMaxRateKbps);
  r.read_raw("upstream", [&](const nlohmann::json& v, const std::string& p) {
    ObjectReader o(v, p, errors);
    if (!o.ok()) return;
    MulticastEgress e;
    o.read_string("port", e.port, true);
    o.read_uint("vlan", e.vlan, 0, 4094);
    b.upstream = e;
  });
  r.read_raw("roles", [&](const nlohmann::json& v, const std::string& p) {
    if (!v.is_array() || v.empty()) return r.error(p, "expected a non-empty array of \"ingress\" and \"edge\"");
    bool ingress = false, edge = false;
    for (size_t i = 0; i < v.size(); ++i) {
      bool& role = v[i] == "ingress" ? ingress : edge;
      if (v[i] != "ingress" && v[i] != "edge") return r.error(pointer_append(p, i), "expected \"ingress\" or \"edge\"");
      if (role) return r.error(pointer_append(p, i), "listed twice");
      role = true;
    }
    b.ingress = ingress;
    b.edge = edge;
  });
}

}  // namespace

void parse_multicast(const nlohmann::json& j, const std::string& path, MulticastConfig& out, FieldErrors& errors) {
  ObjectReader r(j, path, errors);
  if (!r.ok()) return;
  r.read_array("bridge_domains", [&](const nlohmann::json& e, const std::string& p) {
    out.bridge_domains.emplace_back();
    parse_bd(e, p, out.bridge_domains.back(), errors);
  }, false, kMaxBridgeDomains);
}

nlohmann::json to_json(const MulticastConfig& mc) {
  nlohmann::json bds = nlohmann::json::array();
  for (const auto& b : mc.bridge_domains) {
    nlohmann::json q = {{"enabled", b.querier.enabled}, {"ipv4", to_string(b.querier.ipv4)}};
    if (b.querier.ipv6) q["ipv6"] = to_string(*b.querier.ipv6);
    nlohmann::json ssm = nlohmann::json::array();
    for (const auto& s : b.ssm_ranges) ssm.push_back(mcast::to_string(s));
    auto egress = [](nlohmann::json into, const MulticastEgress& e) {
      if (e.vtep) into["vtep"] = to_string(*e.vtep);
      else into.update({{"port", e.port}, {"vlan", e.vlan}});
      return into;
    };
    nlohmann::json statics = nlohmann::json::array(), flows = nlohmann::json::array(), budgets = nlohmann::json::array();
    for (const auto& st : b.static_subscriptions) {
      nlohmann::json j = {{"group", to_string(st.group)}};
      if (st.source) j["source"] = to_string(*st.source);
      statics.push_back(egress(std::move(j), st.to));
    }
    for (const auto& f : b.flows) {
      nlohmann::json j = {{"group", to_string(f.group)}, {"rate_kbps", f.rate_kbps}};
      if (f.source) j["source"] = to_string(*f.source);
      if (f.measured) j["measured"] = true;
      flows.push_back(std::move(j));
    }
    for (const auto& bu : b.budgets) budgets.push_back(egress({{"rate_kbps", bu.rate_kbps}}, bu.egress));
    nlohmann::json roles = nlohmann::json::array();
    if (b.ingress) roles.push_back("ingress");
    if (b.edge) roles.push_back("edge");
    bds.push_back({{"vni", b.vni},
                   {"mode", b.mode},
                   {"querier", q},
                   {"igmp_version", b.igmp_version},
                   {"mld_version", b.mld_version},
                   {"robustness", b.robustness},
                   {"query_interval_s", b.query_interval_s},
                   {"query_response_interval_ms", b.query_response_interval_ms},
                   {"last_member_query_interval_ms", b.last_member_query_interval_ms},
                   {"last_member_query_count", b.last_member_query_count},
                   {"fast_leave", b.fast_leave},
                   {"ssm_ranges", ssm},
                   {"max_groups", b.max_groups},
                   {"max_sources", b.max_sources},
                   {"roles", roles},
                   {"static_subscriptions", statics},
                   {"flows", flows},
                   {"budgets", budgets},
                   {"default_budget_kbps", b.default_budget_kbps}});
    if (b.upstream) bds.back()["upstream"] = egress(nlohmann::json::object(), *b.upstream);
  }
  return {{"bridge_domains", bds}};
}

void validate_multicast(const MulticastConfig& mc, const Config& config, FieldErrors& errors, FieldErrors&) {
  const VxlanConfig& vx = vxlan_section(config);
  std::map<unsigned, size_t> seen;
  for (size_t i = 0; i < mc.bridge_domains.size(); ++i) {
    const auto& b = mc.bridge_domains[i];
    const std::string base = pointer_append("/multicast/bridge_domains", i);
    bool known = false;
    for (const auto& d : vx.bridge_domains) known = known || d.vni == b.vni;
    if (!known) errors.push_back({base + "/vni", "no bridge domain with VNI " + std::to_string(b.vni) + " in /vxlan"});
    if (!seen.emplace(b.vni, i).second) {
      errors.push_back({base + "/vni", "VNI " + std::to_string(b.vni) + " already at " +
                                           pointer_append("/multicast/bridge_domains", seen[b.vni])});
    }
    const BridgeDomainConfig* bd = nullptr;
    for (const auto& d : vx.bridge_domains) {
      if (d.vni == b.vni) bd = &d;
    }
    // An egress is one of this bridge domain's attachments or flood-list VTEPs.
    auto check_egress = [&](const MulticastEgress& e, const std::string& at) {
      if (!bd) return;
      if (e.vtep && !b.ingress) {
        // Without the ingress role data floods to every VTEP: nothing to subscribe or budget.
        errors.push_back({at + "/vtep", "a remote VTEP egress needs the ingress role (/roles)"});
      } else if (e.vtep) {
        if (std::find(bd->flood.begin(), bd->flood.end(), *e.vtep) == bd->flood.end()) {
          errors.push_back({at + "/vtep", to_string(*e.vtep) + " is not on the flood list of VNI " + std::to_string(b.vni)});
        }
      } else if (std::find(bd->attachments.begin(), bd->attachments.end(), Attachment{e.port, e.vlan}) ==
                 bd->attachments.end()) {
        errors.push_back({at + "/port", to_string(e) + " is not an attachment of VNI " + std::to_string(b.vni)});
      }
    };
    for (size_t k = 0; k < b.static_subscriptions.size(); ++k) {
      const auto& st = b.static_subscriptions[k];
      const std::string at = pointer_append(base + "/static_subscriptions", k);
      check_egress(st.to, at);
      if (st.source && st.source->family != st.group.family) {
        errors.push_back({at + "/source", "not the group's address family"});
      }
    }
    for (size_t k = 0; k < b.flows.size(); ++k) {
      const auto& f = b.flows[k];
      if (f.source && f.source->family != f.group.address.family) {
        errors.push_back({pointer_append(base + "/flows", k) + "/source", "not the group's address family"});
      }
    }
    for (size_t k = 0; k < b.budgets.size(); ++k) {
      check_egress(b.budgets[k].egress, pointer_append(base + "/budgets", k));
      for (size_t e = 0; e < k; ++e) {
        if (to_string(b.budgets[e].egress) == to_string(b.budgets[k].egress)) {
          errors.push_back({pointer_append(base + "/budgets", k), "a budget for " + to_string(b.budgets[k].egress) +
                                                                      " is already at " +
                                                                      pointer_append(base + "/budgets", e)});
        }
      }
    }
    if (b.upstream) {
      check_egress(*b.upstream, base + "/upstream");
      if (!b.ingress) errors.push_back({base + "/upstream", "an upstream attachment needs the ingress role (/roles)"});
    }
    // RFC 3376 §8.3: the response interval fits inside the query interval.
    if (uint64_t{b.query_response_interval_ms} >= uint64_t{b.query_interval_s} * 1000) {
      errors.push_back({base + "/query_response_interval_ms", "must be shorter than query_interval_s"});
    }
  }
}

SectionSpec multicast_section_spec() {
  return make_section_spec<MulticastConfig>("multicast", parse_multicast, to_json, validate_multicast);
}

}  // namespace meridian::config
