#include "multicast_gw/snooping.h"

#include <algorithm>
#include <cassert>
#include <limits>
#include <set>

#include "config/log.h"
#include "net/packet_view.h"
#include "net/wire.h"
#include "vxlan/model.h"

namespace meridian::mcast {

using nlohmann::json;

namespace {

/// An egress as budgets, statics and views name it (config's MulticastEgress).
std::string egress_name(const std::string& port, uint16_t vlan) {
  return config::to_string(config::MulticastEgress{port, vlan, std::nullopt});
}
std::string egress_name(const IpAddress& vtep) { return config::to_string(config::MulticastEgress{{}, 0, vtep}); }

dataplane::MulticastKey route_key(uint8_t family, const IpAddress& g, const IpAddress* s) {
  dataplane::MulticastKey k;
  k.family = family;
  std::copy(g.bytes.begin(), g.bytes.begin() + static_cast<long>(g.size()), k.group.begin());
  if (s) std::copy(s->bytes.begin(), s->bytes.begin() + static_cast<long>(s->size()), k.source.begin());
  return k;
}

/// A key's group: the key with its source zeroed.
dataplane::MulticastKey group_of(dataplane::MulticastKey k) {
  k.source.fill(0);
  return k;
}
/// A group peak's group, as a key with its source zeroed.
dataplane::MulticastKey group_of(const GroupFlow& g) {
  dataplane::MulticastKey k;
  k.family = std::get<0>(g);
  k.group = std::get<1>(g);
  return k;
}

}  // namespace

IpAddress key_group(const dataplane::MulticastKey& k) {
  return k.family == 4 ? IpAddress::v4(k.group.data()) : IpAddress::v6(k.group.data());
}

bool key_any_source(const dataplane::MulticastKey& k) {
  return std::all_of(k.source.begin(), k.source.end(), [](uint8_t b) { return b == 0; });
}

std::string key_source(const dataplane::MulticastKey& k) {
  if (key_any_source(k)) return "*";
  return config::to_string(k.family == 4 ? IpAddress::v4(k.source.data()) : IpAddress::v6(k.source.data()));
}

namespace {

/// The declared flow a route carries: the first of `flows` whose group range
/// holds its group and whose source (if any) is its source; -1 when none
/// (not admission-controlled). A (*,G) route matches only source-less flows:
/// declared sources get (S,G) routes of their own (build_domain).
int flow_index(const config::MulticastBridgeDomain& cfg, const dataplane::MulticastKey& k) {
  const IpAddress g = key_group(k);
  const bool any = key_any_source(k);
  const IpAddress s = k.family == 4 ? IpAddress::v4(k.source.data()) : IpAddress::v6(k.source.data());
  for (size_t i = 0; i < cfg.flows.size(); ++i) {
    const auto& f = cfg.flows[i];
    if (!f.group.contains(g)) continue;
    if (f.source ? !any && *f.source == s : true) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

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

/// The groups of one family (static subscriptions hold both in one map).
static Interest family_only(Interest in, uint8_t family) {
  std::erase_if(in, [&](const auto& e) { return e.first.family != family; });
  return in;
}

/// A proxy host's settings (edge role into the overlay, ingress role upstream).
static HostConfig host_config(const config::MulticastBridgeDomain& b, uint8_t family) {
  HostConfig h;
  h.family = family;
  const unsigned version = family == 6 ? b.mld_version : b.igmp_version;
  h.version = static_cast<uint8_t>(version == h.newest_version() ? 0 : version);
  h.robustness = static_cast<uint8_t>(b.robustness);
  h.query_interval_ms = b.query_interval_s * 1000;
  return h;
}

/// The upstream proxy host of family index `fi` on an attachment.
static std::unique_ptr<MembershipHost> upstream_proxy(const config::MulticastBridgeDomain& b, uint32_t vni,
                                                      const dataplane::BridgePort& where, size_t fi) {
  return std::make_unique<MembershipHost>(host_config(b, fi ? 6 : 4), uint64_t{vni} * 4 + where.port * 2 + fi + 1);
}

/// A config change re-created attachment `was` as `now_is` (its port's MAC
/// changed: the memberships start again): where an upstream proxy ran, its querier is still there,
/// so a proxy with the new settings starts at once and reports as the edges
/// answer again. The old one goes without leaves: the production router's
/// tree stays up meanwhile instead of being torn down and waiting for that
/// router's next query.
/// A configured upstream attachment's proxy restarts the same way, heard or not.
static void restart_upstream(Attachment& was, Attachment& now_is, const config::MulticastBridgeDomain& b,
                             uint32_t vni, bool configured, Millis now) {
  for (size_t fi = 0; fi < 2; ++fi) {
    if (!was.upstream[fi] || (was.production_router_until[fi] <= now && !configured)) continue;
    was.upstream[fi].reset();
    now_is.upstream[fi] = upstream_proxy(b, vni, now_is.where, fi);
  }
}

/// The attachment the config names as the upstream one (ingress role).
static bool configured_upstream(const SnoopedDomain& d, const Attachment& a) {
  const auto& u = d.cfg.upstream;
  return d.cfg.ingress && u && u->port == a.port_name && u->vlan == a.where.vlan;
}

/// Whether the configured upstream attachment runs (its port is up).
static bool configured_upstream_running(const SnoopedDomain& d) {
  return std::any_of(d.attachments.begin(), d.attachments.end(),
                     [&](const auto& a) { return a && configured_upstream(d, *a); });
}

/// Whether two versions of a bridge domain's settings run the same routers:
/// static subscriptions, flows, budgets and roles are applied at the next
/// rebuild without restarting anyone's membership.
static bool same_protocol_settings(config::MulticastBridgeDomain a, config::MulticastBridgeDomain b) {
  for (auto* c : {&a, &b}) {
    c->static_subscriptions.clear();
    c->flows.clear();
    c->budgets.clear();
    c->default_budget_kbps = 0;
    c->ingress = c->edge = true;
    c->upstream.reset();
  }
  return a == b;
}

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
static RouterConfig edge_router_config(const SnoopedDomain& d, uint8_t family) {
  RouterConfig c = router_config(d.cfg, family, family == 4 ? d.cfg.querier.ipv4 : d.overlay_link_local);
  c.querier = true;
  return c;
}

static std::unique_ptr<RemoteEdge> make_edge(const SnoopedDomain& d, const IpAddress& vtep, Millis now) {
  return std::make_unique<RemoteEdge>(vtep, edge_router_config(d, 4), edge_router_config(d, 6), now);
}

void Snooping::apply_overlay(SnoopedDomain& d, SnoopedDomain* before, bool protocol_changed,
                             const config::BridgeDomainConfig& bd, const std::vector<SnoopPort>& ports, Millis now) {
  // The MAC of the first attachment's port (of any port when none is up).
  const SnoopPort* mac_port = ports.empty() ? nullptr : &ports.front();
  for (const auto& p : ports) {
    if (!bd.attachments.empty() && p.name == bd.attachments.front().port) mac_port = &p;
  }
  if (mac_port) std::copy(mac_port->mac, mac_port->mac + 6, d.overlay_mac);
  d.overlay_link_local = d.cfg.querier.ipv6 ? *d.cfg.querier.ipv6 : eui64_link_local(d.overlay_mac);
  d.flood = bd.flood;
  const bool same = before && std::equal(before->overlay_mac, before->overlay_mac + 6, d.overlay_mac);
  // New protocol settings apply to the routers and hosts kept: their
  // memberships stay (a whole rebuild follows the apply).
  const bool reconfigure = same && protocol_changed;
  RouterOutput ignored;
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
    if (reconfigure) {
      for (auto& [vtep, e] : d.edges) {
        e->igmp.reconfigure(edge_router_config(d, 4), now, ignored);
        e->mld.reconfigure(edge_router_config(d, 6), now, ignored);
      }
    }
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
        if (reconfigure) d.hosts[fi]->reconfigure(host_config(d.cfg, fi ? 6 : 4));
        continue;
      }
      d.hosts[fi] = std::make_unique<MembershipHost>(host_config(d.cfg, fi ? 6 : 4), uint64_t{d.vni} * 2 + fi);
    }
  }
}

void Snooping::apply_statics(SnoopedDomain& d, const std::vector<SnoopPort>& ports) {
  for (const auto& st : d.cfg.static_subscriptions) {
    StaticLink* link = nullptr;
    const std::string name = config::to_string(st.to);
    for (auto& l : d.statics) {
      if (l.name == name) link = &l;
    }
    if (!link) {
      StaticLink l;
      l.name = name;
      if (st.to.vtep) {
        l.vtep = *st.to.vtep;
      } else {
        auto p = std::find_if(ports.begin(), ports.end(), [&](const SnoopPort& p) { return p.name == st.to.port; });
        if (p == ports.end()) continue;  // the port is not up: nothing to send to
        l.local = dataplane::BridgePort{p->port_id, static_cast<uint16_t>(st.to.vlan)};
      }
      d.statics.push_back(std::move(l));
      link = &d.statics.back();
    }
    constexpr Millis kForever = std::numeric_limits<Millis>::max();
    GroupState& gs = link->groups[st.group];  // created 0: admitted before any dynamic join
    if (!st.source) {
      gs.mode = FilterMode::kExclude;
      gs.group_timer = kForever;
      gs.sources.clear();
    } else if (gs.mode == FilterMode::kInclude) {
      gs.sources[*st.source].expires = kForever;
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
      if (o.vni == b.vni) before = &o;
    }
    const bool reconfigure = before && !same_protocol_settings(before->cfg, b);
    // Said once: not again at every commit while the port stays down.
    const bool upstream_down_known = before && before->cfg.upstream == b.upstream && before->cfg.ingress == b.ingress &&
                                     !configured_upstream_running(*before);
    apply_overlay(d, before, reconfigure, *bd, ports, now);
    apply_statics(d, ports);
    // Admission's history survives any change of the bridge domain's settings.
    for (auto& o : old) {
      if (o.vni != b.vni) continue;
      d.denied = std::move(o.denied);
      d.denials = o.denials;
      d.flow_states = std::move(o.flow_states);
      d.egress_ids = std::move(o.egress_ids);
      d.egress_names = std::move(o.egress_names);
      d.route_records = std::exchange(o.route_records, {});
      // Group peaks are kept per flow index: they last only while the flows do.
      if (o.cfg.flows == b.flows) d.group_peaks = std::exchange(o.group_peaks, {});
      for (auto& [key, rec] : d.route_records) rec.flow = flow_index(d.cfg, key);  // the flows may have changed
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
      const IpAddress ll = b.querier.ipv6 ? *b.querier.ipv6 : eui64_link_local(port->mac);
      if (kept) {
        if (reconfigure) {  // its memberships stay: receivers keep their streams
          RouterOutput ignored;  // a whole rebuild follows
          kept->link_local = ll;
          kept->igmp.reconfigure(router_config(b, 4, b.querier.ipv4), now, ignored);
          kept->mld.reconfigure(router_config(b, 6, ll), now, ignored);
          for (size_t fi = 0; fi < 2; ++fi) {
            if (kept->upstream[fi]) kept->upstream[fi]->reconfigure(host_config(b, fi ? 6 : 4));
          }
        }
        d.attachments.push_back(std::move(kept));
        continue;
      }
      d.attachments.push_back(std::make_unique<Attachment>(where, port->name, port->mac, ll,
                                                           router_config(b, 4, b.querier.ipv4),
                                                           router_config(b, 6, ll), now));
      // Re-created where one was (its port's MAC changed): the routers heard
      // there still are. A proxy restarts only where it will proxy again;
      // otherwise the old one stays with the old attachment, which leaves
      // its groups below.
      Attachment& fresh = *d.attachments.back();
      const bool proxies = b.ingress && (!b.upstream || configured_upstream(d, fresh));
      for (auto& o : old) {
        if (o.vni != b.vni) continue;
        for (auto& a : o.attachments) {
          if (!a || !(a->where == where)) continue;
          fresh.router_until = a->router_until;
          fresh.production_router_until = a->production_router_until;
          if (proxies) restart_upstream(*a, fresh, b, d.vni, b.upstream.has_value(), now);
        }
      }
    }
    if (d.cfg.ingress && d.cfg.upstream && !configured_upstream_running(d) && !upstream_down_known) {
      log::warn("multicast", "configured upstream attachment not running: no proxy reports to the production router",
                {{"vni", d.vni}, {"port", d.cfg.upstream->port}, {"vlan", d.cfg.upstream->vlan}});
    }
    domains_.push_back(std::move(d));
  }
  for (auto& o : old) {  // bridge domains that stopped snooping: their routes are gone
    for (const auto& [key, rec] : o.route_records) release(rec, now);
    for (auto& a : o.attachments) {
      if (a) end_upstream(o, *a, now);
    }
  }
  // The proxies as the settings now want them: none without the ingress
  // role; with a configured upstream only there, always; without one,
  // wherever a production router is heard, as its query would have made
  // one (so a configured upstream taken away does not leave such a router
  // without our reports until its next query).
  for (auto& d : domains_) {
    for (auto& a : d.attachments) {
      a->upstream_configured = configured_upstream(d, *a);
      if (!d.cfg.ingress || (d.cfg.upstream && !a->upstream_configured)) end_upstream(d, *a, now);
      for (size_t fi = 0; fi < 2; ++fi) {  // no longer configured, and no router heard: it would go silently
        if (!d.cfg.upstream && a->production_router_until[fi] <= now) end_upstream(d, *a, now, static_cast<int>(fi));
      }
      for (size_t fi = 0; fi < 2; ++fi) {
        const bool wanted = a->upstream_configured ||
                            (d.cfg.ingress && !d.cfg.upstream && a->production_router_until[fi] > now);
        if (!wanted || a->upstream[fi]) continue;
        a->upstream[fi] = upstream_proxy(d.cfg, d.vni, a->where, fi);
        d.overlay_changed = d.overlay_merge_all = true;
      }
    }
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
    // Toward the production network's router we are its proxy's host side
    // (RFC 4605 runs the router side downstream only): we do not query it.
    MembershipRouter& r = a.router(family);
    if (a.upstream[family == 6]) {
      r.withheld();
      continue;
    }
    Sender from;
    std::copy(a.mac, a.mac + 6, from.mac);
    from.address = r.config().address;
    io_.send(a.where.port, retag(build_query_frame(from, q, r.config().speaks()), a.where.vlan));
  }
}

static bool relays_to(const Attachment& a, RelayTo to, uint8_t family, Millis now) {
  switch (to) {
    case RelayTo::kRouters: return a.router_port_now(family == 6, now);
    case RelayTo::kHosts: return !a.upstream_configured;
    default: return true;
  }
}

void Snooping::relay_overlay(const SnoopedDomain& d, std::span<const uint8_t> frame, RelayTo to, uint8_t family) {
  for (const auto& a : d.attachments) {
    if (relays_to(*a, to, family, last_now_)) io_.send(a->where.port, retag(frame, a->where.vlan));
  }
}

void Snooping::relay(const SnoopedDomain& d, const Attachment& from, std::span<const uint8_t> frame, RelayTo to,
                     uint8_t family) {
  for (const auto& a : d.attachments) {
    if (a.get() != &from && relays_to(*a, to, family, last_now_)) io_.send(a->where.port, retag(frame, a->where.vlan));
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
    relay(*d, *a, frame, RelayTo::kAll, 4);  // IGMP we do not know (DVMRP, mtrace, ...) floods (RFC 4541 §2.1.1)
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
    if (!fm.source.is_unspecified()) a->production_router_until[fi] = a->router_until[fi];
    if (!a->router_port[fi]) dirty_ = true;
    relay(*d, *a, frame, RelayTo::kHosts, m.family);  // the hosts elsewhere in the domain hear it too
    // A snooping switch's query (from 0.0.0.0 / ::) is no production router:
    // it gets no proxy, and we keep querying there. With a configured
    // upstream attachment only that one has a proxy (from the start), and it
    // answers every query heard there, a snooping switch's too.
    if (d->cfg.ingress && (a->upstream_configured || (!d->cfg.upstream && !fm.source.is_unspecified()))) {
      if (!a->upstream[fi]) {
        a->upstream[fi] = upstream_proxy(d->cfg, d->vni, a->where, fi);
        d->overlay_changed = d->overlay_merge_all = true;  // its first reports: everything the overlay wants
      }
      a->upstream[fi]->on_query(m, now);
    }
  } else {
    a->router(m.family).on_membership(m, fm.source, now, out);
    relay(*d, *a, frame, RelayTo::kRouters, m.family);  // toward the router ports
  }
  send_queries(*a, out);
  if (note_changes(*d, out)) d->local_changed = true;
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
    if (!d->cfg.querier.enabled) relay_overlay(*d, inner, RelayTo::kHosts, m.family);
    return true;
  }
  // A multicast router on an attachment hears the remote receivers: as
  // ingress through the upstream proxy's merged reports, otherwise (plain
  // snooping) their own reports relayed.
  if (!d->cfg.ingress) {
    relay_overlay(*d, inner, RelayTo::kRouters, m.family);
    return true;  // an edge keeps no membership of the overlay
  }
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
  if (note_changes(*d, out)) d->overlay_changed = true;
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
      // The attachments' members and static subscriptions (receivers that do not signal).
      std::vector<const std::map<IpAddress, GroupState>*> links;
      for (const auto& a : d.attachments) links.push_back(&a->router(family).groups());
      for (const auto& st : d.statics) {
        if (st.local) links.push_back(&st.groups);
      }
      d.hosts[fi]->set_interest(family_only(merge_interest(links, now), family), now, out);
    }
    d.hosts[fi]->tick(now, out);
    if (!out.empty()) send_reports(d, family, out, now);
  }
  d.local_changed = false;
}

void Snooping::report_upstream(SnoopedDomain& d, Millis now) {
  for (auto& a : d.attachments) {
    for (size_t fi = 0; fi < 2; ++fi) {
      if (!a->upstream[fi]) continue;
      if (a->production_router_until[fi] <= now && !a->upstream_configured) {  // its router is gone: nobody to report to
        a->upstream[fi].reset();
        continue;
      }
      const uint8_t family = fi ? 6 : 4;
      HostOutput out;
      if (d.overlay_changed) {
        // The remote edges' members and the static subscriptions (those of
        // other attachments too: silent receivers the router must feed).
        std::vector<const std::map<IpAddress, GroupState>*> edges;
        for (const auto& [vtep, e] : d.edges) edges.push_back(&e->router(family).groups());
        for (const auto& st : d.statics) {
          if (!st.local || !(*st.local == a->where)) edges.push_back(&st.groups);  // the receivers it serves
        }
        if (d.overlay_merge_all) {
          a->upstream[fi]->set_interest(family_only(merge_interest(edges, now), family), now, out);
        } else {  // the groups the edges' reports and timers changed: a lookup each, not a pass over all
          std::vector<IpAddress> groups;
          for (const auto& k : d.changed_groups) {
            if (k.family == family) groups.push_back(key_group(k));
          }
          std::sort(groups.begin(), groups.end());
          groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
          a->upstream[fi]->set_interest(merge_interest(edges, groups, now), groups, now, out);
        }
      }
      a->upstream[fi]->tick(now, out);
      send_upstream(d, *a, family, out);
    }
  }
  d.overlay_changed = d.overlay_merge_all = false;
}

void Snooping::end_upstream(const SnoopedDomain& d, Attachment& a, Millis now, int only_fi) {
  for (size_t fi = 0; fi < 2; ++fi) {
    if (!a.upstream[fi] || (only_fi >= 0 && fi != static_cast<size_t>(only_fi))) continue;
    if (a.router_until[fi] > now || !a.upstream[fi]->state().empty()) {  // a configured one reports unheard
      HostOutput out;
      a.upstream[fi]->set_interest({}, now, out);
      send_upstream(d, a, fi ? 6 : 4, out);
      log::info("multicast", "upstream proxy left its groups: its attachment no longer proxies",
                {{"vni", d.vni}, {"port", a.port_name}, {"vlan", a.where.vlan}, {"protocol", fi ? "mld" : "igmp"},
                 {"records", out.records.size() + out.older.size()}});
    }
    a.upstream[fi].reset();
  }
}

void Snooping::send_upstream(const SnoopedDomain& d, const Attachment& a, uint8_t family, const HostOutput& out) {
  if (out.empty()) return;
  Sender from;
  std::copy(a.mac, a.mac + 6, from.mac);
  from.address = family == 4 ? d.cfg.querier.ipv4 : a.link_local;
  std::vector<std::vector<uint8_t>> frames;
  if (!out.records.empty()) frames = build_report_frames(from, family, out.records);
  for (const auto& o : out.older) frames.push_back(build_v1v2_frame(from, o.group, o.kind, o.version));
  for (const auto& f : frames) io_.send(a.where.port, retag(f, a.where.vlan));
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

bool Snooping::flush(Millis now) {
  last_now_ = now;
  for (auto& d : domains_) {
    if (d.local_changed) report_into_overlay(d, now);
    if (d.overlay_changed) report_upstream(d, now);
  }
  if (!dirty_) return false;
  rebuild();
  return true;
}

bool Snooping::tick(Millis now) {
  last_now_ = now;
  if (now >= last_sample_ + 1000) {
    sample_rates(now);
    last_sample_ = now;
  }
  for (auto& d : domains_) {
    for (auto& a : d.attachments) {
      // An upstream proxy ends with the production router it answers (a
      // snooping switch's 0.0.0.0 queries do not keep it), before our
      // router, which takes over the querying, sends its first query there.
      for (size_t fi = 0; fi < 2; ++fi) {
        if (a->upstream[fi] && a->production_router_until[fi] <= now && !a->upstream_configured) a->upstream[fi].reset();
      }
      for (MembershipRouter* r : {&a->igmp, &a->mld}) {
        RouterOutput out;
        r->tick(now, out);
        send_queries(*a, out);
        if (note_changes(d, out)) d.local_changed = true;
      }
      for (size_t fi = 0; fi < 2; ++fi) dirty_ |= a->router_port[fi] != a->router_port_now(fi, now);
    }
    for (auto& [vtep, e] : d.edges) {
      for (MembershipRouter* r : {&e->igmp, &e->mld}) {
        RouterOutput out;
        r->tick(now, out);
        send_overlay_queries(d, *e, out);
        if (note_changes(d, out)) d.overlay_changed = true;
      }
    }
    for (auto& queriers : d.overlay_queriers) std::erase_if(queriers, [&](const auto& q) { return q.second <= now; });
    report_into_overlay(d, now);
    report_upstream(d, now);
  }
  if (!dirty_) return false;
  rebuild();
  return true;
}

struct Snooping::Snapshot {
  std::vector<FlowState> flow_states;
  std::vector<AdmissionDenial> denied;
  std::map<std::string, uint64_t> in_use_kbps;
  uint64_t denials = 0;
  std::map<dataplane::MulticastKey, RouteRecord, MulticastKeyLess> route_records;
  std::map<GroupFlow, GroupPeak> group_peaks;
  explicit Snapshot(const SnoopedDomain& d)
      : flow_states(d.flow_states), denied(d.denied), in_use_kbps(d.in_use_kbps), denials(d.denials),
        route_records(d.route_records), group_peaks(d.group_peaks) {}
  void restore(SnoopedDomain& d) const {
    d.flow_states = flow_states;
    d.denied = denied;
    d.in_use_kbps = in_use_kbps;
    d.denials = denials;
    d.route_records = route_records;
    d.group_peaks = group_peaks;
  }
};

/// Each domain's routes: for every source some link names (INCLUDE's
/// sources, EXCLUDE's blocked ones) an (S,G) route with every link that
/// wants S — even none, so that a source all excluders block does not fall
/// through to (*,G) — and a (*,G) route with the links in EXCLUDE mode (they
/// want any other source). A link is an attachment, a remote edge (ingress
/// role) or a static subscription's target. Then bandwidth admission, and
/// the router ports on every route.
///
/// A rebuild redoes only the groups whose memberships changed (and those
/// with refusals) when nothing else did: admission couples groups only
/// through the egresses' use, and every other group's flows ran at the last
/// rebuild (a group with a refusal is redone), so they are admitted again
/// at the same charges whatever the order — the same result as a whole
/// rebuild, at the cost of the changed groups.
void Snooping::rebuild() {
  dirty_ = false;
  auto t = std::make_shared<dataplane::OverlayMulticast>();
  for (auto& d : domains_) {
    auto& bd = t->bridge_domains[d.vni];
    const dataplane::MulticastBridgeDomain* last = tables_->bd(d.vni);
    bool whole = d.rebuild_all || !last;
    for (const auto& a : d.attachments) {  // a router port came or went: it is on every route
      for (size_t fi = 0; fi < 2; ++fi) whole |= a->router_port[fi] != a->router_port_now(fi, last_now_);
    }
    if (whole) {
      build_domain(d, bd, last_now_, nullptr);
      record_routes(d, bd, last_now_, nullptr);
    } else {
      std::optional<Snapshot> before;
      if (verify_incremental_) before.emplace(d);
      bd = *last;
      auto& groups = d.changed_groups;
      for (const auto& n : d.denied) groups.push_back(group_of(n.charge));
      std::sort(groups.begin(), groups.end(), group_less);
      groups.erase(std::unique(groups.begin(), groups.end(),
                               [](const auto& a, const auto& b) { return !group_less(a, b) && !group_less(b, a); }),
                   groups.end());
      if (!groups.empty()) {
        build_domain(d, bd, last_now_, &groups);
        record_routes(d, bd, last_now_, &groups);
      }
      if (before) verify(d, bd, *before);
    }
    d.rebuild_all = false;
    d.changed_groups.clear();
  }
  t->counters = counters_;
  tables_ = std::move(t);
}

bool Snooping::note_changes(SnoopedDomain& d, const RouterOutput& out) {
  for (const auto& g : out.changed) d.changed_groups.push_back(route_key(g.family, g, nullptr));
  dirty_ |= !out.changed.empty();
  return !out.changed.empty();
}

void Snooping::verify(SnoopedDomain& d, const dataplane::MulticastBridgeDomain& bd, const Snapshot& before) {
  ++incremental_checks_;
  const Snapshot incremental(d);
  before.restore(d);
  dataplane::MulticastBridgeDomain whole;  // its routes' targets, not their counter slots (no record_routes)
  build_domain(d, whole, last_now_, nullptr);
  bool same = whole.routes.size() == bd.routes.size() && whole.routers == bd.routers &&
              d.in_use_kbps == incremental.in_use_kbps && d.denials == incremental.denials &&
              d.flow_states.size() == incremental.flow_states.size() && d.denied.size() == incremental.denied.size();
  for (const auto& [key, route] : whole.routes) {
    auto it = bd.routes.find(key);
    same = same && it != bd.routes.end() && route.locals == it->second.locals &&
           route.remote_vteps == it->second.remote_vteps;
  }
  for (size_t i = 0; same && i < d.flow_states.size(); ++i) {
    const auto &a = d.flow_states[i], &b = incremental.flow_states[i];
    same = a.fe == b.fe && a.first == b.first && a.admitted == b.admitted;
  }
  for (size_t i = 0; same && i < d.denied.size(); ++i) {
    const auto &a = d.denied[i], &b = incremental.denied[i];
    same = a.key == b.key && a.egress == b.egress && a.charge == b.charge && a.flow == b.flow &&
           a.rate_kbps == b.rate_kbps && a.in_use_kbps == b.in_use_kbps;
  }
  // The incremental's own books: each egress's use is what its states were charged.
  std::map<std::string, uint64_t> charged;
  for (const auto& s : incremental.flow_states) {
    if (s.charged_kbps) charged[d.egress_names[s.fe.second]] += s.charged_kbps;
  }
  same = same && charged == incremental.in_use_kbps;
  incremental.restore(d);  // the next rebuild builds on the incremental's state, as it does in service
  if (same) return;
  ++incremental_mismatches_;
  log::error("multicast", "an incremental rebuild differs from a whole one", {{"vni", d.vni}});
}

std::shared_ptr<const dataplane::OverlayMulticast> with_overlay_slots(const dataplane::OverlayMulticast& routes,
                                                                      const dataplane::OverlayVtepSlots* slots) {
  auto t = std::make_shared<dataplane::OverlayMulticast>(routes);
  for (auto& [vni, bd] : t->bridge_domains) {
    for (auto& [key, route] : bd.routes) {
      for (size_t j = 0; j < route.remote_vteps.size(); ++j) {
        const uint16_t slot = slots ? slots->slot(route.remote_vteps[j]) : dataplane::OverlayVtepSlots::kNone;
        if (slot == dataplane::OverlayVtepSlots::kNone) continue;
        route.remotes.push_back(slot);
        route.remote_slots.push_back(j < route.remote_vtep_slots.size() ? route.remote_vtep_slots[j]
                                                                        : dataplane::MulticastRouteCounters::kNoSlot);
      }
    }
  }
  return t;
}

bool Snooping::assign(CountedSlot& c, Millis now) {
  c = {};
  if (!free_slots_.empty() && free_slots_.front().second + kSlotGraceMs <= now) {
    c.slot = free_slots_.front().first;
    free_slots_.pop_front();
    counters_->forget_ingress(c.slot);
  } else if (counters_->reserve(next_slot_ + 1)) {  // storage before any version names it
    c.slot = next_slot_++;
  } else {
    return false;  // counted once a slot frees (the route forwards all the same)
  }
  const auto t = counters_->sum(c.slot);
  c.packets = t.packets;
  c.bytes = t.bytes;
  return true;
}

void Snooping::release(const CountedSlot& c, Millis now) {
  if (c.slot != dataplane::MulticastRouteCounters::kNoSlot) free_slots_.emplace_back(c.slot, now);
}

void Snooping::release(const RouteRecord& rec, Millis now) {
  release(rec.in, now);
  for (const auto& [k, e] : rec.locals) release(e.out, now);
  for (const auto& [k, e] : rec.remotes) release(e.out, now);
}

uint32_t Snooping::egress_slot(RouteRecord::Egress& e, uint64_t generation, Millis now) {
  if (e.seen == 0) e.since = now;
  if (e.out.slot == dataplane::MulticastRouteCounters::kNoSlot) assign(e.out, now);
  e.seen = generation;
  return e.out.slot;
}

void Snooping::record_routes(SnoopedDomain& d, dataplane::MulticastBridgeDomain& out, Millis now,
                             const std::vector<dataplane::MulticastKey>* only) {
  auto redone = [&](const dataplane::MulticastKey& k) {
    return !only || std::binary_search(only->begin(), only->end(), k, group_less);
  };
  const uint64_t generation = ++record_generation_;
  std::erase_if(d.route_records, [&](auto& r) {
    if (!redone(r.first) || out.routes.count(r.first)) return false;
    release(r.second, now);
    return true;
  });
  auto gone = [&](auto& entry) {
    if (entry.second.seen == generation) return false;
    release(entry.second.out, now);
    return true;
  };
  for (auto& [key, route] : out.routes) {
    if (!redone(key)) continue;  // the last table's, slots and all
    auto [it, fresh] = d.route_records.try_emplace(key);
    RouteRecord& rec = it->second;
    if (fresh) {
      rec.created = now;
      rec.flow = flow_index(d.cfg, key);
      if (rec.flow >= 0) rec.charged_kbps = d.cfg.flows[static_cast<size_t>(rec.flow)].rate_kbps;  // its floor, as weighed
    }
    if (rec.in.slot == dataplane::MulticastRouteCounters::kNoSlot && assign(rec.in, now)) rec.sampled_at = 0;
    route.counter_slot = rec.in.slot;
    const bool no_missing_slot =
        std::find(rec.last_local_slots.begin(), rec.last_local_slots.end(), dataplane::MulticastRouteCounters::kNoSlot) ==
            rec.last_local_slots.end() &&
        std::find(rec.last_remote_vtep_slots.begin(), rec.last_remote_vtep_slots.end(),
                  dataplane::MulticastRouteCounters::kNoSlot) == rec.last_remote_vtep_slots.end();
    if (!fresh && no_missing_slot && route.locals == rec.last_locals && route.remote_vteps == rec.last_remote_vteps) {
      route.local_slots = rec.last_local_slots;  // the same egresses: nothing to look up
      route.remote_vtep_slots = rec.last_remote_vtep_slots;
      continue;
    }
    route.local_slots.clear();
    route.remote_vtep_slots.clear();
    for (const auto& l : route.locals) {
      route.local_slots.push_back(egress_slot(rec.locals[dataplane::MulticastIngress::attachment(l)], generation, now));
    }
    for (const auto& v : route.remote_vteps) route.remote_vtep_slots.push_back(egress_slot(rec.remotes[v], generation, now));
    std::erase_if(rec.locals, gone);
    std::erase_if(rec.remotes, gone);
    rec.last_locals = route.locals;
    rec.last_remote_vteps = route.remote_vteps;
    rec.last_local_slots = route.local_slots;
    rec.last_remote_vtep_slots = route.remote_vtep_slots;
  }
  // A group without routes has no traffic left to weigh.
  std::set<std::pair<uint8_t, std::array<uint8_t, 16>>> groups;
  for (const auto& [key, route] : out.routes) groups.emplace(key.family, key.group);
  std::erase_if(d.group_peaks, [&](const auto& g) {
    return !groups.count({std::get<0>(g.first), std::get<1>(g.first)});
  });
}

namespace {

struct Link {
  const std::map<IpAddress, GroupState>* groups;
  const dataplane::BridgePort* local;  // else `remote`
  const IpAddress* remote;
  std::string name;  // the egress, as budgets name it
  uint32_t egress = 0;  // SnoopedDomain::egress_id(name)
  uint64_t budget = 0;  // kbit/s, 0: none
  uint64_t* used = nullptr;  // its use, in SnoopedDomain::in_use_kbps
};

/// A link wanting a route, before admission.
struct Candidate {
  dataplane::MulticastKey key;
  const Link* link;
  Millis since;        // when the link's group began (0: a static subscription)
  bool excluder;       // the link takes the group from any source (EXCLUDE mode)
  bool router_port = false;  // a local router port: gets every group, not budgeted
  bool ran = false;    // admitted at the last rebuild
  Millis first = 0;    // when the egress first wanted this route
  uint32_t index = 0;  // in the order links were listed
  uint32_t state = 0;  // its FlowState in this rebuild
  int flow = -1;       // the declared flow it is charged as (-1: none, or a router port: never budgeted)
  bool shared_charge = false;  // an excluder on a group of several routes: one charge may cover them
};

/// By (route, egress), then in the order links list them.
bool candidate_less(const Candidate& a, const Candidate& b) {
  const FlowEgress fa{a.key, a.link->egress}, fb{b.key, b.link->egress};
  return FlowEgressLess{}(fa, fb) || (!FlowEgressLess{}(fb, fa) && a.index < b.index);
}

std::string describe(const dataplane::MulticastKey& k) {
  return "(" + key_source(k) + ", " + config::to_string(key_group(k)) + ")";
}

}  // namespace

/// Buffers a rebuild fills and empties, kept between rebuilds: at tens of
/// thousands of memberships, fresh ones cost a page fault per 4 KiB.
struct Snooping::RebuildScratch {
  std::vector<Candidate> candidates;
  std::vector<uint32_t> rated;  // the candidates a declared flow charges, in admission order
  std::vector<FlowState> states;
  std::vector<FlowState> merged;  // an incremental rebuild's states, all groups
};

Snooping::Snooping(SnoopingIo io, unsigned workers)
    : io_(std::move(io)),
      counters_(std::make_shared<dataplane::MulticastRouteCounters>(workers)),
      scratch_(std::make_unique<RebuildScratch>()) {}
Snooping::~Snooping() = default;

void Snooping::sample_rates(Millis now) {
  for (auto& d : domains_) {
    std::map<GroupFlow, uint64_t> sums;  // measured flows: this period's kbit/s per group
    for (auto& [key, rec] : d.route_records) {
      if (rec.in.slot == dataplane::MulticastRouteCounters::kNoSlot) continue;
      const auto t = counters_->sum(rec.in.slot);
      if (rec.sampled_at != 0 && now > rec.sampled_at) {
        const double seconds = static_cast<double>(now - rec.sampled_at) / 1000.0;
        rec.rate_pps = static_cast<double>(t.packets - rec.sampled_packets) / seconds;
        rec.rate_bps = static_cast<double>(t.bytes - rec.sampled_bytes) * 8 / seconds;
        const auto kbps = static_cast<uint64_t>(rec.rate_bps / 1000);
        rec.peak_kbps = std::max(rec.peak_kbps, kbps);
        if (rec.flow >= 0 && d.cfg.flows[static_cast<size_t>(rec.flow)].measured) {
          sums[{key.family, key.group, rec.flow}] += kbps;
        }
      }
      rec.sampled_at = now;
      rec.sampled_packets = t.packets;
      rec.sampled_bytes = t.bytes;
    }
    // A measured flow whose charge grew is weighed again now (its group
    // redone, as a whole rebuild would weigh it; what runs keeps running:
    // only newcomers can be refused).
    auto regrown = [&](uint64_t peak, uint64_t charged, int flow, const dataplane::MulticastKey& key) {
      const uint64_t charge = std::max<uint64_t>(d.cfg.flows[static_cast<size_t>(flow)].rate_kbps, peak);
      if (charge == charged) return;
      d.changed_groups.push_back(group_of(key));
      dirty_ = true;
    };
    for (const auto& [key, rec] : d.route_records) {
      if (rec.flow >= 0 && d.cfg.flows[static_cast<size_t>(rec.flow)].measured) {
        regrown(rec.peak_kbps, rec.charged_kbps, rec.flow, key);
      }
    }
    for (const auto& [g, kbps] : sums) {
      // A new group was weighed at its floor.
      GroupPeak& p = d.group_peaks.try_emplace(g, GroupPeak{0, d.cfg.flows[static_cast<size_t>(std::get<2>(g))].rate_kbps})
                         .first->second;
      p.peak_kbps = std::max(p.peak_kbps, kbps);
      regrown(p.peak_kbps, p.charged_kbps, std::get<2>(g), group_of(g));
    }
  }
}

void Snooping::build_domain(SnoopedDomain& d, dataplane::MulticastBridgeDomain& out, Millis now,
                            const std::vector<dataplane::MulticastKey>* only) {
  auto redone = [&](const dataplane::MulticastKey& k) {  // a route, state or peak of a group this rebuild does
    return !only || std::binary_search(only->begin(), only->end(), k, group_less);
  };
  // A group's states, one run of the sorted list.
  struct ByGroup {
    bool operator()(const FlowState& s, const dataplane::MulticastKey& g) const { return group_less(s.fe.first, g); }
    bool operator()(const dataplane::MulticastKey& g, const FlowState& s) const { return group_less(g, s.fe.first); }
  };
  out.overlay_snooped = d.cfg.ingress;
  if (!only) {
    for (auto& a : d.attachments) {
      for (size_t fi = 0; fi < 2; ++fi) {
        a->router_port[fi] = a->router_port_now(fi, now);
        if (a->router_port[fi]) out.routers[fi].push_back(a->where);
      }
    }
  } else {
    // `out` is the last table: the groups redone lose their routes (the
    // route records list them) and get them back as they are now.
    for (const auto& g : *only) {
      for (auto it = d.route_records.lower_bound(g); it != d.route_records.end() && !group_less(g, it->first); ++it) {
        out.routes.erase(it->first);
      }
    }
  }
  std::vector<Candidate>& candidates = scratch_->candidates;
  candidates.clear();
  std::vector<std::vector<Link>> links_by_family(2);
  for (uint8_t family : {uint8_t{4}, uint8_t{6}}) {
    std::vector<Link>& links = links_by_family[family == 6];
    for (const auto& a : d.attachments) {
      links.push_back({&a->router(family).groups(), &a->where, nullptr, egress_name(a->port_name, a->where.vlan)});
    }
    for (const auto& [vtep, e] : d.edges) {
      links.push_back({&e->router(family).groups(), nullptr, &e->vtep, egress_name(vtep)});
    }
    for (const auto& st : d.statics) {
      links.push_back({&st.groups, st.local ? &*st.local : nullptr, st.local ? nullptr : &st.vtep, st.name});
    }
    for (auto& l : links) l.egress = d.egress_id(l.name);
    struct Holder {
      const Link* link;
      const GroupState* gs;
    };
    // A group's candidates from the links holding it (in link order).
    auto gather = [&](const IpAddress& g, const std::vector<Holder>& held) {
      const size_t group_begin = candidates.size();
      size_t group_routes = 0;
      std::set<IpAddress> sources;
      bool any_excluder = false;
      for (const auto& h : held) {
        any_excluder |= h.gs->mode == FilterMode::kExclude;
        for (const auto& [src, rec] : h.gs->sources) sources.insert(src);
      }
      // A flow declared from a source gets its own (S,G) route when any link
      // takes any source: admission then weighs it per egress like any other.
      for (const auto& f : d.cfg.flows) {
        if (any_excluder && f.source && f.source->family == family && f.group.contains(g)) sources.insert(*f.source);
      }
      for (const auto& src : sources) {
        const auto key = route_key(family, g, &src);
        out.routes[key];  // even with no link: a source every listener blocks stays blocked
        ++group_routes;
        for (const auto& h : held) {
          if (h.gs->wants(src, now)) {
            candidates.push_back({key, h.link, h.gs->created, h.gs->mode == FilterMode::kExclude});
            candidates.back().index = static_cast<uint32_t>(candidates.size() - 1);
          }
        }
      }
      if (any_excluder) {
        const auto key = route_key(family, g, nullptr);
        out.routes[key];
        ++group_routes;
        for (const auto& h : held) {
          if (h.gs->mode == FilterMode::kExclude) {
            candidates.push_back({key, h.link, h.gs->created, true});
            candidates.back().index = static_cast<uint32_t>(candidates.size() - 1);
          }
        }
      }
      if (group_routes > 1) {
        for (size_t i = group_begin; i < candidates.size(); ++i) candidates[i].shared_charge = candidates[i].excluder;
      }
      // Groups come in key order (family, then group), so sorting each
      // group's share puts the whole list in (route, egress) order.
      std::sort(candidates.begin() + static_cast<long>(group_begin), candidates.end(), candidate_less);
    };
    if (only) {
      std::vector<Holder> held;
      for (const auto& gk : *only) {
        if (gk.family != family) continue;
        const IpAddress g = key_group(gk);
        held.clear();
        for (const auto& l : links) {
          if (auto it = l.groups->find(g); it != l.groups->end()) held.push_back({&l, &it->second});
        }
        gather(g, held);
      }
      continue;
    }
    // Each group with the links holding it, in link order (one pass over
    // every link's groups, no lookup per group and link).
    std::map<IpAddress, std::vector<Holder>> holders;
    IpAddress family_start;  // addresses order by family first: this family's groups are one run
    family_start.family = family;
    for (const auto& l : links) {
      // A link's groups come sorted, so the hint (the holder after the last
      // one) is the group itself or the place to insert it: no search.
      auto hint = holders.begin();
      for (auto it = l.groups->lower_bound(family_start); it != l.groups->end() && it->first.family == family; ++it) {
        auto at = holders.try_emplace(hint, it->first);
        at->second.push_back({&l, &it->second});
        hint = std::next(at);
      }
    }
    for (const auto& [g, held] : holders) gather(g, held);
  }
  assert(std::is_sorted(candidates.begin(), candidates.end(), candidate_less));
  // Admission, first come first served: a flow with a declared rate goes to
  // an egress only while the egress's budget holds it; otherwise the egress
  // gets none of it (never part of a flow). What was admitted at the last
  // rebuild goes first, then by when the egress first wanted that route
  // (static subscriptions: from the start), so that a later join never cuts
  // a running stream. An any-source receiver pays a declared flow once per
  // group, however many of the group's routes carry it ((*,G) and the (S,G)
  // routes it takes as an excluder); a listed source is a stream of its own.
  // A refusal lifts when an older flow leaves.
  std::map<std::string, uint64_t> budgets;
  for (const auto& b : d.cfg.budgets) budgets[config::to_string(b.egress)] = b.rate_kbps;
  if (!only) {
    d.in_use_kbps.clear();
  } else {
    for (const auto& g : *only) {  // the groups redone give back what they were charged
      const auto [from, to] = std::equal_range(d.flow_states.begin(), d.flow_states.end(), g, ByGroup{});
      for (auto s = from; s != to; ++s) {
        if (!s->charged_kbps) continue;
        uint64_t& used = d.in_use_kbps[d.egress_names[s->fe.second]];
        used -= std::min(used, s->charged_kbps);
      }
    }
  }
  for (auto& links : links_by_family) {
    for (auto& l : links) {
      auto b = budgets.find(l.name);
      l.budget = b != budgets.end() ? b->second : d.cfg.default_budget_kbps;
      l.used = &d.in_use_kbps[l.name];
    }
  }
  // Each (route, egress) once, with its history: sorted like flow_states
  // (the last rebuild's, merged in one pass); a static subscription and a
  // join for the same egress are one flow there (the first listed stays),
  // and a static keeps its priority (wanted from the start).
  auto fe_of = [](const Candidate& c) { return FlowEgress{c.key, c.link->egress}; };
  std::vector<FlowState>& states = scratch_->states;
  states.clear();
  auto old = d.flow_states.begin();
  size_t kept = 0;
  std::optional<dataplane::MulticastKey> flow_of;  // the route `route_flow` is for (a copy: the loop compacts in place)
  int route_flow = -1;
  for (size_t i = 0; i < candidates.size();) {
    const FlowEgress fe = fe_of(candidates[i]);
    size_t j = i;
    bool from_start = false;
    for (; j < candidates.size() && !FlowEgressLess{}(fe, fe_of(candidates[j])); ++j) from_start |= candidates[j].since == 0;
    // A step at a time through a whole rebuild's; a search past groups not redone.
    for (int step = 0; old != d.flow_states.end() && FlowEgressLess{}(old->fe, fe); ++step) {
      if (step == 4) {
        old = std::lower_bound(old, d.flow_states.end(), fe,
                               [](const FlowState& s, const FlowEgress& f) { return FlowEgressLess{}(s.fe, f); });
        break;
      }
      ++old;
    }
    const bool known = old != d.flow_states.end() && !FlowEgressLess{}(fe, old->fe);
    Candidate c = candidates[i];
    c.first = from_start ? 0 : known ? old->first : now;
    c.ran = known && old->admitted;
    c.state = static_cast<uint32_t>(states.size());
    const auto& routers = out.routers[c.key.family == 6];
    c.router_port = c.link->local && std::find(routers.begin(), routers.end(), *c.link->local) != routers.end();
    if (!flow_of || !(*flow_of == c.key)) {  // in key order: once per route
      flow_of = c.key;
      route_flow = flow_index(d.cfg, c.key);
    }
    c.flow = c.router_port ? -1 : route_flow;
    states.push_back({fe, c.first, c.flow < 0, 0});  // what no flow charges is admitted as it is
    candidates[kept++] = c;
    i = j;
  }
  candidates.resize(kept);
  // Only what a flow charges is weighed, and its order decides: what ran
  // first, then by when the egress first wanted it; ties in the order the
  // links list them.
  std::vector<uint32_t>& rated = scratch_->rated;
  rated.clear();
  for (uint32_t i = 0; i < candidates.size(); ++i) {
    if (candidates[i].flow >= 0) rated.push_back(i);
  }
  std::sort(rated.begin(), rated.end(), [&](uint32_t x, uint32_t y) {
    const Candidate &a = candidates[x], &b = candidates[y];
    if (a.ran != b.ran) return a.ran;
    return a.first != b.first ? a.first < b.first : a.index < b.index;
  });
  std::vector<AdmissionDenial> denied;
  struct PaidHash {
    size_t operator()(const std::pair<FlowEgress, int>& p) const {
      return FlowEgressHash{}(p.first) ^ static_cast<size_t>(p.second + 1) * 0xff51afd7ed558ccdULL;
    }
  };
  std::unordered_map<std::pair<FlowEgress, int>, bool, PaidHash> charged;  // one charge -> admitted
  // A measured flow is charged the highest rate it has run at, at least its
  // declared rate: a listed source its (S,G) route's peak, an any-source
  // receiver the peak of the group's traffic of that flow (summed over the
  // group's routes per sampling period).
  auto charge_kbps = [&](const Candidate& c, int flow) -> uint64_t {
    if (flow < 0) return 0;
    const config::MulticastFlow& f = d.cfg.flows[static_cast<size_t>(flow)];
    if (!f.measured) return f.rate_kbps;
    uint64_t peak = 0;
    if (c.excluder) {
      auto it = d.group_peaks.find({c.key.family, c.key.group, flow});
      if (it != d.group_peaks.end()) peak = it->second.peak_kbps;
    } else if (auto it = d.route_records.find(c.key); it != d.route_records.end()) {
      peak = it->second.peak_kbps;
    }
    return std::max<uint64_t>(f.rate_kbps, peak);
  };
  for (auto& [k, rec] : d.route_records) {  // what this weighing charges
    if (rec.flow >= 0 && redone(k)) rec.charged_kbps = std::max<uint64_t>(d.cfg.flows[static_cast<size_t>(rec.flow)].rate_kbps, rec.peak_kbps);
  }
  for (auto& [g, p] : d.group_peaks) {  // kept only while the flows are the same (apply)
    if (redone(group_of(g))) p.charged_kbps = std::max<uint64_t>(d.cfg.flows[static_cast<size_t>(std::get<2>(g))].rate_kbps, p.peak_kbps);
  }
  for (uint32_t i : rated) {
    const Candidate& c = candidates[i];
    const int flow = c.flow;
    const uint64_t rate = charge_kbps(c, flow);
    const uint64_t budget = c.link->budget;
    uint64_t& used = *c.link->used;
    bool admit = true;
    if (rate) {
      // One charge covers the egress, the group and the flow (and the
      // source, for a receiver that lists it): only an excluder's charge
      // can be met twice, on a group with several routes.
      auto it = charged.end();
      std::pair<FlowEgress, int> paid{{c.key, c.link->egress}, flow};
      if (c.shared_charge) {
        paid.first.first.source.fill(0);
        it = charged.find(paid);
      }
      if (it != charged.end()) {
        admit = it->second;  // already weighed for this egress
      } else {
        // What ran keeps running, even where its charge grew or the budget
        // shrank: the egress's use may then exceed the budget for a while.
        admit = c.ran || !budget || used + rate <= budget;
        if (c.shared_charge) charged.emplace(paid, admit);
        if (admit) {
          used += rate;
          states[c.state].charged_kbps = rate;
        }
      }
    }
    if (!admit) {
      dataplane::MulticastKey charge = c.key;
      if (c.shared_charge) charge.source.fill(0);  // as `paid`: the refusal is that charge's
      denied.push_back({c.key, c.link->name, rate, budget, used, charge, flow});
      continue;
    }
    states[c.state].admitted = true;
  }
  // Each route's egresses in egress order (stable from one rebuild to the next).
  dataplane::MulticastRoute* route = nullptr;
  const dataplane::MulticastKey* route_key_of = nullptr;
  for (const auto& c : candidates) {
    if (!states[c.state].admitted) continue;
    if (!route_key_of || !(*route_key_of == c.key)) {
      route = &out.routes[c.key];
      route_key_of = &c.key;
    }
    if (c.link->local) route->locals.push_back(*c.link->local);
    else route->remote_vteps.push_back(*c.link->remote);
  }
  if (!only) {
    std::swap(d.flow_states, states);  // the old one's buffer serves the next rebuild
  } else {
    // The groups redone replace their runs of the sorted states.
    std::vector<FlowState>& merged = scratch_->merged;
    merged.clear();
    auto from = d.flow_states.cbegin();
    auto fresh = states.cbegin();
    for (const auto& g : *only) {
      const auto [b, e] = std::equal_range(from, d.flow_states.cend(), g, ByGroup{});
      const auto fresh_end = std::upper_bound(fresh, states.cend(), g, ByGroup{});
      merged.insert(merged.end(), from, b);
      merged.insert(merged.end(), fresh, fresh_end);
      from = e;
      fresh = fresh_end;
    }
    merged.insert(merged.end(), from, d.flow_states.cend());
    std::swap(d.flow_states, merged);
  }
  std::erase_if(d.in_use_kbps, [](const auto& e) { return e.second == 0; });
  // A refusal is logged and counted when it begins, and logged when it ends
  // (admitted, or no longer wanted). Both lists sorted by refusal, so that
  // a join storm's refusals are matched in O(n log n).
  auto refusal_less = [](const AdmissionDenial& a, const AdmissionDenial& b) {
    if (key_less(a.charge, b.charge)) return true;
    if (key_less(b.charge, a.charge)) return false;
    return a.flow != b.flow ? a.flow < b.flow : a.egress < b.egress;
  };
  std::stable_sort(denied.begin(), denied.end(), refusal_less);
  auto first_of_refusal = [&](const std::vector<AdmissionDenial>& v, size_t i) {
    return i == 0 || refusal_less(v[i - 1], v[i]);
  };
  for (size_t i = 0; i < denied.size(); ++i) {
    const auto& n = denied[i];
    if (!first_of_refusal(denied, i) || std::binary_search(d.denied.begin(), d.denied.end(), n, refusal_less)) continue;
    ++d.denials;
    log::warn("multicast", "join refused: the flow would exceed the egress's bandwidth budget",
              {{"vni", d.vni}, {"flow", describe(n.key)}, {"egress", n.egress}, {"rate_kbps", n.rate_kbps},
               {"budget_kbps", n.budget_kbps}, {"in_use_kbps", n.in_use_kbps}});
  }
  auto forwarded = [&](const AdmissionDenial& o) {  // the refused (route, egress) is in this rebuild's routes
    const FlowEgress fe{o.key, d.egress_id(o.egress)};
    auto it = std::lower_bound(d.flow_states.begin(), d.flow_states.end(), fe,
                               [](const FlowState& s, const FlowEgress& f) { return FlowEgressLess{}(s.fe, f); });
    return it != d.flow_states.end() && it->fe == fe && it->admitted;
  };
  for (size_t i = 0; i < d.denied.size(); ++i) {
    const auto& o = d.denied[i];
    if (!first_of_refusal(d.denied, i) || std::binary_search(denied.begin(), denied.end(), o, refusal_less)) continue;
    bool now_forwarded = false;  // on any of the routes the refusal kept from the egress
    for (size_t j = i; j < d.denied.size() && (j == i || !first_of_refusal(d.denied, j)); ++j) {
      now_forwarded |= forwarded(d.denied[j]);
    }
    log::info("multicast", now_forwarded ? "refused flow now forwarded" : "refused flow withdrawn: the egress no longer wants it",
              {{"vni", d.vni}, {"flow", describe(o.key)}, {"egress", o.egress}});
  }
  d.denied = std::move(denied);
  // Every route also goes to the router ports, once (they are not budgeted).
  for (auto& [key, route] : out.routes) {
    for (const auto& r : out.routers[key.family == 6]) {
      if (std::find(route.locals.begin(), route.locals.end(), r) == route.locals.end()) route.locals.push_back(r);
    }
  }
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
    e["queries_withheld"] = c.queries_withheld;
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
    if (d.cfg.ingress && d.cfg.upstream && !configured_upstream_running(d)) {
      // Named by the config, but its port is not running: say so rather than list nothing.
      overlay.push_back({{"vni", d.vni}, {"role", "upstream"}, {"port", d.cfg.upstream->port},
                         {"vlan", d.cfg.upstream->vlan}, {"configured", true}, {"running", false}});
    }
    for (const auto& a : d.attachments) {
      for (size_t fi = 0; fi < 2; ++fi) {
        if (!a->upstream[fi]) continue;
        overlay.push_back({{"vni", d.vni}, {"role", "upstream"}, {"port", a->port_name}, {"vlan", a->where.vlan},
                           {"configured", a->upstream_configured}, {"running", true},
                           {"protocol", fi ? "mld" : "igmp"}, {"version", a->upstream[fi]->compatibility(now)},
                           {"groups", a->upstream[fi]->state().size()},
                           {"reports_sent", a->upstream[fi]->reports_sent()}});
      }
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

namespace {

/// When an egress's interest in a route lapses unless renewed (ms from now):
/// for a link wanting only listed sources, the route source's timer; for one
/// taking any source, its group timer; for a router port, its querier's
/// timeout. Nullopt when a static subscription of the egress wants the route.
std::optional<Millis> egress_expiry(const dataplane::MulticastKey& k, const MembershipRouter* router,
                                    Millis router_until, const std::vector<const StaticLink*>& statics, Millis now) {
  const IpAddress group = key_group(k);
  const bool any = key_any_source(k);
  const IpAddress source = k.family == 4 ? IpAddress::v4(k.source.data()) : IpAddress::v6(k.source.data());
  auto wants = [&](const GroupState& gs) { return any ? gs.mode == FilterMode::kExclude : gs.wants(source, now); };
  for (const StaticLink* st : statics) {
    if (auto g = st->groups.find(group); g != st->groups.end() && wants(g->second)) return std::nullopt;
  }
  Millis until = router_until;
  if (router) {
    if (auto g = router->groups().find(group); g != router->groups().end()) {
      const GroupState& gs = g->second;
      if (gs.mode == FilterMode::kExclude) {
        until = std::max(until, gs.group_timer);
      } else if (auto src = gs.sources.find(source); !any && src != gs.sources.end()) {
        until = std::max(until, src->second.expires);
      }
    }
  }
  return until > now ? until - now : 0;
}

}  // namespace

json Snooping::routes_json(Millis now) const {
  const auto seconds = [&](Millis since) { return (now - std::min(now, since)) / 1000; };
  auto add_counts = [&](json& into, const CountedSlot& c) {
    if (c.slot == dataplane::MulticastRouteCounters::kNoSlot) return;  // not counted: no slot was free
    const auto t = counted(c);
    into["packets"] = t.packets;
    into["bytes"] = t.bytes;
  };
  json out = json::array(), budgets = json::array();
  for (const auto& d : domains_) {
    const auto* bd = tables_->bd(d.vni);
    if (!bd) continue;
    std::map<uint32_t, const Attachment*> attachments;
    for (const auto& a : d.attachments) attachments[dataplane::MulticastIngress::attachment(a->where)] = a.get();
    std::map<uint32_t, std::vector<const StaticLink*>> local_statics;
    std::map<IpAddress, std::vector<const StaticLink*>> remote_statics;
    for (const auto& st : d.statics) {
      if (st.local) local_statics[dataplane::MulticastIngress::attachment(*st.local)].push_back(&st);
      else remote_statics[st.vtep].push_back(&st);
    }
    static const std::vector<const StaticLink*> kNone;
    for (const auto& entry : bd->routes) {
      const dataplane::MulticastKey& k = entry.first;  // not a structured binding: the lambdas below capture it
      const dataplane::MulticastRoute& route = entry.second;
      const RouteRecord* rec = nullptr;
      if (auto it = d.route_records.find(k); it != d.route_records.end()) rec = &it->second;
      json outgoing = json::array();
      auto add = [&](json o, const RouteRecord::Egress* e, const MembershipRouter* router, Millis router_until,
                     const std::vector<const StaticLink*>& statics) {
        if (e) {
          add_counts(o, e->out);
          o["uptime_s"] = seconds(e->since);
        }
        if (auto expires = egress_expiry(k, router, router_until, statics, now)) o["expires_in_ms"] = *expires;
        outgoing.push_back(std::move(o));
      };
      for (const auto& l : route.locals) {
        const uint32_t id = dataplane::MulticastIngress::attachment(l);
        auto a = attachments.find(id);
        const Attachment* att = a == attachments.end() ? nullptr : a->second;
        auto e = rec ? rec->locals.find(id) : decltype(rec->locals.end()){};
        auto st = local_statics.find(id);
        add({{"port", att ? att->port_name : std::string()}, {"vlan", l.vlan}},
            rec && e != rec->locals.end() ? &e->second : nullptr, att ? &att->router(k.family) : nullptr,
            att ? att->router_until[k.family == 6] : 0, st == local_statics.end() ? kNone : st->second);
      }
      for (const auto& v : route.remote_vteps) {
        auto edge = d.edges.find(v);
        auto e = rec ? rec->remotes.find(v) : decltype(rec->remotes.end()){};
        auto st = remote_statics.find(v);
        add({{"vtep", config::to_string(v)}}, rec && e != rec->remotes.end() ? &e->second : nullptr,
            edge == d.edges.end() ? nullptr : &edge->second->router(k.family), 0,
            st == remote_statics.end() ? kNone : st->second);
      }
      json r = {{"vni", d.vni}, {"source", key_source(k)},
                {"group", config::to_string(key_group(k))}, {"outgoing", outgoing}};
      const int flow = flow_index(d.cfg, k);
      if (flow >= 0) {
        const auto& f = d.cfg.flows[static_cast<size_t>(flow)];
        if (f.rate_kbps) r["rate_kbps"] = f.rate_kbps;
        if (f.measured) r["peak_kbps"] = rec ? rec->peak_kbps : 0;
      }
      if (rec) {
        r["uptime_s"] = seconds(rec->created);
        add_counts(r, rec->in);
        if (rec->in.slot != dataplane::MulticastRouteCounters::kNoSlot) {
          r["measured_bps"] = static_cast<uint64_t>(rec->rate_bps);
          r["measured_pps"] = static_cast<uint64_t>(rec->rate_pps);
          const uint32_t in = counted(rec->in).last_ingress;
          if (in == dataplane::MulticastIngress::kOverlay) {
            r["incoming"] = "overlay";
          } else if (auto a = attachments.find(in); a != attachments.end()) {
            r["incoming"] = {{"port", a->second->port_name}, {"vlan", a->second->where.vlan}};
          }
        }
      }
      json denied = json::array();
      for (const auto& n : d.denied) {
        if (n.key == k) {
          denied.push_back({{"egress", n.egress}, {"admission", "denied"}, {"rate_kbps", n.rate_kbps},
                            {"budget_kbps", n.budget_kbps}, {"in_use_kbps", n.in_use_kbps}});
        }
      }
      if (!denied.empty()) r["denied"] = std::move(denied);
      out.push_back(std::move(r));
    }
    std::map<std::string, uint64_t> limits;
    for (const auto& b : d.cfg.budgets) limits[config::to_string(b.egress)] = b.rate_kbps;
    for (const auto& [egress, used] : d.in_use_kbps) {
      auto it = limits.find(egress);
      const uint64_t limit = it != limits.end() ? it->second : d.cfg.default_budget_kbps;
      budgets.push_back({{"vni", d.vni}, {"egress", egress}, {"in_use_kbps", used}, {"budget_kbps", limit}});
    }
  }
  std::sort(out.begin(), out.end(), [](const json& a, const json& b) {
    return std::tie(a["vni"], a["group"], a["source"]) < std::tie(b["vni"], b["group"], b["source"]);
  });
  return {{"routes", out}, {"budgets", budgets}};
}

}  // namespace meridian::mcast
