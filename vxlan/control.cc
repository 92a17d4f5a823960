#include "vxlan/control.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <set>

#include <rte_cycles.h>
#include <rte_errno.h>

#include "config/log.h"

namespace meridian::vxlan {
namespace {

std::atomic<unsigned> g_ids{0};

/// The underlay's routing table: each interface's addresses with their
/// on-link prefixes (in interface order), and the static routes.
std::shared_ptr<host::RouteTable> build_underlay_routes(const config::VtepConfig& vtep, std::string& error) {
  std::vector<host::ConnectedPrefix> connected;
  for (const auto& u : vtep.interfaces) {
    if (u.ipv4) connected.push_back({u.port, *u.ipv4});
    if (u.ipv6) connected.push_back({u.port, *u.ipv6});
  }
  std::vector<host::StaticRoute> statics;
  for (const auto& r : vtep.routes) statics.push_back({r.prefix, r.next_hop});
  return host::RouteTable::build(std::move(connected), statics, error);
}

}  // namespace

// ---- control -----------------------------------------------------------------

struct VxlanControl::Pending {
  config::VxlanConfig config;
  std::vector<PortInfo> ports;
  std::map<uint32_t, std::shared_ptr<BridgeDomainState>> bds;
  std::shared_ptr<host::RouteTable> routes;
};

VxlanControl::VxlanControl(host::Presence& presence, unsigned workers, rte_rcu_qsbr* qsbr, uint64_t tsc_hz)
    : presence_(presence),
      client_(presence.add_client("vxlan")),
      workers_(workers),
      qsbr_(qsbr),
      tsc_hz_(std::max<uint64_t>(tsc_hz, 1)) {}

VxlanControl::~VxlanControl() {
  presence_.remove_client(client_);
  if (ring_) {
    LearnEvent ev[64];
    while (rte_ring_sc_dequeue_burst_elem(ring_, ev, sizeof(LearnEvent), 64, nullptr) > 0) {
    }
    rte_ring_free(ring_);
  }
}

std::string VxlanControl::init() {
  const std::string name = "mrd_learn_" + std::to_string(g_ids.fetch_add(1));
  ring_ = rte_ring_create_elem(name.c_str(), sizeof(LearnEvent), 8192, SOCKET_ID_ANY, RING_F_SC_DEQ);
  if (!ring_) return std::string("cannot create the learn ring: ") + rte_strerror(rte_errno);
  return "";
}

uint32_t VxlanControl::now_seconds() const { return static_cast<uint32_t>(rte_rdtsc() / tsc_hz_); }
double VxlanControl::now() const { return static_cast<double>(rte_rdtsc()) / static_cast<double>(tsc_hz_); }

std::shared_ptr<VxlanControl::Pending> VxlanControl::prepare(const config::VxlanConfig& next,
                                                             const std::vector<PortInfo>& ports,
                                                             config::FieldErrors& errors) {
  auto p = std::make_shared<Pending>();
  p->config = next;
  p->ports = ports;
  auto running = [&](const std::string& name) {
    return std::any_of(ports.begin(), ports.end(), [&](const PortInfo& i) { return i.name == name; });
  };
  for (size_t i = 0; i < next.vtep.interfaces.size(); ++i) {
    if (!running(next.vtep.interfaces[i].port)) {
      errors.push_back({"/vxlan/vtep/interfaces/" + std::to_string(i) + "/port", "port is not running"});
    }
  }
  for (size_t b = 0; b < next.bridge_domains.size(); ++b) {
    const auto& bd = next.bridge_domains[b];
    const std::string base = "/vxlan/bridge_domains/" + std::to_string(b);
    for (size_t a = 0; a < bd.attachments.size(); ++a) {
      if (!running(bd.attachments[a].port)) {
        errors.push_back({base + "/attachments/" + std::to_string(a) + "/port", "port is not running"});
      }
    }
    auto existing = bds_.find(bd.vni);
    if (existing != bds_.end()) {
      // The hash was sized when the bridge domain was created.
      const unsigned created = existing->second->max_entries_at_creation;
      if (bd.max_fdb_entries > created) {
        errors.push_back({base + "/max_fdb_entries",
                          "cannot be raised above " + std::to_string(created) +
                              " while the bridge domain exists (its table was sized at creation); "
                              "remove and re-add the bridge domain, or restart"});
      }
      p->bds[bd.vni] = existing->second;
      continue;
    }
    std::string error;
    auto state = BridgeDomainState::create(bd.vni, bd.max_fdb_entries, workers_, qsbr_, error);
    if (!state) {
      errors.push_back({base, error});
      continue;
    }
    p->bds[bd.vni] = std::move(state);
  }
  // Every configured VTEP must get a slot at commit. Their number is bounded
  // by validation and learned VTEPs have their own allowance, so only slots
  // still in their RCU grace period can stand in the way: refuse then,
  // rather than accept a flood list entry that would silently do nothing.
  {
    size_t free = kMaxRemoteVteps - slots_.size();
    for (const Slot& s : slots_) free += !s.in_use && !s.retiring;  // quarantined ones pass soon
    std::set<IpAddress> wanted;
    for (size_t b = 0; b < next.bridge_domains.size() && errors.empty(); ++b) {
      const auto& bd = next.bridge_domains[b];
      const std::string base = "/vxlan/bridge_domains/" + std::to_string(b);
      auto need = [&](const IpAddress& ip, const std::string& path) {
        if (slot_by_ip_.count(ip) || !wanted.insert(ip).second || wanted.size() <= free) return;
        errors.push_back({path, "no remote VTEP slot is free for " + to_string(ip) +
                                    " (the free ones are held by removed VTEPs in their grace period, or by learned MACs behind them until those age out); retry later"});
      };
      for (size_t f = 0; f < bd.flood.size(); ++f) need(bd.flood[f], base + "/flood/" + std::to_string(f));
      for (size_t e = 0; e < bd.static_fdb.size(); ++e) {
        if (bd.static_fdb[e].vtep) need(*bd.static_fdb[e].vtep, base + "/static_fdb/" + std::to_string(e) + "/vtep");
      }
    }
  }
  // Routes are rebuilt only when the interfaces or routes change.
  if (routes_ && next.vtep.interfaces == config_.vtep.interfaces && next.vtep.routes == config_.vtep.routes) {
    p->routes = routes_;
  } else {
    std::string error;
    p->routes = build_underlay_routes(next.vtep, error);
    if (!p->routes) errors.push_back({"/vxlan/vtep/routes", error});
  }
  if (!errors.empty()) return nullptr;
  return p;
}

void VxlanControl::commit(std::shared_ptr<Pending> p) {
  const config::VxlanConfig old = std::move(config_);
  config_ = std::move(p->config);
  ports_ = std::move(p->ports);
  routes_ = std::move(p->routes);
  bds_ = std::move(p->bds);

  std::map<uint32_t, const config::BridgeDomainConfig*> old_bds;
  for (const auto& bd : old.bridge_domains) old_bds[bd.vni] = &bd;
  for (const auto& bd : config_.bridge_domains) {
    auto& state = *bds_[bd.vni];
    state.set_max_entries(bd.max_fdb_entries);
    state.set_move_hold_s(bd.mac_move_hold_seconds);
    const config::BridgeDomainConfig* before = old_bds.count(bd.vni) ? old_bds[bd.vni] : nullptr;
    // Static FDB: drop those no longer configured, (re)install the rest.
    std::set<MacAddress> now_static;
    for (const auto& e : bd.static_fdb) now_static.insert(e.mac);
    if (before) {
      for (const auto& e : before->static_fdb) {
        if (!now_static.count(e.mac)) state.remove(e.mac);
      }
    }
    // Dynamic entries on attachments that left the bridge domain are stale.
    std::set<config::Attachment> atts(bd.attachments.begin(), bd.attachments.end());
    if (before) {
      for (const auto& a : before->attachments) {
        const PortInfo* port = port_by_name(a.port);
        if (!atts.count(a) && port) state.flush_dynamic(location::local(port->id, static_cast<uint16_t>(a.vlan)));
      }
    }
    std::set<IpAddress> now_neighbors;
    for (const auto& n : bd.static_neighbors) now_neighbors.insert(n.ip);
    if (before) {
      for (const auto& n : before->static_neighbors) {
        if (!now_neighbors.count(n.ip)) state.remove_neighbor(n.ip);
      }
    }
    for (const auto& n : bd.static_neighbors) {
      if (!state.set_neighbor(n.ip, n.mac, true)) {
        log::warn("vxlan", "static neighbor not installed", {{"vni", bd.vni}, {"ip", to_string(n.ip)}});
      }
      neighbor_seen_.erase({bd.vni, n.ip});
    }
  }
  attachments_.clear();
  for (const auto& bd : config_.bridge_domains) {
    for (const auto& a : bd.attachments) {
      if (const PortInfo* port = port_by_name(a.port)) attachments_.insert({bd.vni, port->id, static_cast<uint16_t>(a.vlan)});
    }
  }
  for (auto it = neighbor_seen_.begin(); it != neighbor_seen_.end();) {
    it = bds_.count(it->first.first) ? std::next(it) : neighbor_seen_.erase(it);
  }
  reconcile_slots();
  for (const auto& bd : config_.bridge_domains) {
    auto& state = *bds_[bd.vni];
    for (const auto& e : bd.static_fdb) {
      uint64_t loc = 0;
      if (e.local) {
        const PortInfo* port = port_by_name(e.local->port);
        if (port) loc = location::local(port->id, static_cast<uint16_t>(e.local->vlan));
      } else if (auto slot = slot_for(*e.vtep, false, false)) {
        loc = location::remote(*slot);
      }
      if (!loc || !state.add_static(e.mac, loc)) {
        log::warn("vxlan", "static FDB entry not installed",
                  {{"vni", bd.vni}, {"mac", to_string(e.mac)}, {"reason", loc ? "table full" : "no VTEP slot"}});
      }
    }
  }
  register_with_host();
  resolve_all();
  dirty_ = true;
}

const PortInfo* VxlanControl::port_by_id(uint16_t id) const {
  for (const auto& p : ports_) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

const PortInfo* VxlanControl::port_by_name(const std::string& name) const {
  for (const auto& p : ports_) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const config::UnderlayInterface* VxlanControl::interface_on(uint16_t port_id) const {
  const PortInfo* port = port_by_id(port_id);
  if (!port) return nullptr;
  for (const auto& u : config_.vtep.interfaces) {
    if (u.port == port->name) return &u;
  }
  return nullptr;
}

std::optional<uint16_t> VxlanControl::slot_for(const IpAddress& ip, bool create, bool learned) {
  if (auto it = slot_by_ip_.find(ip); it != slot_by_ip_.end()) return it->second;
  if (!create) return std::nullopt;
  // Learned VTEPs have their own allowance: configured ones never lack a slot.
  if (learned && learned_slots_ >= kMaxLearnedVteps) return std::nullopt;
  const auto taken = [&](uint16_t index) {
    slot_by_ip_[ip] = index;
    learned_slots_ += learned;  // counted only once a slot was found
    dirty_ = true;
    return index;
  };
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (s.in_use || s.retiring) continue;
    if (s.quarantined) {
      if (rte_rcu_qsbr_check(qsbr_, s.quarantine_token, false) != 1) continue;
      s.quarantined = false;
    }
    s = Slot{};
    s.in_use = true;
    s.ip = ip;
    return taken(static_cast<uint16_t>(i));
  }
  if (slots_.size() >= kMaxRemoteVteps) return std::nullopt;
  slots_.push_back(Slot{});
  slots_.back().in_use = true;
  slots_.back().ip = ip;
  return taken(static_cast<uint16_t>(slots_.size() - 1));
}

void VxlanControl::reconcile_slots() {
  for (auto& s : slots_) {
    s.flood = false;
    s.statics = 0;
  }
  for (const auto& bd : config_.bridge_domains) {
    for (const auto& ip : bd.flood) {
      if (auto slot = slot_for(ip, true, false)) slots_[*slot].flood = true;
    }
    for (const auto& e : bd.static_fdb) {
      if (!e.vtep) continue;
      if (auto slot = slot_for(*e.vtep, true, false)) ++slots_[*slot].statics;
    }
  }
  gc_slots();
}

void VxlanControl::gc_slots() {
  std::vector<unsigned> refs(slots_.size(), 0);
  for (const auto& [vni, bd] : bds_) bd->count_vtep_refs(refs);
  learned_slots_ = 0;
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    s.fdb_refs = refs[i];
    learned_slots_ += s.in_use && !s.flood && !s.statics && s.fdb_refs;
    if (!s.in_use || s.flood || s.statics || s.fdb_refs) continue;
    slot_by_ip_.erase(s.ip);
    next_hop_by_slot_.erase(static_cast<uint16_t>(i));
    s.in_use = false;
    s.retiring = true;  // old snapshots and FDB readers may still name it: see published()
    dirty_ = true;
  }
}

void VxlanControl::resolve_all() {
  std::set<host::HopKey> wanted;
  std::map<uint16_t, host::HopKey> hops;
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (!slots_[i].in_use || !routes_) continue;
    auto hop = routes_->lookup(slots_[i].ip);
    if (!hop) continue;
    const PortInfo* port = port_by_name(hop->port);
    if (!port) continue;
    wanted.insert({port->id, hop->neighbor});
    hops[static_cast<uint16_t>(i)] = {port->id, hop->neighbor};
  }
  std::vector<host::WantedHop> want;
  for (const auto& h : wanted) want.push_back({h.ip, h.port});
  presence_.want(client_, want, static_cast<double>(config_.vtep.neighbor_timeout_seconds));
  if (hops != next_hop_by_slot_) dirty_ = true;
  next_hop_by_slot_ = std::move(hops);
}

void VxlanControl::register_with_host() {
  std::vector<host::OwnAddress> addresses;
  host::StaticHops statics;
  for (const auto& u : config_.vtep.interfaces) {
    const PortInfo* port = port_by_name(u.port);
    if (!port) continue;
    if (u.ipv4) addresses.push_back({port->id, u.ipv4->address});
    if (u.ipv6) addresses.push_back({port->id, u.ipv6->address});
    for (const auto& n : config_.vtep.neighbors) {
      const auto& p = n.ip.is_v4() ? u.ipv4 : u.ipv6;
      if (routes_ && p && p->contains(n.ip)) statics[{port->id, n.ip}] = n.mac;
    }
  }
  presence_.set_addresses(client_, std::move(addresses));
  presence_.set_static(client_, statics);
}

void VxlanControl::published() {
  for (auto& s : slots_) {
    if (!s.retiring) continue;
    s.retiring = false;
    s.quarantined = true;
    s.quarantine_token = rte_rcu_qsbr_start(qsbr_);
  }
}

void VxlanControl::apply_events() {
  LearnEvent ev[64];
  for (int round = 0; round < 64; ++round) {  // bounded: the control lcore has other work
    const unsigned n = rte_ring_sc_dequeue_burst_elem(ring_, ev, sizeof(LearnEvent), 64, nullptr);
    for (unsigned i = 0; i < n; ++i) {
      const LearnEvent& e = ev[i];
      auto it = bds_.find(e.vni);
      if (it == bds_.end()) continue;  // the bridge domain went away meanwhile
      BridgeDomainState& bd = *it->second;
      if (e.kind == LearnKind::kNeighbor) {
        MacAddress mac;
        std::memcpy(mac.bytes.data(), e.mac, 6);
        const IpAddress ip = e.ipv6 ? IpAddress::v6(e.ip) : IpAddress::v4(e.ip);
        bd.set_neighbor(ip, mac, false);
        if (bd.neighbor(ip.bytes.data(), e.ipv6) && !(*bd.neighbor(ip.bytes.data(), e.ipv6) >> 48 & 1)) {
          neighbor_seen_[{e.vni, ip}] = now_seconds();
        }
        continue;
      }
      MacAddress mac;
      std::memcpy(mac.bytes.data(), e.mac, 6);
      uint64_t loc;
      if (e.kind == LearnKind::kLocal) {
        // Posted by a worker on an older snapshot for an attachment since removed?
        if (!attachments_.count({e.vni, e.port, e.vlan})) continue;
        loc = location::local(e.port, e.vlan);
      } else {
        const IpAddress vtep = e.ipv6 ? IpAddress::v6(e.ip) : IpAddress::v4(e.ip);
        const bool fresh = slot_by_ip_.count(vtep) == 0;
        auto slot = slot_for(vtep, true, true);
        if (!slot) {
          ++vtep_learn_limit_;
          continue;
        }
        loc = location::remote(*slot);
        resolve_pending_ = resolve_pending_ || fresh;
        // Glean the next hop from the outer header when the VTEP is on-link.
        MacAddress outer;
        std::memcpy(outer.bytes.data(), e.outer_mac, 6);
        if (!outer.is_zero() && routes_ && routes_->on_link(vtep)) {
          const auto hop = routes_->lookup(vtep);
          const PortInfo* port = hop ? port_by_name(hop->port) : nullptr;
          // Only from a frame that came in on the port the VTEP is reached by.
          if (port && port->id == e.port && !presence_.lookup(vtep, port->id)) presence_.learn(vtep, port->id, outer);
        }
      }
      if (bd.learn(mac, loc, e.now_s, bd.move_hold_s()) == BridgeDomainState::LearnResult::kHeld) {
        log_held_move(e.vni, mac, loc);
      }
    }
    if (n < 64) break;
  }
  // New VTEPs are resolved once per tick, not once per learn event.
  if (resolve_pending_) {
    resolve_pending_ = false;
    resolve_all();
  }
}

void VxlanControl::log_held_move(uint32_t vni, const MacAddress& mac, uint64_t to) {
  // One line a second at most: a hijack attempt repeats for every frame.
  const double t = now();
  ++held_since_log_;
  if (t - last_held_log_ < 1.0) return;
  log::warn("vxlan", "MAC move held: the MAC is still active on a local attachment",
            {{"vni", vni}, {"mac", to_string(mac)}, {"to", location_json(to)}, {"held_since_last_line", held_since_log_}});
  last_held_log_ = t;
  held_since_log_ = 0;
}

bool VxlanControl::tick() {
  if (!ring_) return false;
  apply_events();
  const double t = now();
  if (t - last_slow_tick_ >= 0.1) {
    last_slow_tick_ = t;
    const uint32_t now_s = now_seconds();
    if (now_s != last_age_s_) {
      last_age_s_ = now_s;
      for (const auto& bd : config_.bridge_domains) {
        auto it = bds_.find(bd.vni);
        if (it != bds_.end()) it->second->age(now_s, bd.aging_seconds);
      }
      // Learned suppression entries expire like FDB entries; a host that
      // still answers ARP is learned again from its next reply.
      std::map<uint32_t, unsigned> aging;
      for (const auto& bd : config_.bridge_domains) aging[bd.vni] = bd.aging_seconds;
      for (auto it = neighbor_seen_.begin(); it != neighbor_seen_.end();) {
        const auto& [vni, ip] = it->first;
        if (now_s - it->second < aging[vni]) {
          ++it;
          continue;
        }
        if (auto bd = bds_.find(vni); bd != bds_.end()) bd->second->remove_neighbor(ip);
        it = neighbor_seen_.erase(it);
      }
      gc_slots();
      resolve_all();
    }
    for (const auto& [vni, bd] : bds_) bd->reclaim();
  }
  if (presence_.generation() != host_generation_) {
    host_generation_ = presence_.generation();
    dirty_ = true;  // some next hop gained, lost or changed its MAC
  }
  if (!dirty_) return false;
  tables_.reset();
  return true;
}

uint16_t VxlanControl::encapsulate(uint32_t vni, const IpAddress& vtep, std::span<const uint8_t> frame,
                                   std::vector<uint8_t>& out) {
  std::shared_ptr<const VxlanTables> t = tables();
  auto slot = slot_by_ip_.find(vtep);
  if (!t->bd_for_vni(vni) || slot == slot_by_ip_.end() || slot->second >= t->vteps.size()) return dataplane::kNoPort;
  const RemoteVtep& v = t->vteps[slot->second];
  // The inner frame padded to the Ethernet minimum, as a host would send it.
  const size_t inner_len = std::max<size_t>(frame.size(), 60);
  if (!v.resolved || inner_len + v.outer.length - kEthHeader > v.mtu) return dataplane::kNoPort;
  out.assign(v.outer.length + inner_len, 0);
  std::copy(frame.begin(), frame.end(), out.begin() + v.outer.length);
  const uint8_t* inner = out.data() + v.outer.length;
  const uint16_t sport = source_port(inner_flow_hash(inner, inner_len), t->source_port_min, t->source_port_max);
  const uint8_t dscp = static_cast<uint8_t>(t->dscp >= 0 ? t->dscp : inner_dscp(inner, inner_len));
  write_outer(out.data(), v.outer, vni, sport, dscp, static_cast<uint16_t>(inner_len), inner_ecn(inner, inner_len));
  if (v.outer.ipv6) finish_udp6_checksum(out.data());
  return v.port;
}

std::shared_ptr<const VxlanTables> VxlanControl::tables() {
  if (tables_ && !dirty_) return tables_;
  auto t = std::make_shared<VxlanTables>();
  const auto& v = config_.vtep;
  t->udp_port = static_cast<uint16_t>(v.udp_port);
  t->source_port_min = static_cast<uint16_t>(v.source_port_min);
  t->source_port_max = static_cast<uint16_t>(v.source_port_max);
  t->dscp = v.dscp ? static_cast<int>(*v.dscp) : -1;
  t->icmp_too_big = v.icmp_too_big;
  t->replica_copy_max = v.replica_copy_max_bytes;
  t->tsc_hz = tsc_hz_;
  for (const auto& u : v.interfaces) {
    const PortInfo* port = port_by_name(u.port);
    if (!port || port->id >= dataplane::kMaxPorts) continue;
    t->role[port->id] = PortRole::kUnderlay;
    t->any_role = true;
    UnderlayPort& up = t->underlay[port->id];
    up.has_ipv4 = u.ipv4.has_value();
    up.has_ipv6 = u.ipv6.has_value();
    if (u.ipv4) std::memcpy(up.ipv4, u.ipv4->address.bytes.data(), 4);
    if (u.ipv6) std::memcpy(up.ipv6, u.ipv6->address.bytes.data(), 16);
    std::memcpy(up.mac, port->mac.bytes.data(), 6);
    up.mtu = static_cast<uint16_t>(port->mtu);
  }
  t->vteps.resize(slots_.size());
  t->vtep_index.reset(slot_by_ip_.size());
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    RemoteVtep& r = t->vteps[i];
    r.in_use = s.in_use;
    r.ip = s.ip;
    if (!s.in_use) continue;
    t->vtep_index.insert(s.ip.bytes.data(), !s.ip.is_v4(), static_cast<uint16_t>(i));
    auto hop = next_hop_by_slot_.find(static_cast<uint16_t>(i));
    if (hop == next_hop_by_slot_.end()) continue;
    auto mac = presence_.lookup(hop->second.ip, hop->second.port);
    const host::NeighborResolver::Entry* entry = presence_.entry(hop->second.ip, hop->second.port);
    if (!mac || !entry) continue;
    const PortInfo* port = port_by_id(entry->port);
    const config::UnderlayInterface* u = port ? interface_on(port->id) : nullptr;
    if (!u) continue;
    const auto& src = s.ip.is_v4() ? u->ipv4 : u->ipv6;
    if (!src) continue;
    OuterParams p;
    p.dst_mac = mac->bytes.data();
    p.src_mac = port->mac.bytes.data();
    p.src_ip = src->address.bytes.data();
    p.dst_ip = s.ip.bytes.data();
    p.ipv6 = !s.ip.is_v4();
    p.udp_port = static_cast<uint16_t>(v.udp_port);
    p.ttl = static_cast<uint8_t>(v.ttl);
    build_outer_template(r.outer, p);
    r.port = port->id;
    r.mtu = static_cast<uint16_t>(port->mtu);
    r.resolved = true;
  }
  for (const auto& bd : config_.bridge_domains) {
    auto it = bds_.find(bd.vni);
    if (it == bds_.end()) continue;
    const auto index = static_cast<uint16_t>(t->bds.size());
    BdTables b;
    b.vni = bd.vni;
    b.learning = bd.learning;
    b.arp_suppression = bd.arp_suppression;
    b.state = it->second;
    for (const auto& a : bd.attachments) {
      const PortInfo* port = port_by_name(a.port);
      if (!port || port->id >= dataplane::kMaxPorts) continue;
      b.locals.push_back({port->id, static_cast<uint16_t>(a.vlan)});
      t->role[port->id] = PortRole::kAccess;
      t->any_role = true;
      if (!t->access[port->id]) t->access[port->id] = std::make_unique<AccessPort>();
      t->access[port->id]->bd_by_vlan[a.vlan] = index;
    }
    b.any_vtep = bd.remote_vtep_learning;
    b.vteps_allowed.assign((slots_.size() + 63) / 64, 0);
    auto allow = [&](const IpAddress& ip) {
      auto s = slot_by_ip_.find(ip);
      if (s == slot_by_ip_.end()) return kNoSlot;
      b.vteps_allowed[s->second / 64u] |= uint64_t{1} << (s->second % 64u);
      return s->second;
    };
    for (const auto& ip : bd.flood) {
      if (const uint16_t slot = allow(ip); slot != kNoSlot) b.flood_vteps.push_back(slot);
    }
    for (const auto& e : bd.static_fdb) {
      if (e.vtep) allow(*e.vtep);
    }
    t->bds.push_back(std::move(b));
  }
  t->index_vnis();
  tables_ = std::move(t);
  dirty_ = false;
  return tables_;
}

// ---- API views -----------------------------------------------------------------

nlohmann::json VxlanControl::location_json(uint64_t loc) const {
  if (location::is_local(loc)) {
    const PortInfo* port = port_by_id(location::port(loc));
    return {{"type", "local"}, {"port", port ? port->name : std::to_string(location::port(loc))},
            {"vlan", location::vlan(loc)}};
  }
  const uint16_t slot = location::vtep(loc);
  const std::string ip = slot < slots_.size() ? to_string(slots_[slot].ip) : "?";
  return {{"type", "remote"}, {"vtep", ip}};
}

nlohmann::json VxlanControl::fdb_json(std::optional<uint32_t> vni, std::optional<MacAddress> mac) const {
  nlohmann::json entries = nlohmann::json::array();
  const uint32_t now_s = now_seconds();
  for (const auto& [id, bd] : bds_) {
    if (vni && *vni != id) continue;
    auto records = bd->fdb_records();
    std::sort(records.begin(), records.end(), [](const auto& a, const auto& b) { return a.mac < b.mac; });
    for (const auto& r : records) {
      if (mac && *mac != r.mac) continue;
      nlohmann::json e = location_json(r.location);
      e["vni"] = id;
      e["mac"] = to_string(r.mac);
      e["static"] = r.is_static;
      if (!r.is_static) e["age_seconds"] = now_s >= r.last_seen ? now_s - r.last_seen : 0;
      entries.push_back(e);
    }
  }
  return {{"entries", entries}};
}

nlohmann::json VxlanControl::neighbors_json(std::optional<uint32_t> vni) const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [id, bd] : bds_) {
    if (vni && *vni != id) continue;
    auto records = bd->neighbor_records();
    std::sort(records.begin(), records.end(), [](const auto& a, const auto& b) { return a.ip < b.ip; });
    for (const auto& r : records) {
      out.push_back({{"vni", id}, {"ip", to_string(r.ip)}, {"mac", to_string(r.mac)}, {"static", r.is_static}});
    }
  }
  return {{"neighbors", out}};
}

nlohmann::json VxlanControl::vteps_json() const {
  nlohmann::json local = nlohmann::json::array();
  for (const auto& u : config_.vtep.interfaces) {
    nlohmann::json o = {{"port", u.port}};
    if (u.ipv4) o["ipv4"] = to_string(*u.ipv4);
    if (u.ipv6) o["ipv6"] = to_string(*u.ipv6);
    if (const PortInfo* p = port_by_name(u.port)) o["mac"] = to_string(p->mac);
    local.push_back(o);
  }
  nlohmann::json remote = nlohmann::json::array();
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (!s.in_use) continue;
    nlohmann::json o = {{"ip", to_string(s.ip)},     {"slot", i},
                        {"flood", s.flood},          {"static_fdb_entries", s.statics},
                        {"fdb_entries", s.fdb_refs}, {"state", "no_route"}};
    auto hop = next_hop_by_slot_.find(static_cast<uint16_t>(i));
    if (hop != next_hop_by_slot_.end()) {
      o["next_hop"] = to_string(hop->second.ip);
      if (const host::NeighborResolver::Entry* e = presence_.entry(hop->second.ip, hop->second.port)) {
        o["state"] = host::NeighborResolver::state_name(e->state);
        if (const PortInfo* p = port_by_id(e->port)) o["port"] = p->name;
        if (e->has_mac) o["mac"] = to_string(e->mac);
      }
    }
    remote.push_back(o);
  }
  return {{"local", local},
          {"remote", remote},
          {"learned", learned_slots_},
          {"learned_limit", kMaxLearnedVteps},
          {"learn_limit_hits", vtep_learn_limit_}};
}

namespace {

nlohmann::json counters_json(const BdCounterTotals& t) {
  nlohmann::json drops = nlohmann::json::object(), replica_drops = nlohmann::json::object();
  for (size_t r = 0; r < kDropCount; ++r) {
    if (t.drops[r]) drops[dataplane::drop_reason_name(static_cast<Drop>(r))] = t.drops[r];
    if (t.replica_drops[r]) replica_drops[dataplane::drop_reason_name(static_cast<Drop>(r))] = t.replica_drops[r];
  }
  nlohmann::json out = dataplane::counters_json<BdCounters>(t.counters);
  out["drops"] = std::move(drops);
  out["replica_drops"] = std::move(replica_drops);
  return out;
}

}  // namespace

nlohmann::json VxlanControl::bridge_domains_json(std::optional<uint32_t> vni) const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& bd : config_.bridge_domains) {
    if (vni && *vni != bd.vni) continue;
    auto it = bds_.find(bd.vni);
    if (it == bds_.end()) continue;
    const auto& s = *it->second;
    out.push_back({{"vni", bd.vni},
                   {"name", bd.name},
                   {"fdb_entries", s.fdb_size()},
                   {"fdb_limit", s.max_entries()},
                   {"neighbors", s.neighbor_size()},
                   {"counters", counters_json(s.totals().minus(s.baseline))}});
  }
  return {{"bridge_domains", out}};
}

bool VxlanControl::clear(std::optional<uint32_t> vni) {
  if (vni && !bds_.count(*vni)) return false;
  for (auto& [id, bd] : bds_) {
    if (!vni || *vni == id) bd->baseline = bd->totals();
  }
  return true;
}

void VxlanControl::metrics(config::MetricsWriter& out) const {
  using config::Labels;
  std::vector<std::pair<std::string, BdCounterTotals>> totals;
  std::vector<std::pair<Labels, BdCounters::Totals>> instances;
  for (const auto& [id, bd] : bds_) {
    totals.emplace_back(std::to_string(id), bd->totals());
    instances.push_back({Labels{{"vni", totals.back().first}}, totals.back().second.counters});
  }
  dataplane::write_counter_instances<BdCounters>(out, instances);
  out.counter("meridian_vxlan_drops_total", "Frames dropped in a bridge domain, by reason");
  for (const auto& [vni, t] : totals) {
    for (size_t r = 0; r < kDropCount; ++r) {
      if (t.drops[r]) out.sample(Labels{{"vni", vni}, {"reason", dataplane::drop_reason_name(static_cast<Drop>(r))}}, t.drops[r]);
    }
  }
  out.counter("meridian_vxlan_replica_drops_total",
              "Flood replicas not made or not sent, by reason (the frame itself counts once, in drops or forwarded)");
  for (const auto& [vni, t] : totals) {
    for (size_t r = 0; r < kDropCount; ++r) {
      if (t.replica_drops[r]) {
        out.sample(Labels{{"vni", vni}, {"reason", dataplane::drop_reason_name(static_cast<Drop>(r))}}, t.replica_drops[r]);
      }
    }
  }
  out.gauge("meridian_vxlan_fdb_entries", "MAC addresses in the bridge domain's FDB");
  for (const auto& [id, bd] : bds_) out.sample(Labels{{"vni", std::to_string(id)}}, uint64_t{bd->fdb_size()});
  uint64_t resolved = 0, total = 0;
  for (const auto& s : slots_) {
    if (!s.in_use) continue;
    ++total;
  }
  for (const auto& [slot, hop] : next_hop_by_slot_) resolved += presence_.lookup(hop.ip, hop.port).has_value();
  out.gauge("meridian_vxlan_remote_vteps", "Remote VTEPs known (flood lists, static and learned)");
  out.sample(Labels{}, total);
  out.gauge("meridian_vxlan_remote_vteps_resolved", "Remote VTEPs whose underlay next hop is resolved");
  out.sample(Labels{}, resolved);
  out.counter("meridian_vxlan_remote_vtep_learn_limit_total",
              "Remote VTEPs not learned because the learned allowance (1024) was used up");
  out.sample(Labels{}, vtep_learn_limit_);
}

}  // namespace meridian::vxlan
