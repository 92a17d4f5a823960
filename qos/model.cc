#include "qos/model.h"

#include <algorithm>
#include <map>
#include <set>

#include "config/json_reader.h"
#include "config/units.h"

namespace meridian::config {
namespace {

/// A rate or size: a string with a unit, or a bare integer (bit/s, bytes).
template <class Parse>
bool read_quantity(ObjectReader& r, const std::string& key, uint64_t& out, Parse parse, const char* what,
                   bool required = false) {
  bool ok = false;
  r.read_raw(key, [&](const nlohmann::json& v, const std::string& p) {
    std::optional<uint64_t> value;
    if (v.is_number_unsigned()) value = v.get<uint64_t>();
    else if (v.is_string() && v.get_ref<const std::string&>().size() <= 32) value = parse(v.get<std::string>());
    if (!value) {
      r.error(p, std::string("expected ") + what);
      return;
    }
    out = *value;
    ok = true;
  }, required);
  return ok;
}

bool read_rate(ObjectReader& r, const std::string& key, uint64_t& out, bool required = false) {
  if (!read_quantity(r, key, out, parse_rate, "a rate such as \"30gbit\", \"500mbit\" or \"10mbps\" (bytes/s)",
                     required)) {
    return false;
  }
  if (out < 8 || out > 10'000'000'000'000ULL) {
    r.error(r.field_path(key), "rate must be between 8bit and 10tbit");
    return false;
  }
  return true;
}

bool read_size(ObjectReader& r, const std::string& key, uint64_t& out, uint64_t max, bool required = false) {
  if (!read_quantity(r, key, out, parse_size, "a size such as \"1500b\", \"64kb\" or \"2mb\"", required)) {
    return false;
  }
  if (out > max) {
    r.error(r.field_path(key), "at most " + format_size(max));
    return false;
  }
  return true;
}

void parse_ecn(const nlohmann::json& j, const std::string& path, QosEcn& e, FieldErrors& errors) {
  ObjectReader r(j, path, errors);
  if (!r.ok()) return;
  read_size(r, "kmin", e.kmin_bytes, 1ULL << 32);
  read_size(r, "kmax", e.kmax_bytes, 1ULL << 32, true);
  r.read_raw("pmax", [&](const nlohmann::json& v, const std::string& p) {
    if (!v.is_number() || !(v.get<double>() > 0 && v.get<double>() <= 1)) {
      r.error(p, "expected a probability in (0, 1]");
      return;
    }
    e.pmax = v.get<double>();
  });
  if (j.contains("kmax") && e.kmin_bytes >= e.kmax_bytes) r.error(r.field_path("kmax"), "must be above kmin");
}

void parse_class(const nlohmann::json& j, const std::string& path, QosClass& c, FieldErrors& errors) {
  ObjectReader r(j, path, errors);
  if (!r.ok()) return;
  if (r.read_string("id", c.id, true, 32) && c.id.empty()) r.error(r.field_path("id"), "must not be empty");
  r.read_string("parent", c.parent, false, 32);
  read_rate(r, "rate", c.rate_bps, true);
  uint64_t v = 0;
  if (read_rate(r, "ceil", v)) c.ceil_bps = v;
  if (read_size(r, "burst", v, 1ULL << 32)) c.burst_bytes = v;
  if (read_size(r, "cburst", v, 1ULL << 32)) c.cburst_bytes = v;
  r.read_uint("prio", c.prio, 0, 7);
  unsigned q = 0;
  if (r.read_uint("quantum", q, 64, 1u << 24)) c.quantum = q;
  r.read_uint("overhead", c.overhead, 0, 256);
  r.read_uint("limit_packets", c.limit_packets, 1, 1'000'000);
  if (read_size(r, "limit_bytes", v, 1ULL << 32)) {
    if (v < 64) r.error(r.field_path("limit_bytes"), "at least 64b");
    else c.limit_bytes = v;
  }
  unsigned dscp = 0;
  if (r.read_uint("dscp_remark", dscp, 0, 63)) c.dscp_remark = dscp;
  r.read_raw("ecn", [&](const nlohmann::json& e, const std::string& p) {
    QosEcn ecn;
    const size_t before = errors.size();
    parse_ecn(e, p, ecn, errors);
    if (errors.size() == before) c.ecn = ecn;
  });
  if (c.ceil_bps && c.rate_bps && *c.ceil_bps < c.rate_bps) {
    r.error(r.field_path("ceil"), "ceil (" + format_rate(*c.ceil_bps) + ") is below rate (" +
                                      format_rate(c.rate_bps) + ")");
  }
}

std::optional<PortRange> parse_port_range(const std::string& s) {
  const size_t dash = s.find('-');
  auto num = [](const std::string& t) -> std::optional<uint16_t> {
    if (t.empty() || t.size() > 5 || t.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    const unsigned long v = std::stoul(t);
    if (v > 65535) return std::nullopt;
    return static_cast<uint16_t>(v);
  };
  auto first = num(s.substr(0, dash));
  auto last = dash == std::string::npos ? first : num(s.substr(dash + 1));
  if (!first || !last || *first > *last) return std::nullopt;
  return PortRange{*first, *last};
}

std::string to_string(const PortRange& r) {
  return r.first == r.last ? std::to_string(r.first) : std::to_string(r.first) + "-" + std::to_string(r.last);
}

const std::map<std::string, uint8_t>& protocol_names() {
  static const std::map<std::string, uint8_t> names = {{"icmp", 1}, {"tcp", 6}, {"udp", 17}, {"icmpv6", 58}};
  return names;
}

void parse_flow(ObjectReader& r, FlowMatch& f) {
  r.read_raw("protocol", [&](const nlohmann::json& v, const std::string& p) {
    if (v.is_number_unsigned() && v.get<uint64_t>() <= 255) {
      f.protocol = static_cast<uint8_t>(v.get<uint64_t>());
    } else if (v.is_string() && protocol_names().count(v.get<std::string>())) {
      f.protocol = protocol_names().at(v.get<std::string>());
    } else {
      r.error(p, "expected tcp, udp, icmp, icmpv6 or a protocol number 0..255");
    }
  });
  for (auto [key, out] : {std::pair{"src", &f.src}, std::pair{"dst", &f.dst}}) {
    std::string text;
    if (!r.read_string(key, text, false, 64)) continue;
    auto prefix = parse_prefix(text, false);
    if (!prefix) r.error(r.field_path(key), "expected a prefix without host bits, e.g. 10.0.0.0/8 or fd00::/16");
    else *out = prefix;
  }
  for (const auto& field : {std::pair{"src_ports", &f.src_ports}, std::pair{"dst_ports", &f.dst_ports}}) {
    std::optional<PortRange>* out = field.second;
    r.read_raw(field.first, [&](const nlohmann::json& v, const std::string& p) {
      std::optional<PortRange> range;
      if (v.is_number_unsigned() && v.get<uint64_t>() <= 65535) {
        range = PortRange{static_cast<uint16_t>(v.get<uint64_t>()), static_cast<uint16_t>(v.get<uint64_t>())};
      } else if (v.is_string()) {
        range = parse_port_range(v.get<std::string>());
      }
      if (!range) r.error(p, "expected a port or an inclusive range \"first-last\"");
      else *out = range;
    });
  }
  if ((f.src_ports || f.dst_ports) && f.protocol && *f.protocol != 6 && *f.protocol != 17) {
    r.error(r.path(), "ports need protocol tcp or udp");
  }
  if (f.src && f.dst && f.src->address.is_v4() != f.dst->address.is_v4()) {
    r.error(r.field_path("dst"), "must be the same address family as src");
  }
}

void read_small_list(ObjectReader& r, const std::string& key, std::vector<unsigned>& out, unsigned max) {
  r.read_array(key, [&](const nlohmann::json& v, const std::string& p) {
    // is_number_integer: documents built in code hold signed integers.
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<uint64_t>() > max) {
      r.error(p, "expected an integer 0.." + std::to_string(max));
      return;
    }
    out.push_back(static_cast<unsigned>(v.get<uint64_t>()));
  }, false, max + 1);
}

void parse_rule(const nlohmann::json& j, const std::string& path, QosRule& rule, FieldErrors& errors) {
  ObjectReader r(j, path, errors);
  if (!r.ok()) return;
  r.read_string("class", rule.class_id, true, 32);
  read_small_list(r, "dscp", rule.dscp, 63);
  read_small_list(r, "pcp", rule.pcp, 7);
  unsigned vni = 0;
  if (r.read_uint("vni", vni, 0, (1u << 24) - 1)) rule.vni = vni;
  std::string port;
  if (r.read_string("ingress_port", port, false, 32)) rule.ingress_port = port;
  parse_flow(r, rule.outer);
  r.read_raw("inner", [&](const nlohmann::json& v, const std::string& p) {
    ObjectReader inner(v, p, errors);
    if (!inner.ok()) return;
    FlowMatch f;
    parse_flow(inner, f);
    rule.inner = f;
  });
}

void parse_port(const nlohmann::json& j, const std::string& path, QosPort& q, FieldErrors& errors) {
  ObjectReader r(j, path, errors);
  if (!r.ok()) return;
  r.read_string("port", q.port, true, 32);
  r.read_bool("strict", q.strict);
  r.read_string("default_class", q.default_class, true, 32);
  r.read_array("classes", [&](const nlohmann::json& v, const std::string& p) {
    q.classes.emplace_back();
    parse_class(v, p, q.classes.back(), errors);
  }, true, kMaxQosClasses);
  r.read_array("rules", [&](const nlohmann::json& v, const std::string& p) {
    q.rules.emplace_back();
    parse_rule(v, p, q.rules.back(), errors);
  }, false, kMaxQosRules);
}

nlohmann::json flow_json(const FlowMatch& f) {
  nlohmann::json j = nlohmann::json::object();
  if (f.protocol) {
    j["protocol"] = static_cast<unsigned>(*f.protocol);
    for (const auto& [name, number] : protocol_names()) {
      if (number == *f.protocol) j["protocol"] = name;
    }
  }
  if (f.src) j["src"] = to_string(*f.src);
  if (f.dst) j["dst"] = to_string(*f.dst);
  if (f.src_ports) j["src_ports"] = to_string(*f.src_ports);
  if (f.dst_ports) j["dst_ports"] = to_string(*f.dst_ports);
  return j;
}

}  // namespace

void parse_qos(const nlohmann::json& j, const std::string& path, QosConfig& out, FieldErrors& errors) {
  ObjectReader r(j, path, errors);
  if (!r.ok()) return;
  r.read_array("ports", [&](const nlohmann::json& v, const std::string& p) {
    out.ports.emplace_back();
    parse_port(v, p, out.ports.back(), errors);
  }, false, 64);
}

SectionSpec qos_section_spec() { return make_section_spec<QosConfig>("qos", parse_qos, to_json, validate_qos); }

void validate_qos(const QosConfig& qos, const Config& config, FieldErrors& errors, FieldErrors& warnings) {
  const std::vector<std::string> port_names = config::port_names(config);
  std::map<std::string, size_t> seen_ports;
  for (size_t pi = 0; pi < qos.ports.size(); ++pi) {
    const QosPort& q = qos.ports[pi];
    const std::string base = pointer_append("/qos/ports", pi);
    if (std::find(port_names.begin(), port_names.end(), q.port) == port_names.end()) {
      errors.push_back({base + "/port", "unknown port '" + q.port + "'"});
    } else if (!seen_ports.emplace(q.port, pi).second) {
      errors.push_back({base + "/port", "port '" + q.port + "' already has a tree at /qos/ports/" +
                                            std::to_string(seen_ports[q.port])});
    }
    auto class_path = [&](size_t i) { return base + "/classes/" + std::to_string(i); };
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < q.classes.size(); ++i) {
      const auto& c = q.classes[i];
      if (c.id.empty()) continue;
      if (!index.emplace(c.id, i).second) {
        errors.push_back({class_path(i) + "/id", "duplicate class id '" + c.id + "' (also " +
                                                     class_path(index[c.id]) + ")"});
      }
    }
    std::vector<size_t> parent(q.classes.size(), SIZE_MAX);
    std::vector<bool> has_child(q.classes.size(), false);
    std::optional<size_t> root;
    bool structure_ok = true;
    for (size_t i = 0; i < q.classes.size(); ++i) {
      const auto& c = q.classes[i];
      if (c.parent.empty()) {
        if (root) {
          errors.push_back({class_path(i) + "/parent",
                            "required: the tree already has its root at " + class_path(*root)});
          structure_ok = false;
        } else {
          root = i;
        }
        continue;
      }
      auto it = index.find(c.parent);
      if (it == index.end()) {
        errors.push_back({class_path(i) + "/parent", "unknown parent '" + c.parent + "'"});
        structure_ok = false;
      } else if (it->second == i) {
        errors.push_back({class_path(i) + "/parent", "a class cannot be its own parent"});
        structure_ok = false;
      } else {
        parent[i] = it->second;
        has_child[it->second] = true;
      }
    }
    if (!root && !q.classes.empty()) {
      errors.push_back({base + "/classes", "no root: exactly one class must have no parent"});
      structure_ok = false;
    }
    // Depth and cycles: walk each class up to the root.
    for (size_t i = 0; i < q.classes.size() && structure_ok; ++i) {
      size_t depth = 0, x = i;
      while (parent[x] != SIZE_MAX && depth <= q.classes.size()) {
        x = parent[x];
        ++depth;
      }
      if (parent[x] != SIZE_MAX || x != *root) {
        errors.push_back({class_path(i) + "/parent", "parent cycle: '" + q.classes[i].id + "' never reaches the root"});
      } else if (depth >= kMaxQosDepth) {
        errors.push_back({class_path(i) + "/parent", "the tree is deeper than 8 levels here"});
      }
    }
    // Children's guaranteed rates against their parent's.
    std::vector<uint64_t> child_sum(q.classes.size(), 0);
    for (size_t i = 0; i < q.classes.size(); ++i) {
      if (parent[i] != SIZE_MAX) child_sum[parent[i]] += q.classes[i].rate_bps;
    }
    for (size_t i = 0; i < q.classes.size(); ++i) {
      if (!has_child[i] || child_sum[i] <= q.classes[i].rate_bps) continue;
      FieldError e{class_path(i) + "/rate", "children's rates add up to " + format_rate(child_sum[i]) +
                                                ", above this class's rate " + format_rate(q.classes[i].rate_bps)};
      (q.strict ? errors : warnings).push_back(e);
    }
    auto leaf_check = [&](const std::string& id, const std::string& p) {
      auto it = index.find(id);
      if (it == index.end()) errors.push_back({p, "unknown class '" + id + "'"});
      else if (has_child[it->second]) errors.push_back({p, "class '" + id + "' is not a leaf (only leaves queue packets)"});
    };
    if (!q.default_class.empty()) leaf_check(q.default_class, base + "/default_class");
    for (size_t i = 0; i < q.classes.size(); ++i) {
      const auto& c = q.classes[i];
      if (has_child[i] && (c.ecn || c.dscp_remark)) {
        errors.push_back({class_path(i) + (c.ecn ? "/ecn" : "/dscp_remark"), "only leaves mark packets"});
      }
    }
    for (size_t ri = 0; ri < q.rules.size(); ++ri) {
      const auto& rule = q.rules[ri];
      const std::string rp = base + "/rules/" + std::to_string(ri);
      if (!rule.class_id.empty()) leaf_check(rule.class_id, rp + "/class");
      if (rule.ingress_port &&
          std::find(port_names.begin(), port_names.end(), *rule.ingress_port) == port_names.end()) {
        errors.push_back({rp + "/ingress_port", "unknown port '" + *rule.ingress_port + "'"});
      }
    }
  }
}

nlohmann::json to_json(const QosConfig& qos) {
  nlohmann::json ports = nlohmann::json::array();
  for (const auto& q : qos.ports) {
    nlohmann::json classes = nlohmann::json::array();
    for (const auto& c : q.classes) {
      nlohmann::json j = {{"id", c.id},
                          {"rate", format_rate(c.rate_bps)},
                          {"ceil", format_rate(c.ceil_bps.value_or(c.rate_bps))},
                          {"prio", c.prio},
                          {"overhead", c.overhead},
                          {"limit_packets", c.limit_packets}};
      if (!c.parent.empty()) j["parent"] = c.parent;
      if (c.burst_bytes) j["burst"] = format_size(*c.burst_bytes);
      if (c.cburst_bytes) j["cburst"] = format_size(*c.cburst_bytes);
      if (c.quantum) j["quantum"] = *c.quantum;
      if (c.limit_bytes) j["limit_bytes"] = format_size(*c.limit_bytes);
      if (c.dscp_remark) j["dscp_remark"] = *c.dscp_remark;
      if (c.ecn) {
        j["ecn"] = {{"kmin", format_size(c.ecn->kmin_bytes)}, {"kmax", format_size(c.ecn->kmax_bytes)},
                    {"pmax", c.ecn->pmax}};
      }
      classes.push_back(j);
    }
    nlohmann::json rules = nlohmann::json::array();
    for (const auto& r : q.rules) {
      nlohmann::json j = flow_json(r.outer);
      j["class"] = r.class_id;
      if (!r.dscp.empty()) j["dscp"] = r.dscp;
      if (!r.pcp.empty()) j["pcp"] = r.pcp;
      if (r.vni) j["vni"] = *r.vni;
      if (r.ingress_port) j["ingress_port"] = *r.ingress_port;
      if (r.inner) j["inner"] = flow_json(*r.inner);
      rules.push_back(j);
    }
    ports.push_back({{"port", q.port},
                     {"strict", q.strict},
                     {"default_class", q.default_class},
                     {"classes", classes},
                     {"rules", rules}});
  }
  return {{"ports", ports}};
}

}  // namespace meridian::config
