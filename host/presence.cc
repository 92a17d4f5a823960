#include "host/presence.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "net/neighbor.h"
#include "net/packet_view.h"
#include "net/wire.h"

namespace meridian::host {

namespace {

constexpr double kTickInterval = 0.1;  // resolver timers have second granularity
constexpr uint8_t kBroadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
constexpr uint8_t kZeroMac[6] = {};
constexpr uint8_t kAllNodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
constexpr uint8_t kAllNodesMac[6] = {0x33, 0x33, 0, 0, 0, 1};

MacAddress mac_at(const uint8_t* p) {
  MacAddress m;
  std::memcpy(m.bytes.data(), p, 6);
  return m;
}

}  // namespace

Presence::Presence(SendFrame send, Clock clock, ResolverTiming timing)
    : send_(std::move(send)), clock_(std::move(clock)), table_(timing) {}

void Presence::set_port_mac(uint16_t port, const MacAddress& mac) { port_macs_[port] = mac; }

const MacAddress* Presence::port_mac(uint16_t port) const {
  auto it = port_macs_.find(port);
  return it == port_macs_.end() ? nullptr : &it->second;
}

Presence::ClientId Presence::add_client(std::string name) {
  const ClientId id = next_client_++;
  clients_[id].name = std::move(name);
  return id;
}

void Presence::remove_client(ClientId client) {
  auto it = clients_.find(client);
  if (it == clients_.end()) return;
  const StaticHops statics = it->second.statics;
  for (const auto& [hop, mac] : statics) unpin(client, hop);
  clients_.erase(it);
  if (!statics.empty()) ++generation_;
  reconcile();
}

void Presence::unpin(ClientId client, const HopKey& hop) {
  for (const auto& [id, c] : clients_) {
    if (id != client && c.statics.count(hop)) {
      table_.set_static(hop.ip, hop.port, c.statics.at(hop));  // the other client's pin stands
      return;
    }
  }
  table_.erase(hop.ip, hop.port);
}

void Presence::set_addresses(ClientId client, std::vector<OwnAddress> addresses) {
  auto it = clients_.find(client);
  if (it != clients_.end()) it->second.addresses = std::move(addresses);
}

void Presence::want(ClientId client, const std::vector<WantedHop>& hops, double reachable_s) {
  auto it = clients_.find(client);
  if (it == clients_.end()) return;
  it->second.wants.clear();
  for (const auto& h : hops) it->second.wants.insert({h.port, h.ip});
  it->second.reachable_s = reachable_s;
  reconcile();
}

void Presence::set_static(ClientId client, const StaticHops& statics) {
  auto it = clients_.find(client);
  if (it == clients_.end() || it->second.statics == statics) return;
  const StaticHops before = std::exchange(it->second.statics, statics);
  for (const auto& [hop, mac] : before) {
    if (!statics.count(hop)) unpin(client, hop);
  }
  for (const auto& [hop, mac] : statics) table_.set_static(hop.ip, hop.port, mac);
  ++generation_;
  reconcile();  // a hop no longer static is solicited again if wanted
}

void Presence::reconcile() {
  // One table for every client: a hop is tracked while someone wants it,
  // trusted for the shortest reachable time any of them asked for (0: the
  // table's default).
  const double fallback = table_.timing().reachable_time;
  std::map<HopKey, double> keep;
  for (const auto& [id, c] : clients_) {
    const double mine = c.reachable_s > 0 ? c.reachable_s : fallback;
    for (const auto& hop : c.wants) {
      auto [r, fresh] = keep.try_emplace(hop, mine);
      if (!fresh) r->second = std::min(r->second, mine);
    }
  }
  std::set<HopKey> keys;
  for (const auto& [hop, r] : keep) keys.insert(hop);
  const auto before = table_.entries().size();
  table_.retain(keys);
  if (table_.entries().size() != before) ++generation_;  // a hop with a MAC may have gone
  const double now = clock_();
  for (const auto& [hop, r] : keep) table_.want(hop.ip, hop.port, now, r);
}

bool Presence::on_reply(const IpAddress& ip, uint16_t port, const MacAddress& mac) {
  if (!table_.on_reply(ip, port, mac, clock_())) return false;
  ++generation_;
  return true;
}

void Presence::learn(const IpAddress& ip, uint16_t port, const MacAddress& mac) { on_reply(ip, port, mac); }

void Presence::count_answer(const HopKey& hop) {
  for (auto& [id, c] : clients_) {
    if (c.wants.count(hop)) ++c.counters.answers;
  }
}

Presence::Client* Presence::owner(uint16_t port, const uint8_t* address, bool ipv4) {
  for (auto& [id, c] : clients_) {
    for (const auto& a : c.addresses) {
      if (a.port == port && a.address.is_v4() == ipv4 && std::memcmp(a.address.bytes.data(), address, a.address.size()) == 0) {
        return &c;
      }
    }
  }
  return nullptr;
}

const IpAddress* Presence::source_for(const HopKey& hop) const {
  const IpAddress* any = nullptr;
  for (const auto& [id, c] : clients_) {
    for (const auto& a : c.addresses) {
      if (a.port != hop.port || a.address.is_v4() != hop.ip.is_v4()) continue;
      if (c.wants.count(hop)) return &a.address;
      if (!any) any = &a.address;
    }
  }
  return any;
}

const Presence::ClientCounters* Presence::counters(ClientId client) const {
  auto it = clients_.find(client);
  return it == clients_.end() ? nullptr : &it->second.counters;
}

bool Presence::handle_frame(uint16_t port, std::span<const uint8_t> frame) {
  net::PacketView v;
  net::parse_packet(frame.data(), frame.size(), v);
  if (v.vlan_count != 0) return false;
  if (v.ethertype == net::kEtherArp) return handle_arp(port, frame.subspan(v.l3_offset));
  if (v.ip_version == 6 && v.l3_offset < frame.size()) return handle_nd(port, frame, v.l3_offset);
  return false;
}

bool Presence::handle_arp(uint16_t port, std::span<const uint8_t> body) {
  net::ArpView arp;
  if (!net::parse_arp(body.data(), body.size(), arp)) return false;
  const IpAddress sender = IpAddress::v4(arp.sender_ip);
  on_reply(sender, port, mac_at(arp.sender_mac));  // any ARP from a wanted hop refreshes it (RFC 826 merge)
  if (arp.op == net::kArpRequest) {
    Client* c = owner(port, arp.target_ip, true);
    const MacAddress* mac = port_mac(port);
    if (!c || !mac) return false;
    std::array<uint8_t, net::kArpFrame> reply{};
    net::build_arp(reply.data(), net::kArpReply, arp.sender_mac, mac->bytes.data(), arp.target_ip, arp.sender_mac,
                   arp.sender_ip);
    if (send_(port, reply)) ++c->counters.replies;
    return true;
  }
  if (arp.op != net::kArpReply || !table_.lookup(sender, port)) return false;
  count_answer({port, sender});
  return true;
}

bool Presence::handle_nd(uint16_t port, std::span<const uint8_t> frame, size_t l3_offset) {
  net::NdView nd;
  if (!net::parse_nd(frame.data() + l3_offset, frame.size() - l3_offset, nd)) return false;
  // Only the link-layer option teaches a MAC: a solicitation's names its
  // sender (RFC 4861 §7.2.3), an advertisement's its target (§7.2.5: one
  // without it is discarded for an incomplete entry).
  if (nd.type == net::kNdNeighborSolicit) {
    Client* c = owner(port, nd.target, false);
    const MacAddress* mac = port_mac(port);
    if (!c || !mac) return false;
    std::array<uint8_t, net::kNdFrame> reply{};
    static constexpr uint8_t kUnspecified[16] = {};
    if (std::memcmp(nd.src_ip, kUnspecified, 16) == 0) {
      // A duplicate-address probe: defended with an unsolicited
      // advertisement to all nodes (RFC 4861 §7.2.4).
      net::build_na(reply.data(), kAllNodesMac, mac->bytes.data(), nd.target, kAllNodes, false);
    } else {
      if (nd.link_addr) on_reply(IpAddress::v6(nd.src_ip), port, mac_at(nd.link_addr));
      net::build_na(reply.data(), frame.data() + 6, mac->bytes.data(), nd.target, nd.src_ip, true);
    }
    if (send_(port, reply)) ++c->counters.replies;
    return true;
  }
  if (nd.type != net::kNdNeighborAdvert || !nd.link_addr) return false;
  const IpAddress target = IpAddress::v6(nd.target);
  // Without the Override flag an advertisement does not replace a MAC we
  // have (RFC 4861 §7.2.5); it still confirms the same one.
  const auto known = table_.lookup(target, port);
  if (nd.override_flag || !known || *known == mac_at(nd.link_addr)) on_reply(target, port, mac_at(nd.link_addr));
  if (!table_.lookup(target, port)) return false;
  count_answer({port, target});
  return true;
}

nlohmann::json Presence::status_json() const {
  nlohmann::json addresses = nlohmann::json::array(), neighbors = nlohmann::json::array();
  nlohmann::json clients = nlohmann::json::object();
  for (const auto& [id, c] : clients_) {
    for (const auto& a : c.addresses) {
      addresses.push_back({{"port", a.port}, {"address", to_string(a.address)}, {"owner", c.name}});
    }
    // Two instances of one module (a config change in flight) both show.
    const std::string key = clients.contains(c.name) ? c.name + "#" + std::to_string(id) : c.name;
    clients[key] = {{"replies", c.counters.replies}, {"requests", c.counters.requests},
                       {"answers", c.counters.answers}, {"wanted", c.wants.size()}};
  }
  for (const auto& [hop, e] : table_.entries()) {
    nlohmann::json n = {{"ip", to_string(hop.ip)}, {"port", e.port}, {"state", NeighborResolver::state_name(e.state)}};
    if (e.has_mac) n["mac"] = to_string(e.mac);
    neighbors.push_back(std::move(n));
  }
  return {{"addresses", addresses}, {"neighbors", neighbors}, {"clients", clients}};
}

void Presence::tick() {
  const double now = clock_();
  if (now - last_tick_ < kTickInterval) return;
  last_tick_ = now;
  std::vector<NeighborResolver::Solicit> due;
  if (table_.tick(now, due)) ++generation_;
  for (const auto& s : due) solicit(s);
}

void Presence::solicit(const NeighborResolver::Solicit& s) {
  const HopKey hop{s.port, s.ip};
  const IpAddress* source = source_for(hop);
  const MacAddress* mac = port_mac(s.port);
  if (!source || !mac) return;  // no address of ours to ask from on that port
  std::array<uint8_t, net::kNdFrame> frame{};
  const uint8_t* probe = s.unicast_to ? s.unicast_to->bytes.data() : nullptr;
  const size_t len =
      s.ip.is_v4()
          ? net::build_arp(frame.data(), net::kArpRequest, probe ? probe : kBroadcast, mac->bytes.data(),
                           source->bytes.data(), kZeroMac, s.ip.bytes.data())
          : net::build_ns(frame.data(), mac->bytes.data(), source->bytes.data(), s.ip.bytes.data(), probe);
  if (!send_(s.port, {frame.data(), len})) return;
  for (auto& [id, c] : clients_) {
    if (c.wants.count(hop)) ++c.counters.requests;
  }
}

}  // namespace meridian::host
