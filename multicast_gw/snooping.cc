#include "multicast_gw/snooping.h"

#include <algorithm>
#include <set>

#include "net/packet_view.h"
#include "net/wire.h"
#include "vxlan/model.h"

namespace meridian::mcast {

using nlohmann::json;

RouterConfig router_config(const config::MulticastBridgeDomain& b, uint8_t family, const IpAddress& address) {
  RouterConfig c;
  c.family = family;
  c.version = static_cast<uint8_t>(family == 4 ? b.igmp_version : b.mld_version);
  c.timers.robustness = static_cast<uint8_t>(b.robustness);
  c.timers.query_interval_ms = b.query_interval_s * 1000;
  c.timers.query_response_interval_ms = b.query_response_interval_ms;
  c.timers.last_member_query_interval_ms = b.last_member_query_interval_ms;
  c.timers.last_member_query_count = static_cast<uint8_t>(b.last_member_query_count);
  c.querier = b.querier.enabled;
  c.address = address;
  c.fast_leave = b.fast_leave;
  c.max_groups = b.max_groups;
  c.max_sources = b.max_sources;
  for (const auto& r : b.ssm_ranges) {
    if (r.prefix.address.family == family) c.ssm_ranges.push_back(r);
  }
  return c;
}

Attachment::Attachment(dataplane::BridgePort w, std::string name, const uint8_t* port_mac, IpAddress ll,
                       RouterConfig igmp_cfg, RouterConfig mld_cfg, Millis now)
    : where(w), port_name(std::move(name)), link_local(ll), igmp(std::move(igmp_cfg), now), mld(std::move(mld_cfg), now) {
  std::copy(port_mac, port_mac + 6, mac);
}

namespace {

/// fe80::/64 with the EUI-64 interface identifier of `mac` (RFC 4291 App. A).
IpAddress eui64_link_local(const uint8_t* mac) {
  const uint8_t b[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, static_cast<uint8_t>(mac[0] ^ 0x02), mac[1], mac[2], 0xff, 0xfe,
                         mac[3], mac[4], mac[5]};
  return IpAddress::v6(b);
}

/// The frame without its 802.1Q tag (if any), then with `vlan`'s (if not 0).
std::vector<uint8_t> retag(std::span<const uint8_t> frame, uint16_t vlan) {
  std::vector<uint8_t> out(frame.begin(), frame.end());
  if (out.size() >= 18 && net::be16(&out[12]) == net::kEtherVlan) out.erase(out.begin() + 12, out.begin() + 16);
  if (vlan) {
    const uint8_t tag[4] = {0x81, 0x00, static_cast<uint8_t>(vlan >> 8), static_cast<uint8_t>(vlan)};
    out.insert(out.begin() + 12, tag, tag + 4);
  }
  return out;
}

}  // namespace

void Snooping::apply(const config::Config& next, const std::vector<SnoopPort>& ports, Millis now) {
  const auto& mc = config::multicast_section(next);
  const auto& vx = config::vxlan_section(next);
  std::vector<SnoopedDomain> old = std::move(domains_);
  domains_.clear();
  for (const auto& b : mc.bridge_domains) {
    if (b.mode != "snoop") continue;
    const config::BridgeDomainConfig* bd = nullptr;
    for (const auto& d : vx.bridge_domains) {
      if (d.vni == b.vni) bd = &d;
    }
    if (!bd) continue;  // validation refuses this; nothing to snoop
    SnoopedDomain d;
    d.vni = b.vni;
    d.cfg = b;
    SnoopedDomain* before = nullptr;
    for (auto& o : old) {
      if (o.vni == b.vni && o.cfg == b) before = &o;
    }
    for (const auto& att : bd->attachments) {
      const SnoopPort* port = nullptr;
      for (const auto& p : ports) {
        if (p.name == att.port) port = &p;
      }
      if (!port) continue;
      const dataplane::BridgePort where{port->port_id, static_cast<uint16_t>(att.vlan)};
      std::unique_ptr<Attachment> kept;
      if (before) {
        for (auto& a : before->attachments) {
          if (a && a->where == where && std::equal(a->mac, a->mac + 6, port->mac)) kept = std::move(a);
        }
      }
      if (kept) {
        d.attachments.push_back(std::move(kept));
        continue;
      }
      const IpAddress ll = b.querier.ipv6 ? *b.querier.ipv6 : eui64_link_local(port->mac);
      d.attachments.push_back(std::make_unique<Attachment>(where, port->name, port->mac, ll,
                                                           router_config(b, 4, b.querier.ipv4),
                                                           router_config(b, 6, ll), now));
    }
    domains_.push_back(std::move(d));
  }
  last_now_ = now;
  rebuild();
}

Attachment* Snooping::find(uint16_t port, uint16_t vlan, SnoopedDomain** domain) {
  for (auto& d : domains_) {
    for (auto& a : d.attachments) {
      if (a->where.port == port && a->where.vlan == vlan) {
        if (domain) *domain = &d;
        return a.get();
      }
    }
  }
  return nullptr;
}

bool Snooping::snoops(uint16_t port, uint16_t vlan) const {
  for (const auto& d : domains_) {
    for (const auto& a : d.attachments) {
      if (a->where == dataplane::BridgePort{port, vlan}) return true;
    }
  }
  return false;
}

void Snooping::send_queries(Attachment& a, const RouterOutput& out) {
  for (const auto& q : out.queries) {
    const uint8_t family = q.group.family;
    MembershipRouter& r = a.router(family);
    Sender from;
    std::copy(a.mac, a.mac + 6, from.mac);
    from.address = r.config().address;
    io_.send(a.where.port, retag(build_query_frame(from, q, r.config().speaks()), a.where.vlan));
  }
}

void Snooping::relay(const SnoopedDomain& d, const Attachment& from, std::span<const uint8_t> frame,
                     bool to_querier_only, uint8_t family) {
  for (const auto& a : d.attachments) {
    if (a.get() == &from) continue;
    if (to_querier_only && a->router_until[family == 6] <= last_now_) continue;
    io_.send(a->where.port, retag(frame, a->where.vlan));
  }
}

bool Snooping::handle(uint16_t port, uint16_t vlan, std::span<const uint8_t> frame, Millis now) {
  SnoopedDomain* d = nullptr;
  Attachment* a = find(port, vlan, &d);
  if (!a) return false;
  last_now_ = now;
  FrameMembership fm;
  const DecodeStatus s = decode_frame(frame, fm);
  if (s == DecodeStatus::kUnknownType && frame.size() > 12 && net::ethertype_after_tags(frame.data(), frame.size()) == net::kEtherIpv6) {
    return false;  // other ICMPv6 or IPv6: not a membership message, not ours
  }
  if (s == DecodeStatus::kUnknownType) {
    relay(*d, *a, frame, false, 4);  // IGMP we do not know (DVMRP, mtrace, ...) floods (RFC 4541 §2.1.1)
    return true;
  }
  if (s != DecodeStatus::kOk) {
    ++refused_[static_cast<size_t>(s)];
    if (io_.refused) io_.refused(port, s);
    return true;
  }
  const Membership& m = fm.message;
  const size_t fi = m.family == 6;
  RouterOutput out;
  if (m.kind == MessageKind::kQuery) {
    // One link layer: every attachment's router hears the election and the
    // timer-lowering of a specific query; this one becomes a router port.
    for (auto& b : d->attachments) b->router(m.family).on_query(m, fm.source, now, out);
    a->router_until[fi] = now + a->router(m.family).timers().other_querier_present_interval();
    if (!a->router_port[fi]) dirty_ = true;
    relay(*d, *a, frame, false, m.family);  // the hosts elsewhere in the domain hear it too
  } else {
    a->router(m.family).on_membership(m, fm.source, now, out);
    relay(*d, *a, frame, true, m.family);  // toward the router ports
  }
  send_queries(*a, out);
  if (!out.changed.empty()) dirty_ = true;
  return true;
}

bool Snooping::tick(Millis now) {
  last_now_ = now;
  for (auto& d : domains_) {
    for (auto& a : d.attachments) {
      for (MembershipRouter* r : {&a->igmp, &a->mld}) {
        RouterOutput out;
        r->tick(now, out);
        send_queries(*a, out);
        if (!out.changed.empty()) dirty_ = true;
      }
      for (size_t fi = 0; fi < 2; ++fi) dirty_ |= a->router_port[fi] != (a->router_until[fi] > now);
    }
  }
  if (!dirty_) return false;
  rebuild();
  return true;
}

/// Each domain's routes: for every source some attachment names (INCLUDE's
/// sources, EXCLUDE's blocked ones) an (S,G) route with every attachment
/// that wants S — even none, so that a source all excluders block does not
/// fall through to (*,G) — and a (*,G) route with the attachments in
/// EXCLUDE mode (they want any other source).
void Snooping::rebuild() {
  dirty_ = false;
  auto t = std::make_shared<dataplane::OverlayMulticast>();
  const Millis now = last_now_;
  for (const auto& d : domains_) {
    dataplane::MulticastBridgeDomain& out = t->bridge_domains[d.vni];
    for (auto& a : d.attachments) {
      for (size_t fi = 0; fi < 2; ++fi) {
        a->router_port[fi] = a->router_until[fi] > now;
        if (a->router_port[fi]) out.routers[fi].push_back(a->where);
      }
    }
    for (uint8_t family : {uint8_t{4}, uint8_t{6}}) {
      const auto& routers = out.routers[family == 6];
      // Every route also goes to the router ports, once.
      auto add_routers = [&](dataplane::MulticastRoute& route) {
        for (const auto& r : routers) {
          if (std::find(route.locals.begin(), route.locals.end(), r) == route.locals.end()) route.locals.push_back(r);
        }
      };
      std::set<IpAddress> groups;
      for (const auto& a : d.attachments) {
        for (const auto& [g, gs] : a->router(family).groups()) groups.insert(g);
      }
      for (const auto& g : groups) {
        std::set<IpAddress> sources;
        bool any_excluder = false;
        for (const auto& a : d.attachments) {
          const GroupState* gs = a->router(family).group(g);
          if (!gs) continue;
          any_excluder |= gs->mode == FilterMode::kExclude;
          for (const auto& [s, rec] : gs->sources) sources.insert(s);
        }
        auto key = [&](const IpAddress* s) {
          dataplane::MulticastKey k;
          k.family = family;
          std::copy(g.bytes.begin(), g.bytes.begin() + static_cast<long>(g.size()), k.group.begin());
          if (s) std::copy(s->bytes.begin(), s->bytes.begin() + static_cast<long>(s->size()), k.source.begin());
          return k;
        };
        for (const auto& s : sources) {
          auto& route = out.routes[key(&s)];
          for (const auto& a : d.attachments) {
            const GroupState* gs = a->router(family).group(g);
            if (gs && gs->wants(s, now)) route.locals.push_back(a->where);
          }
          add_routers(route);
        }
        if (any_excluder) {
          auto& route = out.routes[key(nullptr)];
          for (const auto& a : d.attachments) {
            const GroupState* gs = a->router(family).group(g);
            if (gs && gs->mode == FilterMode::kExclude) route.locals.push_back(a->where);
          }
          add_routers(route);
        }
      }
    }
  }
  tables_ = std::move(t);
}

// --- views ---------------------------------------------------------------------

json Snooping::groups_json(uint8_t family, std::optional<uint32_t> vni, Millis now) const {
  json groups = json::array();
  for (const auto& d : domains_) {
    if (vni && d.vni != *vni) continue;
    for (const auto& a : d.attachments) {
      const MembershipRouter& r = family == 4 ? a->igmp : a->mld;
      for (const auto& [g, gs] : r.groups()) {
        json sources = json::array();
        for (const auto& [s, rec] : gs.sources) {
          sources.push_back({{"source", config::to_string(s)},
                             {"forwarding", gs.wants(s, now)},
                             {"expires_in_ms", std::max<Millis>(0, rec.expires - now)}});
        }
        json e = {{"vni", d.vni},
                  {"port", a->port_name},
                  {"vlan", a->where.vlan},
                  {"group", config::to_string(g)},
                  {"mode", gs.mode == FilterMode::kInclude ? "include" : "exclude"},
                  {"compatibility", gs.compatibility(now, family, r.config().newest_version())},
                  {"uptime_s", (now - gs.created) / 1000},
                  {"sources", sources}};
        if (gs.mode == FilterMode::kExclude) e["group_expires_in_ms"] = std::max<Millis>(0, gs.group_timer - now);
        groups.push_back(std::move(e));
      }
    }
  }
  return {{"groups", groups}};
}

json Snooping::querier_json(Millis now) const {
  json out = json::array();
  for (const auto& d : domains_) {
    for (const auto& a : d.attachments) {
      for (const MembershipRouter* r : {&a->igmp, &a->mld}) {
        const auto& c = r->counters();
        json ignored = json::object();
        for (size_t i = 0; i < static_cast<size_t>(Ignore::kCount); ++i) {
          ignored[std::string(ignore_name(static_cast<Ignore>(i)))] = c.ignored[i];
        }
        json e = {{"vni", d.vni},
                  {"port", a->port_name},
                  {"vlan", a->where.vlan},
                  {"protocol", r->config().family == 4 ? "igmp" : "mld"},
                  {"version", r->config().speaks()},
                  {"address", config::to_string(r->config().address)},
                  {"querier", r->is_querier() ? "self" : r->other_querier() ? config::to_string(*r->other_querier())
                                                                             : "none"},
                  {"groups", r->groups().size()},
                  {"reports", c.reports},
                  {"joins", c.joins},
                  {"leaves", c.leaves},
                  {"queries_sent", c.queries_sent},
                  {"queries_received", c.queries_received},
                  {"ignored", ignored}};
        if (r->other_querier()) e["other_querier_expires_in_ms"] = std::max<Millis>(0, r->other_querier_expires() - now);
        out.push_back(std::move(e));
      }
    }
  }
  json refused = json::object();
  for (size_t i = 1; i < refused_.size(); ++i) {
    if (refused_[i]) refused[std::string(decode_status_name(static_cast<DecodeStatus>(i)))] = refused_[i];
  }
  return {{"interfaces", out}, {"refused", refused}};
}

json Snooping::routes_json() const {
  std::map<uint16_t, std::string> names;
  for (const auto& d : domains_) {
    for (const auto& a : d.attachments) names[a->where.port] = a->port_name;
  }
  json out = json::array();
  for (const auto& [vni, bd] : tables_->bridge_domains) {
    for (const auto& [k, route] : bd.routes) {
      const bool any = std::all_of(k.source.begin(), k.source.end(), [](uint8_t b) { return b == 0; });
      const IpAddress g = k.family == 4 ? IpAddress::v4(k.group.data()) : IpAddress::v6(k.group.data());
      const IpAddress s = k.family == 4 ? IpAddress::v4(k.source.data()) : IpAddress::v6(k.source.data());
      json locals = json::array();
      for (const auto& l : route.locals) locals.push_back({{"port", names[l.port]}, {"vlan", l.vlan}});
      out.push_back({{"vni", vni}, {"source", any ? "*" : config::to_string(s)}, {"group", config::to_string(g)},
                     {"outgoing", locals}});
    }
  }
  std::sort(out.begin(), out.end(), [](const json& a, const json& b) {
    return std::tie(a["vni"], a["group"], a["source"]) < std::tie(b["vni"], b["group"], b["source"]);
  });
  return {{"routes", out}};
}

}  // namespace meridian::mcast
