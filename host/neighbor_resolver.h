// Next-hop resolution (ARP for IPv4, ND for IPv6) as a pure state machine
// driven by the caller's clock, so retries, timeouts, refreshes and expiry
// are unit-tested with simulated time. host::Presence owns the appliance's
// one table; it sends the solicitations `tick` asks for and feeds replies to
// `on_reply`. A reachable entry is re-probed after its reachable time and
// loses its MAC when the probes go unanswered: nothing stays usable forever.
//
//   incomplete --reply--> reachable --timeout--> probing --reply--> reachable
//       |                                            |
//       +--max_tries--> failed <--------max_tries----+
//   failed: retried every `failed_retry` seconds (a VTEP may come back).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/net_types.h"

namespace meridian::host {

using config::IpAddress;
using config::MacAddress;

struct ResolverTiming {
  double retry_interval = 1.0;   // between solicitations while unresolved
  unsigned max_tries = 3;
  double reachable_time = 300;   // then re-probe (the MAC stays usable while probing)
  double failed_retry = 5.0;
};

/// A neighbour is an address on a link: the same address on two ports is
/// two entries (two segments may both use .1 for their gateway).
struct HopKey {
  uint16_t port = 0;
  IpAddress ip;
  auto operator<=>(const HopKey&) const = default;
};

class NeighborResolver {
 public:
  enum class State { kIncomplete, kReachable, kProbing, kFailed, kStatic };
  struct Entry {
    uint16_t port = 0;
    State state = State::kIncomplete;
    MacAddress mac;
    bool has_mac = false;
    unsigned tries = 0;
    double next_action = 0;
    double resolved_at = 0;
    double reachable_time = 0;  // 0: the table's default
  };
  struct Solicit {
    IpAddress ip;
    uint16_t port;
    std::optional<MacAddress> unicast_to;  // probes go unicast to the known MAC
  };

  explicit NeighborResolver(ResolverTiming timing = {}) : timing_(timing) {}
  const ResolverTiming& timing() const { return timing_; }

  /// Starts resolving `ip` on `port` (no-op when already tracked there);
  /// `reachable_time` (seconds, 0: the table's) until a reply is re-probed.
  void want(const IpAddress& ip, uint16_t port, double now, double reachable_time = 0);
  /// Forgets `ip` on `port`, static or not.
  void erase(const IpAddress& ip, uint16_t port) { entries_.erase({port, ip}); }
  /// Pins ip -> mac on `port` (configured); never solicited, never expires.
  void set_static(const IpAddress& ip, uint16_t port, const MacAddress& mac);
  /// Stops tracking the (non-static) hops not in `keep`.
  void retain(const std::set<HopKey>& keep);
  /// A reply (or any authoritative sighting) of ip -> mac on `port`. Returns
  /// true when the usable MAC changed (callers rebuild rewrites).
  bool on_reply(const IpAddress& ip, uint16_t port, const MacAddress& mac, double now);
  /// Advances timers; appends due solicitations. Returns true when some
  /// entry lost or gained a usable MAC.
  bool tick(double now, std::vector<Solicit>& out);

  /// The usable MAC for `ip` on `port` (reachable or probing), if any.
  std::optional<MacAddress> lookup(const IpAddress& ip, uint16_t port) const;
  const std::map<HopKey, Entry>& entries() const { return entries_; }
  const Entry* entry(const IpAddress& ip, uint16_t port) const {
    auto it = entries_.find({port, ip});
    return it == entries_.end() ? nullptr : &it->second;
  }
  static const char* state_name(State s);

 private:
  ResolverTiming timing_;
  std::map<HopKey, Entry> entries_;
};

}  // namespace meridian::host
