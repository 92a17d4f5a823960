#include "multicast_gw/model.h"

#include <map>

#include "config/json_reader.h"
#include "vxlan/model.h"

namespace meridian::config {

namespace {

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
                   {"roles", roles}});
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
