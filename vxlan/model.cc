#include "vxlan/model.h"

#include <algorithm>
#include <map>
#include <set>

#include "config/json_reader.h"

namespace meridian::config {
namespace {

void parse_interface(const nlohmann::json& j, const std::string& path, UnderlayInterface& u,
                     FieldErrors& errors) {
  ObjectReader r(j, path, errors);
  if (!r.ok()) return;
  r.read_string("port", u.port, true, 32);
  auto host_prefix = [](const std::string& s) { return parse_prefix(s, true); };
  IpPrefix p;
  if (read_typed(r, "ipv4", p, host_prefix, "an IPv4 address with prefix length, e.g. 10.1.0.1/24")) {
    if (!p.address.is_v4()) r.error(r.field_path("ipv4"), "expected an IPv4 address");
    else if (p.length == 0 || p.length > 31 || p.address.is_multicast() || p.network() == p) {
      r.error(r.field_path("ipv4"), "expected a unicast host address with a prefix of /1 to /31");
    } else u.ipv4 = p;
  }
  if (read_typed(r, "ipv6", p, host_prefix, "an IPv6 address with prefix length, e.g. fd01::1/64")) {
    if (p.address.is_v4()) r.error(r.field_path("ipv6"), "expected an IPv6 address");
    else if (p.length == 0 || p.length > 127 || p.address.is_multicast() || p.address.is_unspecified()) {
      r.error(r.field_path("ipv6"), "expected a unicast host address with a prefix of /1 to /127");
    } else u.ipv6 = p;
  }
  if (!j.contains("ipv4") && !j.contains("ipv6")) r.error(path, "needs an ipv4 or ipv6 address (or both)");
}

void parse_route(const nlohmann::json& j, const std::string& path, UnderlayRoute& route,
                 FieldErrors& errors) {
  ObjectReader r(j, path, errors);
  if (!r.ok()) return;
  read_typed(r, "prefix", route.prefix, [](const std::string& s) { return parse_prefix(s, false); },
             "a network prefix without host bits, e.g. 10.2.0.0/16", true);
  if (read_typed(r, "next_hop", route.next_hop, parse_ip, "an IP address", true) &&
      j.contains("prefix") && route.next_hop.family != route.prefix.address.family) {
    r.error(r.field_path("next_hop"), "must be the same address family as the prefix");
  }
}

void parse_vtep(const nlohmann::json& j, const std::string& path, VtepConfig& v, FieldErrors& errors) {
  ObjectReader r(j, path, errors);
  if (!r.ok()) return;
  r.read_uint("udp_port", v.udp_port, 1, 65535);
  r.read_uint("source_port_min", v.source_port_min, 1, 65535);
  r.read_uint("source_port_max", v.source_port_max, 1, 65535);
  if (v.source_port_min > v.source_port_max) {
    r.error(r.field_path("source_port_min"), "must not exceed source_port_max");
  }
  r.read_uint("ttl", v.ttl, 1, 255);
  r.read_raw("dscp", [&](const nlohmann::json& d, const std::string& p) {
    if (d == "copy") v.dscp.reset();
    else if (d.is_number_unsigned() && d.get<uint64_t>() <= 63) v.dscp = d.get<unsigned>();
    else r.error(p, "expected \"copy\" or a DSCP value between 0 and 63");
  });
  r.read_uint("neighbor_timeout_seconds", v.neighbor_timeout_seconds, 10, 86400);
  r.read_bool("icmp_too_big", v.icmp_too_big);
  r.read_uint("replica_copy_max_bytes", v.replica_copy_max_bytes, 0, 9216);
  r.read_array("interfaces", [&](const nlohmann::json& e, const std::string& p) {
    v.interfaces.emplace_back();
    parse_interface(e, p, v.interfaces.back(), errors);
  }, false, 32);
  r.read_array("routes", [&](const nlohmann::json& e, const std::string& p) {
    v.routes.emplace_back();
    parse_route(e, p, v.routes.back(), errors);
  }, false, 4096);
  r.read_array("neighbors", [&](const nlohmann::json& e, const std::string& p) {
    ObjectReader n(e, p, errors);
    if (!n.ok()) return;
    UnderlayNeighbor nb;
    read_typed(n, "ip", nb.ip, parse_ip, "an IP address", true);
    read_typed(n, "mac", nb.mac, parse_mac, "a MAC address like 02:00:00:00:00:01", true);
    if (nb.mac.is_multicast() || nb.mac.is_zero()) n.error(n.field_path("mac"), "must be a unicast MAC");
    v.neighbors.push_back(nb);
  }, false, 4096);
}

void parse_attachment(ObjectReader& r, Attachment& a, bool port_required) {
  r.read_string("port", a.port, port_required, 32);
  r.read_uint("vlan", a.vlan, 0, 4094);
}

void parse_bridge_domain(const nlohmann::json& j, const std::string& path, BridgeDomainConfig& bd,
                         FieldErrors& errors) {
  ObjectReader r(j, path, errors);
  if (!r.ok()) return;
  r.read_uint("vni", bd.vni, 1, kMaxVni, true);
  r.read_string("name", bd.name, false, 64);
  r.read_array("attachments", [&](const nlohmann::json& e, const std::string& p) {
    ObjectReader a(e, p, errors);
    if (!a.ok()) return;
    bd.attachments.emplace_back();
    parse_attachment(a, bd.attachments.back(), true);
  }, false, 256);
  r.read_bool("learning", bd.learning);
  r.read_uint("aging_seconds", bd.aging_seconds, 1, 1000000);
  r.read_uint("max_fdb_entries", bd.max_fdb_entries, 16, 1u << 20);
  r.read_bool("arp_suppression", bd.arp_suppression);
  r.read_bool("remote_vtep_learning", bd.remote_vtep_learning);
  r.read_uint("mac_move_hold_seconds", bd.mac_move_hold_seconds, 0, 3600);
  read_typed_array(r, "flood", bd.flood, parse_ip, "a remote VTEP's IP address", 1024);
  r.read_array("static_fdb", [&](const nlohmann::json& e, const std::string& p) {
    ObjectReader s(e, p, errors);
    if (!s.ok()) return;
    StaticFdbEntry entry;
    read_typed(s, "mac", entry.mac, parse_mac, "a MAC address like 02:00:00:00:00:01", true);
    IpAddress vtep;
    if (read_typed(s, "vtep", vtep, parse_ip, "a remote VTEP's IP address")) entry.vtep = vtep;
    if (e.contains("port")) {
      entry.local.emplace();
      parse_attachment(s, *entry.local, true);
    } else {
      unsigned ignored = 0;
      if (s.read_uint("vlan", ignored, 0, 4094)) s.error(s.field_path("vlan"), "vlan needs a port");
    }
    if (entry.vtep.has_value() == entry.local.has_value()) {
      s.error(p, "give either a port (with optional vlan) or a vtep");
    }
    if (entry.mac.is_multicast() || entry.mac.is_zero()) s.error(s.field_path("mac"), "must be a unicast MAC");
    bd.static_fdb.push_back(entry);
  }, false, 4096);
  r.read_array("static_neighbors", [&](const nlohmann::json& e, const std::string& p) {
    ObjectReader s(e, p, errors);
    if (!s.ok()) return;
    StaticNeighbor n;
    read_typed(s, "ip", n.ip, parse_ip, "an IP address", true);
    read_typed(s, "mac", n.mac, parse_mac, "a MAC address like 02:00:00:00:00:01", true);
    if (n.mac.is_multicast() || n.mac.is_zero()) s.error(s.field_path("mac"), "must be a unicast MAC");
    bd.static_neighbors.push_back(n);
  }, false, 4096);
}

nlohmann::json attachment_json(const Attachment& a) { return {{"port", a.port}, {"vlan", a.vlan}}; }

}  // namespace

void parse_vxlan(const nlohmann::json& j, const std::string& path, VxlanConfig& out, FieldErrors& errors) {
  ObjectReader r(j, path, errors);
  if (!r.ok()) return;
  r.read_raw("vtep", [&](const nlohmann::json& v, const std::string& p) { parse_vtep(v, p, out.vtep, errors); });
  r.read_array("bridge_domains", [&](const nlohmann::json& e, const std::string& p) {
    out.bridge_domains.emplace_back();
    parse_bridge_domain(e, p, out.bridge_domains.back(), errors);
  }, false, kMaxBridgeDomains);
}

SectionSpec vxlan_section_spec() {
  return make_section_spec<VxlanConfig>("vxlan", parse_vxlan, to_json, validate_vxlan);
}

void validate_vxlan(const VxlanConfig& vx, const Config& config, FieldErrors& errors, FieldErrors&) {
  const std::vector<std::string> port_list = port_names(config), xconnect_ports = cross_connected_ports(config);
  const std::set<std::string> ports(port_list.begin(), port_list.end());
  const std::set<std::string> patched(xconnect_ports.begin(), xconnect_ports.end());
  auto claim = [&](const std::string& port, const std::string& path, const std::string& kind) {
    if (port.empty()) return;
    if (!ports.count(port)) {
      errors.push_back({path, "unknown port '" + port + "'"});
    } else if (patched.count(port)) {
      errors.push_back({path, "port '" + port + "' is cross-connected (/xconnect); it cannot also be " + kind});
    }
  };

  std::map<std::string, size_t> underlay_ports;
  std::set<IpAddress> local_addresses;
  bool has_v4 = false, has_v6 = false;
  for (size_t i = 0; i < vx.vtep.interfaces.size(); ++i) {
    const auto& u = vx.vtep.interfaces[i];
    const std::string base = "/vxlan/vtep/interfaces/" + std::to_string(i);
    claim(u.port, base + "/port", "an underlay port");
    if (!u.port.empty() && !underlay_ports.emplace(u.port, i).second) {
      errors.push_back({base + "/port", "port '" + u.port + "' is already an underlay interface"});
    }
    for (const auto& [key, p] : {std::pair{"ipv4", u.ipv4}, std::pair{"ipv6", u.ipv6}}) {
      if (!p) continue;
      if (!local_addresses.insert(p->address).second) {
        errors.push_back({base + "/" + key, "address " + to_string(p->address) + " is already used"});
      }
    }
    has_v4 = has_v4 || u.ipv4.has_value();
    has_v6 = has_v6 || u.ipv6.has_value();
  }
  auto on_link = [&](const IpAddress& ip) {
    for (const auto& u : vx.vtep.interfaces) {
      const auto& p = ip.is_v4() ? u.ipv4 : u.ipv6;
      if (p && p->contains(ip)) return true;
    }
    return false;
  };
  std::set<IpPrefix> route_prefixes;
  for (size_t i = 0; i < vx.vtep.routes.size(); ++i) {
    const auto& rt = vx.vtep.routes[i];
    const std::string base = "/vxlan/vtep/routes/" + std::to_string(i);
    if (!route_prefixes.insert(rt.prefix).second) errors.push_back({base + "/prefix", "duplicate route"});
    if (!on_link(rt.next_hop)) {
      errors.push_back({base + "/next_hop", "next hop " + to_string(rt.next_hop) +
                                                " is not on-link on any underlay interface"});
    }
  }

  std::set<IpAddress> static_neighbors;
  for (size_t i = 0; i < vx.vtep.neighbors.size(); ++i) {
    const auto& n = vx.vtep.neighbors[i];
    const std::string base = "/vxlan/vtep/neighbors/" + std::to_string(i);
    if (!static_neighbors.insert(n.ip).second) errors.push_back({base + "/ip", "duplicate neighbor"});
    if (!on_link(n.ip)) errors.push_back({base + "/ip", to_string(n.ip) + " is not on-link on any underlay interface"});
  }

  std::map<unsigned, size_t> vnis;
  std::map<std::pair<std::string, unsigned>, std::string> attached;
  std::set<IpAddress> configured_vteps;
  for (size_t b = 0; b < vx.bridge_domains.size(); ++b) {
    const auto& bd = vx.bridge_domains[b];
    const std::string base = "/vxlan/bridge_domains/" + std::to_string(b);
    if (bd.vni && !vnis.emplace(bd.vni, b).second) {
      errors.push_back({base + "/vni", "VNI " + std::to_string(bd.vni) + " already used by /vxlan/bridge_domains/" +
                                           std::to_string(vnis[bd.vni])});
    }
    std::set<Attachment> own;
    for (size_t a = 0; a < bd.attachments.size(); ++a) {
      const auto& att = bd.attachments[a];
      const std::string p = base + "/attachments/" + std::to_string(a);
      claim(att.port, p + "/port", "an access port");
      if (underlay_ports.count(att.port)) {
        errors.push_back({p + "/port", "port '" + att.port + "' is an underlay interface (/vxlan/vtep/interfaces/" +
                                           std::to_string(underlay_ports[att.port]) + ")"});
      }
      own.insert(att);
      auto key = std::pair{att.port, att.vlan};
      if (!attached.emplace(key, p).second) {
        errors.push_back({p, "port '" + att.port + "' vlan " + std::to_string(att.vlan) + " is already attached at " +
                                 attached[key]});
      }
    }
    if (!bd.flood.empty() || !bd.static_fdb.empty()) {
      std::set<IpAddress> seen;
      for (size_t f = 0; f < bd.flood.size(); ++f) {
        const auto& ip = bd.flood[f];
        const std::string p = base + "/flood/" + std::to_string(f);
        if (!seen.insert(ip).second) errors.push_back({p, "duplicate VTEP"});
        if (ip.is_multicast() || ip.is_unspecified()) errors.push_back({p, "must be a unicast address"});
        else if (local_addresses.count(ip)) errors.push_back({p, "is one of this VTEP's own addresses"});
        else if (!(ip.is_v4() ? has_v4 : has_v6)) {
          errors.push_back({p, std::string("no underlay interface has an ") + (ip.is_v4() ? "IPv4" : "IPv6") + " address"});
        }
      }
    }
    std::set<MacAddress> macs;
    for (size_t s = 0; s < bd.static_fdb.size(); ++s) {
      const auto& e = bd.static_fdb[s];
      const std::string p = base + "/static_fdb/" + std::to_string(s);
      if (!macs.insert(e.mac).second) errors.push_back({p + "/mac", "duplicate MAC " + to_string(e.mac)});
      if (e.local && !own.count(*e.local)) {
        errors.push_back({p + "/port", "port '" + e.local->port + "' vlan " + std::to_string(e.local->vlan) +
                                           " is not an attachment of this bridge domain"});
      }
      if (e.vtep && !(e.vtep->is_v4() ? has_v4 : has_v6)) {
        errors.push_back({p + "/vtep", "no underlay interface of this address family"});
      }
    }
    if (bd.static_fdb.size() > bd.max_fdb_entries) {
      errors.push_back({base + "/static_fdb", "more static entries than max_fdb_entries"});
    }
    std::set<IpAddress> ips;
    for (size_t s = 0; s < bd.static_neighbors.size(); ++s) {
      if (!ips.insert(bd.static_neighbors[s].ip).second) {
        errors.push_back({base + "/static_neighbors/" + std::to_string(s) + "/ip", "duplicate IP"});
      }
    }
    if (bd.static_neighbors.size() > bd.max_fdb_entries) {
      errors.push_back({base + "/static_neighbors", "more static neighbors than max_fdb_entries"});
    }
    // Every configured VTEP gets a slot for sure: their number is bounded
    // here, and learned VTEPs have a separate allowance.
    auto count_vtep = [&](const IpAddress& ip, const std::string& p) {
      if (configured_vteps.insert(ip).second && configured_vteps.size() == kMaxConfiguredVteps + 1) {
        errors.push_back({p, "more than " + std::to_string(kMaxConfiguredVteps) +
                                 " distinct remote VTEPs in flood lists and static FDB entries"});
      }
    };
    for (size_t f = 0; f < bd.flood.size(); ++f) count_vtep(bd.flood[f], base + "/flood/" + std::to_string(f));
    for (size_t s = 0; s < bd.static_fdb.size(); ++s) {
      if (bd.static_fdb[s].vtep) count_vtep(*bd.static_fdb[s].vtep, base + "/static_fdb/" + std::to_string(s) + "/vtep");
    }
  }
  if (!vx.bridge_domains.empty() && vx.vtep.interfaces.empty()) {
    bool needs_overlay = false;
    for (const auto& bd : vx.bridge_domains) needs_overlay = needs_overlay || !bd.flood.empty();
    if (needs_overlay) errors.push_back({"/vxlan/vtep/interfaces", "flood lists need at least one underlay interface"});
  }
}

nlohmann::json to_json(const VxlanConfig& vx) {
  const auto& v = vx.vtep;
  nlohmann::json interfaces = nlohmann::json::array();
  for (const auto& u : v.interfaces) {
    nlohmann::json o = {{"port", u.port}};
    if (u.ipv4) o["ipv4"] = to_string(*u.ipv4);
    if (u.ipv6) o["ipv6"] = to_string(*u.ipv6);
    interfaces.push_back(o);
  }
  nlohmann::json routes = nlohmann::json::array();
  for (const auto& r : v.routes) routes.push_back({{"prefix", to_string(r.prefix)}, {"next_hop", to_string(r.next_hop)}});
  nlohmann::json neighbors = nlohmann::json::array();
  for (const auto& n : v.neighbors) neighbors.push_back({{"ip", to_string(n.ip)}, {"mac", to_string(n.mac)}});
  nlohmann::json bds = nlohmann::json::array();
  for (const auto& bd : vx.bridge_domains) {
    nlohmann::json atts = nlohmann::json::array();
    for (const auto& a : bd.attachments) atts.push_back(attachment_json(a));
    nlohmann::json flood = nlohmann::json::array();
    for (const auto& f : bd.flood) flood.push_back(to_string(f));
    nlohmann::json fdb = nlohmann::json::array();
    for (const auto& e : bd.static_fdb) {
      nlohmann::json o = e.local ? attachment_json(*e.local) : nlohmann::json{{"vtep", to_string(*e.vtep)}};
      o["mac"] = to_string(e.mac);
      fdb.push_back(o);
    }
    nlohmann::json neigh = nlohmann::json::array();
    for (const auto& n : bd.static_neighbors) neigh.push_back({{"ip", to_string(n.ip)}, {"mac", to_string(n.mac)}});
    nlohmann::json o = {{"vni", bd.vni},
                   {"attachments", atts},
                   {"learning", bd.learning},
                   {"aging_seconds", bd.aging_seconds},
                   {"max_fdb_entries", bd.max_fdb_entries},
                   {"arp_suppression", bd.arp_suppression},
                   {"remote_vtep_learning", bd.remote_vtep_learning},
                   {"mac_move_hold_seconds", bd.mac_move_hold_seconds},
                   {"flood", flood},
                   {"static_fdb", fdb},
                   {"static_neighbors", neigh}};
    if (!bd.name.empty()) o["name"] = bd.name;
    bds.push_back(o);
  }
  nlohmann::json vtep = {{"udp_port", v.udp_port},
                         {"source_port_min", v.source_port_min},
                         {"source_port_max", v.source_port_max},
                         {"ttl", v.ttl},
                         {"neighbor_timeout_seconds", v.neighbor_timeout_seconds},
                         {"icmp_too_big", v.icmp_too_big},
                         {"replica_copy_max_bytes", v.replica_copy_max_bytes},
                         {"interfaces", interfaces},
                         {"routes", routes},
                         {"neighbors", neighbors}};
  if (v.dscp) vtep["dscp"] = *v.dscp;
  else vtep["dscp"] = "copy";
  return {{"vtep", vtep}, {"bridge_domains", bds}};
}

}  // namespace meridian::config
