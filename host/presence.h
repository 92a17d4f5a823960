// The appliance's own IP presence on its ports, shared by every module that
// speaks IP from the control lcore (VXLAN's VTEP, PTP's unicast ports; next:
// the multicast querier, EVPN, RoCE):
// - the addresses each client owns on each port, answered for with ARP
//   replies and neighbour advertisements, and defended against duplicate-
//   address probes (RFC 4861 §7.2.4: an unsolicited advertisement to all
//   nodes);
// - one next-hop table (host::NeighborResolver) for the addresses clients
//   want resolved, with retries, re-probing and expiry, fed by ARP/ND and by
//   the clients' own sightings (a PTP master's frames, a VTEP's outer MAC);
// - the frames it sends go out through the engine's control transmit.
// Pure: frames in and out as bytes, time from the caller, so everything here
// is unit-tested without DPDK. The engine offers it punted ARP/ND before any
// module (dataplane/runtime.cc) and ticks it on the control lcore; a client
// compares generation() to notice that a usable MAC changed.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/net_types.h"
#include "host/neighbor_resolver.h"

namespace meridian::host {

/// One address a client owns on a port.
struct OwnAddress {
  uint16_t port = 0;
  IpAddress address;
  bool operator==(const OwnAddress&) const = default;
};

/// A next hop a client wants resolved on a port.
struct WantedHop {
  IpAddress ip;
  uint16_t port = 0;
};
using StaticHops = std::map<HopKey, MacAddress>;

class Presence {
 public:
  /// Sends a whole frame we built through the engine's egress path (the
  /// port's control queue, or its QoS tree); false when it could not (the
  /// engine counts why).
  using SendFrame = std::function<bool(uint16_t port, std::span<const uint8_t> frame)>;
  using Clock = std::function<double()>;  // seconds, monotonic

  /// What one client's addresses and wants caused (its status shows these).
  struct ClientCounters {
    uint64_t replies = 0;    // ARP replies / advertisements sent for its addresses (defences included)
    uint64_t requests = 0;   // ARP requests / solicitations sent for hops it wants
    uint64_t answers = 0;    // replies taken from hops it wants
  };
  using ClientId = uint32_t;

  Presence(SendFrame send, Clock clock, ResolverTiming timing = {});

  /// A port's MAC (at start, and when the engine re-creates the device).
  void set_port_mac(uint16_t port, const MacAddress& mac);

  /// A client: its registrations are its own; remove_client() drops them.
  /// Two instances of one module (a config change builds the new one before
  /// the old one goes) are two clients.
  ClientId add_client(std::string name);
  void remove_client(ClientId client);
  /// The client's addresses, replacing what it had.
  void set_addresses(ClientId client, std::vector<OwnAddress> addresses);
  /// The hops the client wants resolved, replacing what it wanted; a reply
  /// is trusted for `reachable_s` seconds (0: the table's default), then
  /// re-probed.
  void want(ClientId client, const std::vector<WantedHop>& hops, double reachable_s = 0);
  /// Configured neighbours of the client (never solicited, never expire),
  /// replacing what it had.
  void set_static(ClientId client, const StaticHops& statics);

  /// A sighting of ip -> mac on `port` by a client (a master's frame, a
  /// VTEP's outer header). Only hops someone wants there are updated.
  void learn(const IpAddress& ip, uint16_t port, const MacAddress& mac);
  std::optional<MacAddress> lookup(const IpAddress& ip, uint16_t port) const { return table_.lookup(ip, port); }
  const NeighborResolver::Entry* entry(const IpAddress& ip, uint16_t port) const { return table_.entry(ip, port); }
  /// Bumps whenever some hop gains, loses or changes its usable MAC.
  uint64_t generation() const { return generation_; }

  /// A punted frame received on `port`: ARP or ND for one of our addresses
  /// (answered), or an answer from a wanted hop (learnt). True when it was
  /// ours to take; anything else is left to the modules. Our addresses live
  /// on the untagged port: a VLAN-tagged frame is never ours.
  bool handle_frame(uint16_t port, std::span<const uint8_t> frame);
  /// Timers: due solicitations go out (at most every 100 ms of `clock`).
  void tick();

  const ClientCounters* counters(ClientId client) const;
  const NeighborResolver& table() const { return table_; }
  /// GET /api/v1/host: addresses by owner, the next-hop table, and each
  /// client's counters (ports as ids; the engine names them).
  nlohmann::json status_json() const;
  /// The source of a solicitation for `hop`: an address of the family that
  /// a client wanting it owns on that port, else any we own there.
  const IpAddress* source_for(const HopKey& hop) const;

 private:
  struct Client {
    std::string name;
    std::vector<OwnAddress> addresses;
    std::set<HopKey> wants;
    double reachable_s = 0;
    StaticHops statics;
    ClientCounters counters;
  };
  /// Who owns `address` on `port`; null when nobody does.
  Client* owner(uint16_t port, const uint8_t* address, bool ipv4);
  /// Every client that wants the hop: counted once each.
  void count_answer(const HopKey& hop);
  /// Drops a client's static unless another client pins the same hop.
  void unpin(ClientId client, const HopKey& hop);
  /// Table and wants in step again after a client changed its wants.
  void reconcile();
  bool handle_arp(uint16_t port, std::span<const uint8_t> frame);
  bool handle_nd(uint16_t port, std::span<const uint8_t> frame, size_t l3_offset);
  void solicit(const NeighborResolver::Solicit& s);
  bool on_reply(const IpAddress& ip, uint16_t port, const MacAddress& mac);
  const MacAddress* port_mac(uint16_t port) const;

  SendFrame send_;
  Clock clock_;
  NeighborResolver table_;
  std::map<ClientId, Client> clients_;
  ClientId next_client_ = 1;
  std::map<uint16_t, MacAddress> port_macs_;
  uint64_t generation_ = 0;
  double last_tick_ = -1e9;
};

}  // namespace meridian::host
