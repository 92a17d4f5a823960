#include "multicast_gw/module.h"

#include <algorithm>
#include <cstring>

#include <rte_cycles.h>

#include "multicast_gw/drop_reasons.h"
#include "multicast_gw/stage.h"
#include "net/packet_meta.h"

namespace meridian::mcast {

using dataplane::RestResource;

MulticastModule::MulticastModule(const dataplane::ModuleHost& host) : host_(host) {
  snooping_ = std::make_unique<Snooping>(SnoopingIo{
      [this](uint16_t port, std::span<const uint8_t> frame) { return host_.send_frame && host_.send_frame(port, frame); },
      [this](uint16_t port, DecodeStatus why) {
        if (host_.control_counters && port < dataplane::kMaxPorts) {
          host_.control_counters->ports[port].drop(drop_for(why));
        }
      },
      [this](uint32_t vni, const IpAddress& vtep, std::span<const uint8_t> frame) {
        return host_.send_overlay && host_.send_overlay(vni, vtep, frame);
      }},
      host.workers);
}

std::unique_ptr<dataplane::Module> MulticastModule::create(const dataplane::ModuleHost& host, std::string&) {
  drop_id(McastDrop{});  // its drop reasons are listed from the start
  std::unique_ptr<MulticastModule> m(new MulticastModule(host));
  m->commit(host.config);
  return m;
}

Millis MulticastModule::now_ms() const {
  return static_cast<Millis>(rte_rdtsc() / (host_.tsc_hz / 1000));
}

std::vector<SnoopPort> MulticastModule::ports() const {
  std::vector<SnoopPort> out;
  for (const auto& p : host_.ports) {
    SnoopPort s;
    s.name = p.name;
    s.port_id = p.port_id;
    std::memcpy(s.mac, p.mac.addr_bytes, 6);
    out.push_back(s);
  }
  return out;
}

void MulticastModule::commit(const config::Config& next) {
  snooping_->apply(next, ports(), now_ms());
  auto att = std::make_shared<SnoopedAttachments>();
  bool any = false;
  for (const auto& d : snooping_->domains()) {
    for (const auto& a : d.attachments) {
      auto& bits = att->vlans[a->where.port];
      auto copy = bits ? std::make_shared<std::bitset<4096>>(*bits) : std::make_shared<std::bitset<4096>>();
      copy->set(a->where.vlan);
      bits = std::move(copy);
      any = true;
    }
  }
  attachments_ = any ? std::shared_ptr<const SnoopedAttachments>(std::move(att)) : nullptr;
}

std::vector<dataplane::PlacedStage> MulticastModule::stages() {
  std::vector<dataplane::PlacedStage> out;
  // After the punt classifier (0), before PTP's stages: IGMP/MLD never reach the bridge.
  out.push_back({dataplane::StagePlace::kIngress, 3, std::make_unique<SnoopStage>()});
  return out;
}

std::function<void()> MulticastModule::prepare(const config::Config&, const config::Config& next,
                                               config::FieldErrors&) {
  // Nothing here can fail: validation has checked every VNI against /vxlan.
  return [this, next] { commit(next); };
}

void MulticastModule::contribute(dataplane::ForwardingTables& tables, const config::Config&) const {
  tables.set<SnoopedAttachments>(attachments_);
  if (!attachments_) return tables.set<dataplane::OverlayMulticast>(nullptr);
  // Remote VTEPs become the overlay module's slots in this same version
  // (that module contributed first); redone only when either side changed.
  const auto* slots = tables.get<dataplane::OverlayVtepSlots>();
  const uint64_t generation = slots ? slots->generation : 0;
  if (resolved_from_ != snooping_->tables() || resolved_slots_ != generation) {
    resolved_ = with_overlay_slots(*snooping_->tables(), slots);
    resolved_from_ = snooping_->tables();
    resolved_slots_ = generation;
  }
  tables.set<dataplane::OverlayMulticast>(resolved_);
}

bool MulticastModule::claim_punt(rte_mbuf* m, const net::PacketView& view) {
  if (view.l4_proto == net::kProtoUdp && view.l4_offset && view.dst_port == host_.overlay_udp_port(host_.config)) {
    return claim_overlay(m, view);
  }
  const bool igmp = view.ip_version == 4 && view.l4_proto == net::kProtoIgmp;
  const bool mld = view.ip_version == 6;  // the decoder tells MLD from the rest
  if (!igmp && !mld) return false;
  if (view.vlan_count > 1) return false;  // as the stage: tag stacks are not snooped
  const uint16_t vlan = view.vlan_count ? view.vlan_id(0) : 0;
  if (!snooping_->snoops(m->port, vlan)) return false;
  std::vector<uint8_t> frame(rte_pktmbuf_pkt_len(m));
  const auto* data = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, frame.size(), frame.data()));
  if (data != frame.data()) std::memcpy(frame.data(), data, frame.size());
  if (!snooping_->handle(m->port, vlan, frame, now_ms())) return false;  // other ICMPv6: not ours
  rte_pktmbuf_free(m);
  return true;
}

/// IGMP/MLD the VXLAN stage punted from a bridge domain that snoops: the
/// whole VXLAN frame, already checked there (our address, a known VNI and VTEP).
bool MulticastModule::claim_overlay(rte_mbuf* m, const net::PacketView& view) {
  const size_t vxlan = size_t{view.l4_offset} + net::kUdpHeader;
  const size_t len = rte_pktmbuf_pkt_len(m);
  if (len < vxlan + net::kVxlanHeader + net::kEthHeader) return false;
  std::vector<uint8_t> frame(len);
  const auto* data = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, len, frame.data()));
  if (data != frame.data()) std::memcpy(frame.data(), data, len);
  const uint32_t vni = net::be32(&frame[vxlan + 4]) >> 8;
  const uint8_t* ip = &frame[view.l3_offset];
  const IpAddress vtep = view.ip_version == 4 ? IpAddress::v4(ip + 12) : IpAddress::v6(ip + 8);
  const std::span<const uint8_t> inner(frame.data() + vxlan + net::kVxlanHeader, len - vxlan - net::kVxlanHeader);
  // Only what the VXLAN stage punts for us: another module's overlay-port punt is not ours.
  if (!net::membership_frame(inner.data(), inner.size())) return false;
  if (!snooping_->handle_overlay(m->port, vni, vtep, inner, now_ms())) return false;
  rte_pktmbuf_free(m);
  return true;
}

bool MulticastModule::tick(bool) { return snooping_->tick(now_ms()); }

bool MulticastModule::punts_handled() { return snooping_->flush(now_ms()); }

void MulticastModule::metrics(config::MetricsWriter& out, bool) {
  struct Family {
    const char* name;
    const char* help;
    bool counter;
    uint64_t (*value)(const MembershipRouter&);
  };
  static const Family kFamilies[] = {
      {"meridian_multicast_groups", "Groups with members on an attachment", false,
       [](const MembershipRouter& r) { return uint64_t{r.groups().size()}; }},
      {"meridian_multicast_reports_total", "IGMPv3/MLDv2 reports received", true,
       [](const MembershipRouter& r) { return r.counters().reports; }},
      {"meridian_multicast_joins_total", "IGMPv1/v2 and MLDv1 reports received", true,
       [](const MembershipRouter& r) { return r.counters().joins; }},
      {"meridian_multicast_leaves_total", "IGMPv2 leaves and MLDv1 dones received", true,
       [](const MembershipRouter& r) { return r.counters().leaves; }},
      {"meridian_multicast_queries_sent_total", "Queries sent", true,
       [](const MembershipRouter& r) { return r.counters().queries_sent; }},
      {"meridian_multicast_queries_withheld_total", "Queries not sent toward a router our upstream proxy reports to", true,
       [](const MembershipRouter& r) { return r.counters().queries_withheld; }},
      {"meridian_multicast_queries_received_total", "Queries received from other routers", true,
       [](const MembershipRouter& r) { return r.counters().queries_received; }},
      {"meridian_multicast_querier", "1 while this attachment's querier is us", false,
       [](const MembershipRouter& r) { return uint64_t{r.is_querier()}; }},
  };
  for (const auto& f : kFamilies) {
    if (f.counter) out.counter(f.name, f.help);
    else out.gauge(f.name, f.help);
    for (const auto& d : snooping_->domains()) {
      for (const auto& a : d.attachments) {
        for (const MembershipRouter* r : {&a->igmp, &a->mld}) {
          out.sample({{"vni", std::to_string(d.vni)}, {"port", a->port_name}, {"vlan", std::to_string(a->where.vlan)},
                      {"protocol", r->config().family == 4 ? "igmp" : "mld"}},
                     f.value(*r));
        }
      }
    }
  }
  out.counter("meridian_multicast_ignored_total", "Records and messages applied to no state, by reason");
  for (const auto& d : snooping_->domains()) {
    for (const auto& a : d.attachments) {
      for (const MembershipRouter* r : {&a->igmp, &a->mld}) {
        for (size_t i = 0; i < static_cast<size_t>(Ignore::kCount); ++i) {
          if (!r->counters().ignored[i]) continue;  // only what happened: 7 reasons x 2 protocols per attachment otherwise
          out.sample({{"vni", std::to_string(d.vni)}, {"port", a->port_name}, {"vlan", std::to_string(a->where.vlan)},
                      {"protocol", r->config().family == 4 ? "igmp" : "mld"},
                      {"reason", std::string(ignore_name(static_cast<Ignore>(i)))}},
                     r->counters().ignored[i]);
        }
      }
    }
  }
  out.gauge("meridian_multicast_overlay_groups", "Groups with receivers behind a remote VTEP (ingress role)");
  for (const auto& d : snooping_->domains()) {
    for (const auto& [vtep, e] : d.edges) {
      for (const MembershipRouter* r : {&e->igmp, &e->mld}) {
        out.sample({{"vni", std::to_string(d.vni)}, {"vtep", config::to_string(vtep)},
                    {"protocol", r->config().family == 4 ? "igmp" : "mld"}},
                   uint64_t{r->groups().size()});
      }
    }
  }
  out.counter("meridian_multicast_overlay_reports_sent_total", "Reports sent into the overlay (edge role)");
  for (const auto& d : snooping_->domains()) {
    for (size_t fi = 0; fi < 2; ++fi) {
      if (d.hosts[fi]) {
        out.sample({{"vni", std::to_string(d.vni)}, {"protocol", fi ? "mld" : "igmp"}}, d.hosts[fi]->reports_sent());
      }
    }
  }
  out.counter("meridian_multicast_admission_denied_total",
              "Flows refused on an egress because they would exceed its bandwidth budget");
  for (const auto& d : snooping_->domains()) out.sample({{"vni", std::to_string(d.vni)}}, d.denials);
  out.gauge("meridian_multicast_routes", "(S,G) and (*,G) routes in the published table version, per bridge domain");
  for (const auto& [vni, bd] : snooping_->tables()->bridge_domains) {
    out.sample({{"vni", std::to_string(vni)}}, uint64_t{bd.routes.size()});
  }
  // Per route: what it forwarded since it appeared (a route that goes and comes back starts again).
  for (const bool bytes : {false, true}) {
    if (bytes) out.counter("meridian_multicast_route_bytes_total", "Bytes of the frames a route took in to forward");
    else out.counter("meridian_multicast_route_packets_total", "Frames a route took in to forward (to one egress or more)");
    for (const auto& d : snooping_->domains()) {
      for (const auto& [key, rec] : d.route_records) {
        if (rec.in.slot == dataplane::MulticastRouteCounters::kNoSlot) continue;
        const auto t = snooping_->counted(rec.in);
        out.sample({{"vni", std::to_string(d.vni)}, {"source", key_source(key)},
                    {"group", config::to_string(key_group(key))}},
                   bytes ? t.bytes : t.packets);
      }
    }
  }
}

std::optional<RestResource> MulticastModule::resource(const dataplane::RestRequest& request) {
  using config::http::status;
  static const std::string kPrefix = "/api/v1/multicast/";
  if (request.path.rfind(kPrefix, 0) != 0) return std::nullopt;
  const std::string what = request.path.substr(kPrefix.size());
  static const std::map<std::string, std::vector<std::string>> kParams = {
      {"igmp/groups", {"vni"}}, {"mld/groups", {"vni"}}, {"querier", {}}, {"routes", {}}};
  auto known = kParams.find(what);
  if (known == kParams.end()) return std::nullopt;
  if (request.method != config::http::verb::get) return RestResource::not_allowed("GET, HEAD");
  if (auto refused = dataplane::refuse_unknown_query(request, known->second)) return refused;
  std::optional<uint32_t> vni;
  if (auto refused = dataplane::read_vni_query(request, vni)) return refused;
  const Millis now = now_ms();
  if (what == "igmp/groups") return RestResource{status::ok, snooping_->groups_json(4, vni, now)};
  if (what == "mld/groups") return RestResource{status::ok, snooping_->groups_json(6, vni, now)};
  if (what == "querier") return RestResource{status::ok, snooping_->querier_json(now)};
  return RestResource{status::ok, snooping_->routes_json(now)};
}

}  // namespace meridian::mcast
