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

/// How long a VTEP's query makes it our overlay querier: its Other Querier
/// Present Interval, from the query's own QRV and QQIC where it has them
/// (RFC 3376 §4.1.6-7), else from ours.
static Millis overlay_querier_present(const config::MulticastBridgeDomain& b, const Query& q) {
  ProtocolTimers t;
  t.robustness = static_cast<uint8_t>(q.robustness ? q.robustness : b.robustness);
  t.query_interval_ms = q.interval_s ? q.interval_s * 1000 : b.query_interval_s * 1000;
  t.query_response_interval_ms = q.max_response_ms ? q.max_response_ms : b.query_response_interval_ms;
  return t.other_querier_present_interval();
}

/// A remote VTEP's routers: the overlay is Meridian's own link to each, so
/// it queries them whatever `querier.enabled` says (which is about the
/// attachments); without queries an edge that only answers them would expire.
static std::unique_ptr<RemoteEdge> make_edge(const SnoopedDomain& d, const IpAddress& vtep, Millis now) {
  RouterConfig igmp = router_config(d.cfg, 4, d.cfg.querier.ipv4);
  RouterConfig mld = router_config(d.cfg, 6, d.overlay_link_local);
  igmp.querier = mld.querier = true;
  return std::make_unique<RemoteEdge>(vtep, std::move(igmp), std::move(mld), now);
}

void Snooping::apply_overlay(SnoopedDomain& d, SnoopedDomain* before, const config::BridgeDomainConfig& bd,
                             const std::vector<SnoopPort>& ports, Millis now) {
  // The MAC of the first attachment's port (of any port when none is up).
  const SnoopPort* mac_port = ports.empty() ? nullptr : &ports.front();
  for (const auto& p : ports) {
    if (!bd.attachments.empty() && p.name == bd.attachments.front().port) mac_port = &p;
  }
  if (mac_port) std::copy(mac_port->mac, mac_port->mac + 6, d.overlay_mac);
  d.overlay_link_local = d.cfg.querier.ipv6 ? *d.cfg.querier.ipv6 : eui64_link_local(d.overlay_mac);
  d.flood = bd.flood;
  const bool same = before && std::equal(before->overlay_mac, before->overlay_mac + 6, d.overlay_mac);
  if (same) {
    d.overlay_queriers = std::move(before->overlay_queriers);
    d.overlay_edge_limit = before->overlay_edge_limit;
    d.overlay_send_failures = before->overlay_send_failures;
  }
  // The VTEPs the VXLAN stage takes frames from (vxlan's vteps_allowed).
  d.any_vtep = bd.remote_vtep_learning;
  d.known_vteps.insert(d.flood.begin(), d.flood.end());
  for (const auto& e : bd.static_fdb) {
    if (e.vtep) d.known_vteps.insert(*e.vtep);
  }
  if (d.cfg.ingress) {
    if (same) d.edges = std::move(before->edges);
    // A VTEP the bridge domain no longer names loses its state: its frames
    // are dropped before they reach us, and it would get no data.
    std::erase_if(d.edges, [&](const auto& e) { return !d.any_vtep && !d.known_vteps.count(e.first); });
    for (const auto& vtep : d.flood) {
      if (d.edges.count(vtep) || d.edges.size() >= kMaxRemoteEdges) continue;
      d.edges.emplace(vtep, make_edge(d, vtep, now));
    }
  }
  if (d.cfg.edge) {
    for (size_t fi = 0; fi < 2; ++fi) {
      if (same && before->hosts[fi]) {
        d.hosts[fi] = std::move(before->hosts[fi]);
        continue;
      }
      HostConfig h;
      h.family = fi ? 6 : 4;
      const unsigned version = fi ? d.cfg.mld_version : d.cfg.igmp_version;
      h.version = static_cast<uint8_t>(version == h.newest_version() ? 0 : version);
      h.robustness = static_cast<uint8_t>(d.cfg.robustness);
      h.query_interval_ms = d.cfg.query_interval_s * 1000;
      d.hosts[fi] = std::make_unique<MembershipHost>(h, uint64_t{d.vni} * 2 + fi);
    }
  }
}

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
    apply_overlay(d, before, *bd, ports, now);
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

void Snooping::relay_overlay(const SnoopedDomain& d, std::span<const uint8_t> frame, bool to_routers_only,
                             uint8_t family) {
  for (const auto& a : d.attachments) {
    if (to_routers_only && a->router_until[family == 6] <= last_now_) continue;
    io_.send(a->where.port, retag(frame, a->where.vlan));
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
  if (!out.changed.empty()) dirty_ = d->local_changed = true;
  return true;
}

bool Snooping::handle_overlay(uint16_t port, uint32_t vni, const IpAddress& vtep, std::span<const uint8_t> inner,
                              Millis now) {
  SnoopedDomain* d = nullptr;
  for (auto& x : domains_) {
    if (x.vni == vni) d = &x;
  }
  if (!d) return false;
  last_now_ = now;
  FrameMembership fm;
  const DecodeStatus s = decode_frame(inner, fm);
  if (s != DecodeStatus::kOk) {  // unknown IGMP types too: nothing floods across the overlay
    ++refused_[static_cast<size_t>(s)];
    if (io_.refused) io_.refused(port, s);
    return true;
  }
  const Membership& m = fm.message;
  const size_t fi = m.family == 6;
  if (m.kind == MessageKind::kQuery) {
    // An edge answers the overlay's queriers; an ingress queries its edges
    // itself and keeps no election with other VTEPs (each is its own link).
    if (d->hosts[fi]) {
      d->overlay_queriers[fi][vtep] = now + overlay_querier_present(d->cfg, m.query);
      d->hosts[fi]->on_query(m, now);
    }
    // Attachments we do not query hear the overlay's querier instead, so
    // that their hosts keep reporting.
    if (!d->cfg.querier.enabled) relay_overlay(*d, inner, false, m.family);
    return true;
  }
  relay_overlay(*d, inner, true, m.family);  // a multicast router on an attachment hears the remote receivers
  if (!d->cfg.ingress) return true;  // an edge keeps no membership of the overlay
  auto it = d->edges.find(vtep);
  if (it == d->edges.end()) {
    if (!d->any_vtep && !d->known_vteps.count(vtep)) return true;  // the stage lets none such through
    if (d->edges.size() >= kMaxRemoteEdges) {
      ++d->overlay_edge_limit;
      return true;
    }
    it = d->edges.emplace(vtep, make_edge(*d, vtep, now)).first;
  }
  RouterOutput out;
  it->second->router(m.family).on_membership(m, fm.source, now, out);
  send_overlay_queries(*d, *it->second, out);
  if (!out.changed.empty()) dirty_ = true;
  return true;
}

void Snooping::send_overlay_queries(const SnoopedDomain& d, const RemoteEdge& e, const RouterOutput& out) {
  for (const auto& q : out.queries) {
    const MembershipRouter& r = e.router(q.group.family);
    Sender from;
    std::copy(d.overlay_mac, d.overlay_mac + 6, from.mac);
    from.address = r.config().address;
    send_overlay(d, e.vtep, build_query_frame(from, q, r.config().speaks()));
  }
}

void Snooping::send_overlay(const SnoopedDomain& d, const IpAddress& vtep, std::span<const uint8_t> frame) {
  if (!io_.send_overlay || !io_.send_overlay(d.vni, vtep, frame)) ++d.overlay_send_failures;
}

void Snooping::report_into_overlay(SnoopedDomain& d, Millis now) {
  for (size_t fi = 0; fi < 2; ++fi) {
    if (!d.hosts[fi]) continue;
    const uint8_t family = fi ? 6 : 4;
    HostOutput out;
    if (d.local_changed) {
      std::vector<const MembershipRouter*> links;
      for (const auto& a : d.attachments) links.push_back(&a->router(family));
      d.hosts[fi]->set_interest(merge_interest(links, now), now, out);
    }
    d.hosts[fi]->tick(now, out);
    if (!out.empty()) send_reports(d, family, out, now);
  }
  d.local_changed = false;
}

void Snooping::send_reports(const SnoopedDomain& d, uint8_t family, const HostOutput& out, Millis now) {
  Sender from;
  std::copy(d.overlay_mac, d.overlay_mac + 6, from.mac);
  from.address = family == 4 ? d.cfg.querier.ipv4 : d.overlay_link_local;
  // Inside the overlay: room for the outer headers of an IPv6 underlay at a 1500-byte MTU.
  constexpr size_t kOverlayIpMtu = 1500 - 70 - 14;
  std::vector<std::vector<uint8_t>> frames;
  if (!out.records.empty()) frames = build_report_frames(from, family, out.records, kOverlayIpMtu);
  for (const auto& o : out.older) frames.push_back(build_v1v2_frame(from, o.group, o.kind, o.version));
  // To the VTEPs that query us; while none has, to the flood list (as a
  // kernel VTEP would), so that a join is not held until the next query.
  std::vector<IpAddress> to;
  for (const auto& [vtep, until] : d.overlay_queriers[family == 6]) {
    if (until > now) to.push_back(vtep);
  }
  if (to.empty()) to = d.flood;
  for (const auto& vtep : to) {
    for (const auto& f : frames) send_overlay(d, vtep, f);
  }
}

bool Snooping::tick(Millis now) {
  last_now_ = now;
  for (auto& d : domains_) {
    for (auto& a : d.attachments) {
      for (MembershipRouter* r : {&a->igmp, &a->mld}) {
        RouterOutput out;
        r->tick(now, out);
        send_queries(*a, out);
        if (!out.changed.empty()) dirty_ = d.local_changed = true;
      }
      for (size_t fi = 0; fi < 2; ++fi) dirty_ |= a->router_port[fi] != (a->router_until[fi] > now);
    }
    for (auto& [vtep, e] : d.edges) {
      for (MembershipRouter* r : {&e->igmp, &e->mld}) {
        RouterOutput out;
        r->tick(now, out);
        send_overlay_queries(d, *e, out);
        if (!out.changed.empty()) dirty_ = true;
      }
    }
    for (auto& queriers : d.overlay_queriers) std::erase_if(queriers, [&](const auto& q) { return q.second <= now; });
    report_into_overlay(d, now);
  }
  if (!dirty_) return false;
  rebuild();
  return true;
}

/// Each domain's routes: for every source some link names (INCLUDE's
/// sources, EXCLUDE's blocked ones) an (S,G) route with every link that
/// wants S — even none, so that a source all excluders block does not fall
/// through to (*,G) — and a (*,G) route with the links in EXCLUDE mode (they
/// want any other source). A link is an attachment (a local target) or, as
/// ingress, a remote edge (a remote VTEP).
void Snooping::rebuild() {
  dirty_ = false;
  auto t = std::make_shared<dataplane::OverlayMulticast>();
  const Millis now = last_now_;
  struct Link {
    const MembershipRouter* router;
    const dataplane::BridgePort* local;
    const IpAddress* remote;
  };
  for (const auto& d : domains_) {
    dataplane::MulticastBridgeDomain& out = t->bridge_domains[d.vni];
    out.overlay_snooped = d.cfg.ingress;
    for (auto& a : d.attachments) {
      for (size_t fi = 0; fi < 2; ++fi) {
        a->router_port[fi] = a->router_until[fi] > now;
        if (a->router_port[fi]) out.routers[fi].push_back(a->where);
      }
    }
    for (uint8_t family : {uint8_t{4}, uint8_t{6}}) {
      std::vector<Link> links;
      for (const auto& a : d.attachments) links.push_back({&a->router(family), &a->where, nullptr});
      for (const auto& [vtep, e] : d.edges) links.push_back({&e->router(family), nullptr, &e->vtep});
      const auto& routers = out.routers[family == 6];
      auto add = [](dataplane::MulticastRoute& route, const Link& l) {
        if (l.local) route.locals.push_back(*l.local);
        else route.remote_vteps.push_back(*l.remote);
      };
      // Every route also goes to the router ports, once.
      auto add_routers = [&](dataplane::MulticastRoute& route) {
        for (const auto& r : routers) {
          if (std::find(route.locals.begin(), route.locals.end(), r) == route.locals.end()) route.locals.push_back(r);
        }
      };
      std::set<IpAddress> groups;
      for (const auto& l : links) {
        for (const auto& [g, gs] : l.router->groups()) groups.insert(g);
      }
      for (const auto& g : groups) {
        std::set<IpAddress> sources;
        bool any_excluder = false;
        for (const auto& l : links) {
          const GroupState* gs = l.router->group(g);
          if (!gs) continue;
          any_excluder |= gs->mode == FilterMode::kExclude;
          for (const auto& [src, rec] : gs->sources) sources.insert(src);
        }
        auto key = [&](const IpAddress* src) {
          dataplane::MulticastKey k;
          k.family = family;
          std::copy(g.bytes.begin(), g.bytes.begin() + static_cast<long>(g.size()), k.group.begin());
          if (src) std::copy(src->bytes.begin(), src->bytes.begin() + static_cast<long>(src->size()), k.source.begin());
          return k;
        };
        for (const auto& src : sources) {
          auto& route = out.routes[key(&src)];
          for (const auto& l : links) {
            const GroupState* gs = l.router->group(g);
            if (gs && gs->wants(src, now)) add(route, l);
          }
          add_routers(route);
        }
        if (any_excluder) {
          auto& route = out.routes[key(nullptr)];
          for (const auto& l : links) {
            const GroupState* gs = l.router->group(g);
            if (gs && gs->mode == FilterMode::kExclude) add(route, l);
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
  // One entry per group of a link: `where` names the link (an attachment's
  // port and VLAN, or a remote edge's VTEP).
  auto add = [&](const json& where, const MembershipRouter& r) {
    for (const auto& [g, gs] : r.groups()) {
      json sources = json::array();
      for (const auto& [src, rec] : gs.sources) {
        sources.push_back({{"source", config::to_string(src)},
                           {"forwarding", gs.wants(src, now)},
                           {"expires_in_ms", std::max<Millis>(0, rec.expires - now)}});
      }
      json e = where;
      e["group"] = config::to_string(g);
      e["mode"] = gs.mode == FilterMode::kInclude ? "include" : "exclude";
      e["compatibility"] = gs.compatibility(now, family, r.config().newest_version());
      e["uptime_s"] = (now - gs.created) / 1000;
      e["sources"] = std::move(sources);
      if (gs.mode == FilterMode::kExclude) e["group_expires_in_ms"] = std::max<Millis>(0, gs.group_timer - now);
      groups.push_back(std::move(e));
    }
  };
  for (const auto& d : domains_) {
    if (vni && d.vni != *vni) continue;
    for (const auto& a : d.attachments) {
      add({{"vni", d.vni}, {"port", a->port_name}, {"vlan", a->where.vlan}}, a->router(family));
    }
    for (const auto& [vtep, e] : d.edges) add({{"vni", d.vni}, {"vtep", config::to_string(vtep)}}, e->router(family));
  }
  return {{"groups", groups}};
}

json Snooping::querier_json(Millis now) const {
  json out = json::array();
  auto router_json = [&](json e, const MembershipRouter* r) {
    const auto& c = r->counters();
    json ignored = json::object();
    for (size_t i = 0; i < static_cast<size_t>(Ignore::kCount); ++i) {
      ignored[std::string(ignore_name(static_cast<Ignore>(i)))] = c.ignored[i];
    }
    e["protocol"] = r->config().family == 4 ? "igmp" : "mld";
    e["version"] = r->config().speaks();
    e["address"] = config::to_string(r->config().address);
    e["querier"] = r->is_querier() ? "self" : r->other_querier() ? config::to_string(*r->other_querier()) : "none";
    e["groups"] = r->groups().size();
    e["reports"] = c.reports;
    e["joins"] = c.joins;
    e["leaves"] = c.leaves;
    e["queries_sent"] = c.queries_sent;
    e["queries_received"] = c.queries_received;
    e["ignored"] = std::move(ignored);
    if (r->other_querier()) e["other_querier_expires_in_ms"] = std::max<Millis>(0, r->other_querier_expires() - now);
    return e;
  };
  json overlay = json::array();
  for (const auto& d : domains_) {
    for (const auto& [vtep, e] : d.edges) {
      for (const MembershipRouter* r : {&e->igmp, &e->mld}) {
        overlay.push_back(router_json({{"vni", d.vni}, {"role", "ingress"}, {"vtep", config::to_string(vtep)}}, r));
      }
    }
    for (size_t fi = 0; fi < 2; ++fi) {
      if (!d.hosts[fi]) continue;
      json queriers = json::array();
      for (const auto& [vtep, until] : d.overlay_queriers[fi]) {
        if (until > now) queriers.push_back(config::to_string(vtep));
      }
      const MembershipHost& h = *d.hosts[fi];
      overlay.push_back({{"vni", d.vni},
                         {"role", "edge"},
                         {"protocol", fi ? "mld" : "igmp"},
                         {"version", h.compatibility(now)},
                         {"queriers", queriers},
                         {"groups", h.state().size()},
                         {"reports_sent", h.reports_sent()}});
    }
    if (d.overlay_edge_limit || d.overlay_send_failures) {
      overlay.push_back({{"vni", d.vni}, {"edges_not_tracked", d.overlay_edge_limit},
                         {"send_failures", d.overlay_send_failures}});
    }
  }
  for (const auto& d : domains_) {
    for (const auto& a : d.attachments) {
      for (const MembershipRouter* r : {&a->igmp, &a->mld}) {
        out.push_back(router_json({{"vni", d.vni}, {"port", a->port_name}, {"vlan", a->where.vlan}}, r));
      }
    }
  }
  json refused = json::object();
  for (size_t i = 1; i < refused_.size(); ++i) {
    if (refused_[i]) refused[std::string(decode_status_name(static_cast<DecodeStatus>(i)))] = refused_[i];
  }
  return {{"interfaces", out}, {"overlay", overlay}, {"refused", refused}};
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
      for (const auto& v : route.remote_vteps) locals.push_back({{"vtep", config::to_string(v)}});
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
