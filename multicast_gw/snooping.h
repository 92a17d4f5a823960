// IGMP/MLD snooping on the attachments of the bridge domains the multicast
// section lists (control lcore): one IGMP and one MLD MembershipRouter per
// attachment, fed by the frames the multicast stage punts, whose queries go
// out of that attachment; their memberships become the bridge domains'
// multicast routes (dataplane/overlay_multicast.h) in the next table version.
// A query from another router is relayed to the bridge domain's other
// attachments, and reports are relayed toward the attachment it sits on, so
// that a querier elsewhere still hears the hosts (RFC 4541 §2.1.1).
//
// The overlay side (IGMP/MLD the VXLAN stage punts from decapsulated frames,
// docs/multicast.md "Overlay"): as `ingress`, one IGMP and one MLD router per
// remote VTEP, querying it through the overlay, whose receivers become the
// routes' remote VTEPs; as `edge`, one proxy host per family (host.h) that
// reports the attachments' merged membership to the VTEPs it heard an
// overlay query from (to the flood list while it has heard none). Reports
// from the overlay go on only to attachments with a multicast router, never
// to the overlay's other VTEPs.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/model.h"
#include "dataplane/overlay_multicast.h"
#include "multicast_gw/model.h"
#include "multicast_gw/host.h"
#include "multicast_gw/router.h"

namespace meridian::config {
struct BridgeDomainConfig;  // vxlan/model.h
}

namespace meridian::mcast {

/// What the snooping side needs of the engine.
struct SnoopingIo {
  /// Sends a frame on a port (tagged with `vlan` when not 0).
  std::function<bool(uint16_t port, std::span<const uint8_t> frame)> send;
  /// Counts a refused frame on its port under a multicast drop reason name.
  std::function<void(uint16_t port, DecodeStatus why)> refused;
  /// Sends an inner frame into bridge domain `vni` toward the remote VTEP `vtep`.
  std::function<bool(uint32_t vni, const IpAddress& vtep, std::span<const uint8_t> frame)> send_overlay;
};

/// One port of the appliance, as the snooping side knows it.
struct SnoopPort {
  std::string name;
  uint16_t port_id = 0;
  uint8_t mac[6] = {};
};

struct Attachment {
  dataplane::BridgePort where{};
  std::string port_name;
  uint8_t mac[6] = {};
  IpAddress link_local;  // our MLD query source on this attachment
  MembershipRouter igmp, mld;
  /// Another multicast router was heard here (a query), per family [0] IPv4,
  /// [1] IPv6, until: a router port (RFC 4541), which gets the reports and
  /// every group's data.
  std::array<Millis, 2> router_until{};
  /// ... of which a production router (a query from a real address, not a
  /// snooping switch's 0.0.0.0 / ::), until: where a proxy belongs.
  std::array<Millis, 2> production_router_until{};
  std::array<bool, 2> router_port{};  // as last published
  /// Ingress role: while a querier is heard here, a proxy host (RFC 4605
  /// upstream interface) reports the overlay's merged membership to it, so
  /// that the production network's router builds its tree toward us.
  std::array<std::unique_ptr<MembershipHost>, 2> upstream;
  /// The config's upstream attachment (MulticastBridgeDomain::upstream):
  /// proxied from the start and a router port whether or not its router is
  /// heard (RFC 4605 §4.2: the upstream interface gets the reports and the
  /// downstream sources' traffic); other queriers' queries are not relayed to it.
  bool upstream_configured = false;
  bool router_port_now(size_t fi, Millis now) const { return upstream_configured || router_until[fi] > now; }
  Attachment(dataplane::BridgePort w, std::string name, const uint8_t* port_mac, IpAddress ll, RouterConfig igmp_cfg,
             RouterConfig mld_cfg, Millis now);
  MembershipRouter& router(uint8_t family) { return family == 4 ? igmp : mld; }
  const MembershipRouter& router(uint8_t family) const { return family == 4 ? igmp : mld; }
};

/// A remote VTEP of an ingress bridge domain, as one link of its own: the
/// receivers behind it (RFC 4541 in the overlay).
struct RemoteEdge {
  IpAddress vtep;
  MembershipRouter igmp, mld;
  RemoteEdge(IpAddress v, RouterConfig igmp_cfg, RouterConfig mld_cfg, Millis now)
      : vtep(v), igmp(std::move(igmp_cfg), now), mld(std::move(mld_cfg), now) {}
  MembershipRouter& router(uint8_t family) { return family == 4 ? igmp : mld; }
  const MembershipRouter& router(uint8_t family) const { return family == 4 ? igmp : mld; }
};

/// A static subscription's target with its groups, as a router would hold
/// them (INCLUDE the sources, or EXCLUDE nothing for (*,G)), never expiring.
struct StaticLink {
  std::optional<dataplane::BridgePort> local;  // else `vtep`
  IpAddress vtep;
  std::string name;  // as config::to_string(MulticastEgress)
  std::map<IpAddress, GroupState> groups;
};

/// A route's flow toward one egress (by the domain's id for its name, as
/// budgets name it: SnoopedDomain::egress_id).
using FlowEgress = std::pair<dataplane::MulticastKey, uint32_t>;
struct FlowEgressHash {
  size_t operator()(const FlowEgress& f) const {
    return dataplane::MulticastKeyHash{}(f.first) ^ (size_t{f.second} * 0x9e3779b97f4a7c15ULL);
  }
};
/// Route keys in address order, compared as big-endian words (rebuilds
/// sort tens of thousands of them: no call into memcmp per comparison).
inline bool key_less(const dataplane::MulticastKey& a, const dataplane::MulticastKey& b) {
  if (a.family != b.family) return a.family < b.family;
  for (const auto& [x, y] : {std::pair{a.group.data(), b.group.data()}, std::pair{a.source.data(), b.source.data()}}) {
    for (int i = 0; i < 16; i += 8) {
      const uint64_t u = config::be_word(x + i), v = config::be_word(y + i);
      if (u != v) return u < v;
    }
  }
  return false;
}
/// Keys by group alone (family, then group; the source ignored): a group's
/// routes, states and refusals are one run of a list sorted by key_less.
inline bool group_less(const dataplane::MulticastKey& a, const dataplane::MulticastKey& b) {
  if (a.family != b.family) return a.family < b.family;
  for (int i = 0; i < 16; i += 8) {
    const uint64_t u = config::be_word(a.group.data() + i), v = config::be_word(b.group.data() + i);
    if (u != v) return u < v;
  }
  return false;
}
struct FlowEgressLess {
  bool operator()(const FlowEgress& a, const FlowEgress& b) const {
    if (key_less(a.first, b.first)) return true;
    if (key_less(b.first, a.first)) return false;
    return a.second < b.second;
  }
};
/// A (route, egress) pair's admission history: since when the egress wants
/// the route (0: from the start, a static subscription), and whether it was
/// admitted at the last rebuild (first come, first served).
struct FlowState {
  FlowEgress fe;
  Millis first = 0;
  bool admitted = false;
  /// What it added to its egress's use (kbit/s): 0 unless admitted and
  /// charged here (a charge shared by a group's routes is on one of them).
  uint64_t charged_kbps = 0;
};

/// A counter slot (dataplane::MulticastRouteCounters) and its counts when it
/// was assigned: a reused slot counts from there.
struct CountedSlot {
  uint32_t slot = dataplane::MulticastRouteCounters::kNoSlot;
  uint64_t packets = 0, bytes = 0;
};

/// A route as it lasts across rebuilds: its frames in, since when it exists,
/// and each egress it has sent to, with the copies out since that egress
/// joined it.
struct RouteRecord {
  CountedSlot in;
  Millis created = 0;
  struct Egress {
    CountedSlot out;
    Millis since = 0;
    uint64_t seen = 0;  // the last rebuild that had it (0: new)
  };
  std::map<uint32_t, Egress> locals;    // by MulticastIngress::attachment(port, VLAN)
  std::map<IpAddress, Egress> remotes;  // by VTEP
  /// The targets and slots of the last rebuild: an unchanged route takes its slots from here.
  std::vector<dataplane::BridgePort> last_locals;
  std::vector<IpAddress> last_remote_vteps;
  std::vector<uint32_t> last_local_slots, last_remote_vtep_slots;
  /// The rate over the last sampling period (about a second, sampled by
  /// tick from `in`'s slot; the first sample only sets the start).
  Millis sampled_at = 0;  // 0: not sampled yet
  uint64_t sampled_packets = 0, sampled_bytes = 0;
  double rate_pps = 0, rate_bps = 0;
  int flow = -1;  // the route's flow in the config's `flows` (-1: none)
  /// The highest rate seen (kbit/s), and what admission last weighed a
  /// listed-source receiver at (measured flows are re-weighed when the
  /// charge would grow more than 5 %).
  uint64_t peak_kbps = 0, charged_kbps = 0;
};

/// A measured flow's traffic in one group, summed over the group's routes:
/// what an any-source receiver gets.
struct GroupPeak {
  uint64_t peak_kbps = 0, charged_kbps = 0;
};
using GroupFlow = std::tuple<uint8_t, std::array<uint8_t, 16>, int>;  // family, group, flow
struct MulticastKeyLess {
  bool operator()(const dataplane::MulticastKey& a, const dataplane::MulticastKey& b) const { return key_less(a, b); }
};

/// A flow refused on an egress by bandwidth admission.
struct AdmissionDenial {
  dataplane::MulticastKey key;
  std::string egress;
  uint64_t rate_kbps = 0, budget_kbps = 0, in_use_kbps = 0;
  /// What was refused, as admission charges it: the route and its flow,
  /// or for an any-source receiver of a group of several routes the group
  /// (source zeroed) and the flow: one refusal, counted and logged once,
  /// however many of the group's routes it keeps from the egress.
  dataplane::MulticastKey charge;
  int flow = -1;
};

/// At most this many remote VTEPs per bridge domain are tracked (flood list
/// first; others when they report); reports from more are counted, not kept.
inline constexpr size_t kMaxRemoteEdges = 4096;

struct SnoopedDomain {
  uint32_t vni = 0;
  config::MulticastBridgeDomain cfg;
  std::vector<std::unique_ptr<Attachment>> attachments;
  /// The overlay side. Our inner source MAC and MLD link-local address there.
  uint8_t overlay_mac[6] = {};
  IpAddress overlay_link_local;
  std::vector<IpAddress> flood;                            // the flood list, in config order
  std::map<IpAddress, std::unique_ptr<RemoteEdge>> edges;  // ingress role
  std::unique_ptr<MembershipHost> hosts[2];                // edge role: [0] IGMP, [1] MLD
  /// VTEPs an overlay query came from, per family, until (edge role).
  std::array<std::map<IpAddress, Millis>, 2> overlay_queriers;
  bool local_changed = true;                               // the edge's merged interest is due
  bool overlay_changed = true;                             // the upstream proxies' merged interest is due
  bool overlay_merge_all = true;  // ... over every group (a new proxy, new settings); else `changed_groups`'s
  uint64_t overlay_edge_limit = 0;                         // reports from VTEPs past kMaxRemoteEdges
  /// Queries and reports that could not be sent into the overlay (the VTEP
  /// not resolved yet, no buffer, larger than the tunnel's MTU).
  mutable uint64_t overlay_send_failures = 0;
  std::vector<StaticLink> statics;
  /// Bandwidth admission as of the last rebuild: what is refused, what each
  /// budgeted egress carries, and how many refusals there have been.
  std::vector<AdmissionDenial> denied;
  std::map<std::string, uint64_t> in_use_kbps;
  uint64_t denials = 0;
  /// Per (route, egress), as of the last rebuild.
  std::vector<FlowState> flow_states;  // sorted by FlowEgressLess
  /// Egress names (as budgets name them) by id, for FlowEgress; an id is never reused.
  std::map<std::string, uint32_t> egress_ids;
  std::vector<std::string> egress_names;
  uint32_t egress_id(const std::string& name) {
    auto [it, fresh] = egress_ids.try_emplace(name, static_cast<uint32_t>(egress_names.size()));
    if (fresh) egress_names.push_back(name);
    return it->second;
  }
  std::map<dataplane::MulticastKey, RouteRecord, MulticastKeyLess> route_records;
  std::map<GroupFlow, GroupPeak> group_peaks;  // measured flows only
  /// What the next rebuild redoes: everything (`rebuild_all`: new settings;
  /// also when a router port came or went), else only the groups whose
  /// memberships changed or whose measured flows' charges grew (keys with
  /// the source zeroed) and those with refusals (a freed budget may admit
  /// them); every other route is the last table's.
  bool rebuild_all = true;
  std::vector<dataplane::MulticastKey> changed_groups;
  bool any_vtep = false;                                   // remote_vtep_learning: any VTEP may report
  std::set<IpAddress> known_vteps;                         // otherwise these: flood list and static FDB
};

/// Where a relayed IGMP/MLD frame goes: every attachment (IGMP types we
/// do not know), the router ports (reports), or the hosts (another
/// querier's query: every attachment but a configured upstream, whose
/// router must not hear a rival querier through us).
enum class RelayTo { kAll, kRouters, kHosts };

class Snooping {
 public:
  /// `workers`: the data path's workers, which count the routes' traffic.
  explicit Snooping(SnoopingIo io, unsigned workers = 1);
  ~Snooping();

  /// The snooped domains under `next` (the multicast and vxlan sections):
  /// an attachment whose settings did not change keeps its state.
  void apply(const config::Config& next, const std::vector<SnoopPort>& ports, Millis now);
  /// A punted IGMP/MLD frame from `port` (VLAN `vlan`); true when taken
  /// (applied, or refused and counted). IPv6 that is not MLD is not taken.
  bool handle(uint16_t port, uint16_t vlan, std::span<const uint8_t> frame, Millis now);
  /// An IGMP/MLD frame decapsulated from bridge domain `vni`, sent by the
  /// remote VTEP `vtep`, received on `port`; true when taken (the VNI
  /// snoops).
  bool handle_overlay(uint16_t port, uint32_t vni, const IpAddress& vtep, std::span<const uint8_t> inner, Millis now);
  /// Timers and queries; true when the routes changed (a new table version is due).
  bool tick(Millis now);
  /// Right after frames were handled: the edge's reports of what changed go
  /// out, and the routes are rebuilt when they changed (true: publish now).
  bool flush(Millis now);
  /// True when `port`/`vlan` is an attachment of a snooping domain.
  bool snoops(uint16_t port, uint16_t vlan) const;

  /// The routes of every domain, for the next table version.
  std::shared_ptr<const dataplane::OverlayMulticast> tables() const { return tables_; }

  nlohmann::json groups_json(uint8_t family, std::optional<uint32_t> vni, Millis now) const;
  nlohmann::json querier_json(Millis now) const;
  nlohmann::json routes_json(Millis now) const;
  /// What a slot counted since it was assigned (a route's: where its last frame came in too).
  dataplane::MulticastRouteCounters::Totals counted(const CountedSlot& c) const {
    if (c.slot == dataplane::MulticastRouteCounters::kNoSlot) return {};
    auto t = counters_->sum(c.slot);
    t.packets -= c.packets;
    t.bytes -= c.bytes;
    return t;
  }
  const std::vector<SnoopedDomain>& domains() const { return domains_; }
  uint64_t refused(DecodeStatus s) const { return refused_[static_cast<size_t>(s)]; }
  /// Tests: every incremental rebuild is compared with a whole one from the
  /// same state (routes, admission, egress use, refusals); a difference is
  /// counted and logged, and the incremental's result kept.
  void verify_incremental(bool on) { verify_incremental_ = on; }
  uint64_t incremental_checks() const { return incremental_checks_; }
  uint64_t incremental_mismatches() const { return incremental_mismatches_; }

 private:
  Attachment* find(uint16_t port, uint16_t vlan, SnoopedDomain** domain = nullptr);
  void apply_overlay(SnoopedDomain& d, SnoopedDomain* before, bool protocol_changed,
                     const config::BridgeDomainConfig& bd, const std::vector<SnoopPort>& ports, Millis now);
  void apply_statics(SnoopedDomain& d, const std::vector<SnoopPort>& ports);
  void send_queries(Attachment& a, const RouterOutput& out);
  void send_overlay_queries(const SnoopedDomain& d, const RemoteEdge& e, const RouterOutput& out);
  /// The edge role's reports: the merged interest when it changed, then
  /// what the proxy hosts have due.
  void report_into_overlay(SnoopedDomain& d, Millis now);
  void send_reports(const SnoopedDomain& d, uint8_t family, const HostOutput& out, Millis now);
  /// The ingress role's upstream proxies on router-port attachments.
  void report_upstream(SnoopedDomain& d, Millis now);
  /// A config change ended the proxying on `a` (its attachment, bridge
  /// domain or ingress role is gone, or it is no longer the configured
  /// upstream): each proxy (of family index `only_fi` when not -1) leaves
  /// every group it reported, so that the production router stops
  /// forwarding now rather than at its membership timeout, and goes.
  void end_upstream(const SnoopedDomain& d, Attachment& a, Millis now, int only_fi = -1);
  /// An upstream proxy's reports, out of its attachment.
  void send_upstream(const SnoopedDomain& d, const Attachment& a, uint8_t family, const HostOutput& out);
  void send_overlay(const SnoopedDomain& d, const IpAddress& vtep, std::span<const uint8_t> frame);
  /// An IGMP/MLD frame from the overlay to the domain's attachments.
  void relay_overlay(const SnoopedDomain& d, std::span<const uint8_t> frame, RelayTo to, uint8_t family);
  /// One from attachment `from` to the domain's others.
  void relay(const SnoopedDomain& d, const Attachment& from, std::span<const uint8_t> frame, RelayTo to,
             uint8_t family);
  /// A router's changed groups are redone at the next rebuild; true when there are any.
  bool note_changes(SnoopedDomain& d, const RouterOutput& out);
  void rebuild();
  /// A domain's routes and admission: all of them into an empty `out`, or
  /// (`only`, sorted by group_less) just those groups' into the last table's.
  void build_domain(SnoopedDomain& d, dataplane::MulticastBridgeDomain& out, Millis now,
                    const std::vector<dataplane::MulticastKey>* only);
  /// Route records follow the routes of a rebuild (those of `only`'s groups
  /// when set): new ones get a slot, gone ones give theirs back, egresses
  /// join and leave.
  void record_routes(SnoopedDomain& d, dataplane::MulticastBridgeDomain& out, Millis now,
                     const std::vector<dataplane::MulticastKey>* only);
  /// verify_incremental: a domain's admission and route records as a rebuild found them.
  struct Snapshot;
  /// verify_incremental: `bd`, just rebuilt for `d`'s changed groups, against
  /// a whole rebuild from the same state (`before`); `d` keeps the incremental's.
  void verify(SnoopedDomain& d, const dataplane::MulticastBridgeDomain& bd, const Snapshot& before);
  bool assign(CountedSlot& c, Millis now);
  uint32_t egress_slot(RouteRecord::Egress& e, uint64_t generation, Millis now);
  /// Gives a slot back (the record holding it is going).
  void release(const CountedSlot& c, Millis now);
  void release(const RouteRecord& rec, Millis now);
  void sample_rates(Millis now);

  SnoopingIo io_;
  std::vector<SnoopedDomain> domains_;
  std::shared_ptr<const dataplane::OverlayMulticast> tables_ = std::make_shared<dataplane::OverlayMulticast>();
  bool dirty_ = false;
  Millis last_now_ = 0;
  std::shared_ptr<dataplane::MulticastRouteCounters> counters_;
  uint32_t next_slot_ = 0;
  /// Slots given back, oldest first, reused only kSlotGraceMs later: a worker
  /// may still be counting into one through a table version that named it.
  static constexpr Millis kSlotGraceMs = 5000;
  std::deque<std::pair<uint32_t, Millis>> free_slots_;
  uint64_t record_generation_ = 0;
  Millis last_sample_ = 0;
  std::array<uint64_t, 16> refused_{};
  bool verify_incremental_ = false;
  uint64_t incremental_checks_ = 0, incremental_mismatches_ = 0;
  struct RebuildScratch;
  std::unique_ptr<RebuildScratch> scratch_;
};

/// A route key's group, and its source as views write it ("*" for (*,G)).
IpAddress key_group(const dataplane::MulticastKey& k);
bool key_any_source(const dataplane::MulticastKey& k);
std::string key_source(const dataplane::MulticastKey& k);

/// `routes` with each route's remote VTEPs as the overlay module's slots
/// (`remotes`, and their counter slots in `remote_slots`); a VTEP without a
/// slot is left out.
std::shared_ptr<const dataplane::OverlayMulticast> with_overlay_slots(const dataplane::OverlayMulticast& routes,
                                                                      const dataplane::OverlayVtepSlots* slots);

/// A router's settings from a bridge domain's config.
RouterConfig router_config(const config::MulticastBridgeDomain& b, uint8_t family, const IpAddress& address);

}  // namespace meridian::mcast
