// The router side of IGMPv3 (RFC 3376 §6, RFC 9776) and MLDv2 (RFC 3810 §7)
// on one link: per group the filter mode, group timer and source records
// (the §6.4 state tables), compatibility with older hosts (§7.3.2), the
// querier election and its general and specific queries (§6.6), and the
// SSM rules of RFC 4604. Pure logic on the caller's clock (milliseconds):
// the control lcore drives it with real time, the tests with simulated time.
//
// One MembershipRouter serves one link: an access port of a bridge domain,
// or, at an ingress gateway, the overlay of a bridge domain, where the
// "hosts" are the edge gateways that proxy their receivers' memberships.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/net_types.h"
#include "multicast_gw/wire.h"

namespace meridian::mcast {

using Millis = int64_t;

/// RFC 3376 §8 / RFC 3810 §9 variables; the derived intervals follow them.
struct ProtocolTimers {
  uint8_t robustness = 2;
  uint32_t query_interval_ms = 125'000;
  uint32_t query_response_interval_ms = 10'000;
  uint32_t last_member_query_interval_ms = 1'000;
  uint8_t last_member_query_count = 2;
  uint32_t startup_query_interval_ms = 0;  // 0: a quarter of the query interval
  uint8_t startup_query_count = 0;         // 0: the robustness variable

  Millis group_membership_interval() const {
    return Millis{robustness} * query_interval_ms + query_response_interval_ms;
  }
  Millis other_querier_present_interval() const {
    return Millis{robustness} * query_interval_ms + query_response_interval_ms / 2;
  }
  Millis last_member_query_time() const { return Millis{last_member_query_interval_ms} * last_member_query_count; }
  Millis older_host_present_interval() const { return group_membership_interval(); }
  Millis startup_interval() const {
    return startup_query_interval_ms ? startup_query_interval_ms : query_interval_ms / 4;
  }
  uint8_t startup_count() const { return startup_query_count ? startup_query_count : robustness; }
};

/// An SSM range (RFC 4607): a prefix, or for IPv6 "ff3x::/32", every scope.
struct SsmRange {
  config::IpPrefix prefix;
  bool any_scope = false;  // IPv6: the scope nibble (bits 12-15) is not compared
  bool operator==(const SsmRange&) const = default;
  bool contains(const IpAddress& group) const;
};
std::optional<SsmRange> parse_ssm_range(const std::string& text);
std::string to_string(const SsmRange& r);
/// 232.0.0.0/8 and ff3x::/32.
std::vector<SsmRange> default_ssm_ranges();

struct RouterConfig {
  uint8_t family = 4;              // 4: IGMP, 6: MLD
  uint8_t version = 0;             // the version spoken: IGMP 1..3, MLD 1..2 (0: the newest)
  ProtocolTimers timers;
  bool querier = true;             // takes part in the election and queries when it wins
  IpAddress address;               // our query source (IPv4, may be 0.0.0.0; IPv6 link-local)
  /// Explicit host tracking: the last tracked host's leave ends the group
  /// (or source) at once, without specific queries. Only for groups whose
  /// hosts all speak the newest version (older hosts suppress each other's
  /// reports, so some would go untracked) and only for reporters with an address.
  bool fast_leave = false;
  size_t max_groups = 0;           // 0: no limit
  size_t max_sources = 0;          // per group; 0: no limit
  size_t max_hosts = 1024;         // tracked hosts per group (fast leave)
  size_t mtu = 1500;               // IP MTU: a group-and-source query is split to fit
  std::vector<SsmRange> ssm_ranges;  // RFC 4604: no (*,G) state in these
  uint8_t newest_version() const { return family == 4 ? 3 : 2; }
  uint8_t speaks() const { return version ? version : newest_version(); }
};

enum class FilterMode : uint8_t { kInclude, kExclude };

struct SourceRecord {
  Millis expires = 0;        // running while > now; EXCLUDE mode keeps expired ones (the Y list)
  uint8_t queries_left = 0;  // pending Q(G,S) retransmissions
};

/// A host's own view of a group, for explicit tracking (fast leave).
struct HostRecord {
  FilterMode mode = FilterMode::kInclude;
  std::vector<IpAddress> sources;  // sorted
  Millis expires = 0;
};

struct GroupState {
  FilterMode mode = FilterMode::kInclude;
  Millis group_timer = 0;  // EXCLUDE mode only
  std::map<IpAddress, SourceRecord> sources;
  Millis v1_host_until = 0, v2_host_until = 0;  // older-version host present timers
  uint8_t group_queries_left = 0;               // pending Q(G) retransmissions
  Millis next_query = 0;                        // when the next specific query goes out (0: none)
  Millis created = 0;
  std::map<IpAddress, HostRecord> hosts;        // reporters tracked for fast leave
  bool untracked = false;                       // a reporter did not fit: fast leave is off for the group

  /// The version of the oldest host present (RFC 3376 §7.3.2); `newest` when none.
  uint8_t compatibility(Millis now, uint8_t family, uint8_t newest) const;
  /// RFC 3376 §6.3: would traffic from `source` be forwarded onto the link?
  bool wants(const IpAddress& source, Millis now) const;
  /// True when the group wants every source but those excluded (a (*,G) entry).
  bool any_source() const { return mode == FilterMode::kExclude; }
};

/// Why a record or message was not applied.
#define MERIDIAN_MCAST_IGNORES(X)                                                                    \
  X(kSsmExclude, "ssm_exclude", "an EXCLUDE record or older-version join for an SSM group")           \
  X(kCompatibility, "compatibility", "a record the group's older-host compatibility mode ignores")    \
  X(kGroupLimit, "group_limit", "a new group beyond the link's group limit")                          \
  X(kSourceLimit, "source_limit", "sources beyond the group's source limit")                          \
  X(kWrongFamily, "wrong_family", "an IGMP message on an MLD router or the other way round")          \
  X(kLinkLocalGroup, "link_local_group", "a report for a link-local group (224.0.0.x, ff02::/16)")   \
  X(kHostLimit, "host_limit", "a reporter beyond the group's tracked-host limit (fast leave falls back to queries)") \
  X(kBadSource, "bad_source", "a record source that no packet can come from (unspecified, multicast, loopback): left out")

enum class Ignore : uint8_t {
#define X(id, name, help) id,
  MERIDIAN_MCAST_IGNORES(X)
#undef X
      kCount
};
std::string_view ignore_name(Ignore i);

struct RouterCounters {
  uint64_t reports = 0, records = 0, joins = 0, leaves = 0;
  uint64_t queries_received = 0, queries_sent = 0;
  uint64_t queries_withheld = 0;  // produced but not sent (the caller's choice: see withheld())
  uint64_t ignored[static_cast<size_t>(Ignore::kCount)] = {};
};

/// What one call asks of its caller.
struct RouterOutput {
  std::vector<Query> queries;       // to send now, in the router's version
  std::vector<IpAddress> changed;   // groups whose forwarding changed (added, removed, sources)
  void note_change(const IpAddress& g) {
    if (changed.empty() || changed.back() != g) changed.push_back(g);
  }
};

class MembershipRouter {
 public:
  explicit MembershipRouter(RouterConfig cfg, Millis now);

  /// A report, join or leave from `host`.
  void on_membership(const Membership& m, const IpAddress& host, Millis now, RouterOutput& out);
  /// A query from `from` (another router, or our own looped back: ignored).
  void on_query(const Membership& m, const IpAddress& from, Millis now, RouterOutput& out);
  /// Timers: expiries, retransmissions, general queries. Call at or after next_deadline().
  void tick(Millis now, RouterOutput& out);
  Millis next_deadline() const;
  /// New settings for a running router (a config change): its memberships
  /// stay, so receivers keep their streams. Running timers keep their
  /// deadlines and new ones use the new values; the querier role follows
  /// `querier` and the election with the new address; a group now in an
  /// SSM range loses its any-source (EXCLUDE) state at once (RFC 4604 §2.2.1);
  /// groups or sources beyond a lowered limit stay until they expire.
  /// `out.changed` names the groups whose forwarding changed.
  void reconfigure(RouterConfig cfg, Millis now, RouterOutput& out);

  const std::map<IpAddress, GroupState>& groups() const { return groups_; }
  const GroupState* group(const IpAddress& g) const;
  /// One query of the last output was not sent (toward a router we are a
  /// proxy host of): counted as withheld, not as sent.
  void withheld() {
    if (!counters_.queries_sent) return;  // none produced: nothing to take back
    --counters_.queries_sent;
    ++counters_.queries_withheld;
  }
  bool is_querier() const { return querier_; }
  std::optional<IpAddress> other_querier() const { return querier_ ? std::nullopt : std::optional(other_querier_); }
  Millis other_querier_expires() const { return other_querier_until_; }
  const ProtocolTimers& timers() const { return timers_; }  // effective (QRV/QQI adopted from the querier)
  const RouterConfig& config() const { return cfg_; }
  const RouterCounters& counters() const { return counters_; }

 private:
  GroupState* find_or_create(const IpAddress& g, Millis now, RouterOutput& out);
  void apply_record(const GroupRecord& r, const IpAddress& host, uint8_t version, Millis now, RouterOutput& out);
  bool track_host(GroupState& gs, const GroupRecord& r, const IpAddress& host, Millis now);
  void fast_leave(GroupState& gs, const std::vector<IpAddress>& queried, bool query_g, Millis now);
  void query_group(GroupState& gs, Millis now);
  void query_sources(GroupState& gs, const std::vector<IpAddress>& sources, Millis now);
  void send_specific(const IpAddress& g, GroupState& gs, Millis now, RouterOutput& out);
  bool expire(const IpAddress& g, Millis now, RouterOutput& out);  // true: group gone
  void stop_querying();
  Query general_query() const;
  bool in_ssm(const IpAddress& g) const;

  RouterConfig cfg_;
  ProtocolTimers timers_;
  // What the querier heard advertised (QRV, QQIC; 0 when it did not): a
  // non-querier's timers use these over ours (§4.1.6-7).
  uint8_t heard_robustness_ = 0;
  uint32_t heard_interval_ms_ = 0;
  std::map<IpAddress, GroupState> groups_;
  bool querier_ = false;
  IpAddress other_querier_;
  Millis other_querier_until_ = 0;
  Millis next_general_ = 0;
  Millis last_tick_ = 0;  // timers that ran out since then are news
  uint8_t startup_left_ = 0;
  RouterCounters counters_;
};

}  // namespace meridian::mcast
