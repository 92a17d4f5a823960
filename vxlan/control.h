// The VTEP's control side, run on the control lcore: it turns the "vxlan"
// config section into snapshots (VxlanTables), owns the bridge-domain state
// (the only FDB writer: applies workers' learn events, ages entries,
// installs static entries), allocates remote-VTEP slots and routes VTEPs over
// the underlay (a host::RouteTable of its interfaces and routes). It is a
// client of host/: its underlay addresses are answered for there, and the
// next hops it wants resolved there.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <tuple>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "config/metrics.h"
#include "config/model.h"
#include "host/presence.h"
#include "host/routes.h"
#include "vxlan/model.h"
#include "vxlan/stage.h"
#include "vxlan/tables.h"

namespace meridian::vxlan {

/// What the control side needs to know about a running port.
struct PortInfo {
  std::string name;
  uint16_t id = 0;
  MacAddress mac;
  unsigned mtu = 1500;
};

class VxlanControl {
 public:
  /// `tsc_hz`: the engine's calibrated TSC rate (ageing). `presence`: host/,
  /// which outlives this.
  VxlanControl(host::Presence& presence, unsigned workers, rte_rcu_qsbr* qsbr, uint64_t tsc_hz);
  ~VxlanControl();
  /// "" or why the learn ring could not be created.
  std::string init();
  rte_ring* learn_ring() const { return ring_; }

  /// A validated-but-not-installed config: new bridge-domain tables and the
  /// routing table are built here, where failing is still allowed.
  struct Pending;
  std::shared_ptr<Pending> prepare(const config::VxlanConfig& next, const std::vector<PortInfo>& ports,
                                   config::FieldErrors& errors);
  void commit(std::shared_ptr<Pending> pending);

  /// The snapshot for workers (rebuilt when something changed).
  std::shared_ptr<const VxlanTables> tables();
  /// Housekeeping: learn events, aging, next-hop resolution, VTEP slot GC.
  /// Returns true when the snapshot changed and should be republished.
  bool tick();
  /// Called after a snapshot from `tables()` was published: slots retired
  /// before it start their grace period only now.
  void published();

  nlohmann::json fdb_json(std::optional<uint32_t> vni, std::optional<MacAddress> mac) const;
  nlohmann::json neighbors_json(std::optional<uint32_t> vni) const;
  nlohmann::json vteps_json() const;
  nlohmann::json bridge_domains_json(std::optional<uint32_t> vni) const;
  /// Sets the "clear" baseline; false when `vni` is not configured.
  bool clear(std::optional<uint32_t> vni);
  void metrics(config::MetricsWriter& out) const;
  bool has_vni(uint32_t vni) const { return bds_.count(vni) != 0; }

  /// `frame` (an inner Ethernet frame the control lcore built) encapsulated
  /// for bridge domain `vni` toward the remote VTEP `vtep` into `out`, as
  /// the stage would: the port to send it on, or dataplane::kNoPort when the
  /// VNI is not ours, the VTEP has no slot or is not resolved, or it does
  /// not fit the VTEP's MTU.
  uint16_t encapsulate(uint32_t vni, const IpAddress& vtep, std::span<const uint8_t> frame,
                       std::vector<uint8_t>& out);

  /// The workers' clock in seconds (TSC based).
  uint32_t now_seconds() const;

 private:
  struct Slot {
    bool in_use = false;
    IpAddress ip;
    bool flood = false;     // on some flood list
    unsigned statics = 0;   // static FDB entries naming it
    unsigned fdb_refs = 0;  // dynamic entries (recounted by gc)
    uint64_t quarantine_token = 0;
    bool quarantined = false;
    bool retiring = false;  // unused, waiting for the snapshot without it to be published
  };
  /// The slot of a remote VTEP; `create` allocates one, within the learned
  /// allowance when `learned`.
  std::optional<uint16_t> slot_for(const IpAddress& ip, bool create, bool learned);
  void log_held_move(uint32_t vni, const MacAddress& mac, uint64_t to);
  void reconcile_slots();
  void gc_slots();
  /// The next hop of every VTEP slot, wanted from host/.
  void resolve_all();
  void apply_events();
  /// Our underlay addresses and configured next hops, as host/ keeps them.
  void register_with_host();
  const PortInfo* port_by_id(uint16_t id) const;
  const PortInfo* port_by_name(const std::string& name) const;
  const config::UnderlayInterface* interface_on(uint16_t port_id) const;
  nlohmann::json location_json(uint64_t loc) const;
  double now() const;

  host::Presence& presence_;
  host::Presence::ClientId client_;
  uint64_t host_generation_ = 0;  // host/'s next hops as last built into the tables
  unsigned workers_;
  rte_rcu_qsbr* qsbr_;
  rte_ring* ring_ = nullptr;
  uint64_t tsc_hz_ = 1;
  config::VxlanConfig config_;
  std::vector<PortInfo> ports_;
  std::map<uint32_t, std::shared_ptr<BridgeDomainState>> bds_;
  std::shared_ptr<host::RouteTable> routes_;  // the underlay: interfaces' prefixes and vtep.routes
  std::vector<Slot> slots_;
  std::map<IpAddress, uint16_t> slot_by_ip_;
  std::map<uint16_t, host::HopKey> next_hop_by_slot_;  // the next hop (port, neighbour address) of each slot
  bool dirty_ = true;
  std::shared_ptr<const VxlanTables> tables_;
  double last_slow_tick_ = 0;
  // Learned suppression entries: when each was last confirmed (they age like the FDB).
  std::map<std::pair<uint32_t, IpAddress>, uint32_t> neighbor_seen_;
  // (vni, port id, vlan) of every attachment: learn events for others are stale.
  std::set<std::tuple<uint32_t, uint16_t, uint16_t>> attachments_;
  uint32_t last_age_s_ = 0;
  bool resolve_pending_ = false;      // a learned VTEP awaits resolve_all()
  uint64_t vtep_learn_limit_ = 0;     // VTEPs not learned: allowance used up
  size_t learned_slots_ = 0;          // in use by learned VTEPs only (no flood list, no static entry)
  double last_held_log_ = -1e9;
  uint64_t held_since_log_ = 0;
};

}  // namespace meridian::vxlan
