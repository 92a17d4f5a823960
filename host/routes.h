// The appliance's routes: the on-link prefixes of its addresses and static
// routes through gateways, in a longest-prefix-match table (DPDK's rte_lpm
// and rte_lpm6, created only for the families in use: each costs tens of
// MiB). A client builds one from its config while a change is prepared
// (where failing is still allowed) and swaps it in at commit; lookups run on
// the control lcore, where they pick the next hop host/ resolves
// (VXLAN: the underlay hop towards each remote VTEP).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/net_types.h"

struct rte_lpm;
struct rte_lpm6;

namespace meridian::host {

using config::IpAddress;
using config::IpPrefix;

/// One of our addresses on a port, with its on-link prefix (10.1.0.1/24).
struct ConnectedPrefix {
  std::string port;
  IpPrefix prefix;
};

/// Destinations inside `prefix` are reached through `gateway`, which must be
/// on-link on some connected prefix.
struct StaticRoute {
  IpPrefix prefix;
  IpAddress gateway;
};

class RouteTable {
 public:
  ~RouteTable();
  RouteTable(const RouteTable&) = delete;
  RouteTable& operator=(const RouteTable&) = delete;

  /// Null, with `error` set, when the LPM tables cannot be created or a
  /// route not added. A connected prefix wins over an equal static one.
  static std::shared_ptr<RouteTable> build(std::vector<ConnectedPrefix> connected, const std::vector<StaticRoute>& statics,
                                           std::string& error);

  struct NextHop {
    IpAddress neighbor;  // the destination itself when on-link, else the gateway
    std::string port;
  };
  /// The hop towards `destination`, out of the port of the most specific
  /// connected prefix that holds the hop; nullopt when no route covers it
  /// or its gateway is not on-link.
  std::optional<NextHop> lookup(const IpAddress& destination) const;
  /// Inside one of the connected prefixes.
  bool on_link(const IpAddress& ip) const;

 private:
  RouteTable() = default;
  struct Hop {
    bool direct;
    IpAddress gateway;
    std::string port;  // a connected prefix's own port
  };
  /// The longest match for `ip` (a default route when nothing longer).
  const Hop* match(const IpAddress& ip) const;
  std::vector<ConnectedPrefix> connected_;
  rte_lpm* lpm4_ = nullptr;
  rte_lpm6* lpm6_ = nullptr;
  std::vector<Hop> hops_;  // by the LPM's next-hop index
  static constexpr uint32_t kNoDefault = UINT32_MAX;
  uint32_t default4_ = kNoDefault, default6_ = kNoDefault;  // 0.0.0.0/0 and ::/0, which rte_lpm cannot hold
};

}  // namespace meridian::host
