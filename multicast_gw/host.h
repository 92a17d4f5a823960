// The host side of IGMPv3 (RFC 3376 §3, §5, §7.2) and MLDv2 (RFC 3810 §4,
// §6, §8.2) on one interface, as an IGMP/MLD proxy's upstream interface
// (RFC 4605): the memberships of the downstream links are merged into one
// interest per group (§3.2 rules), and changes to it leave as state-change
// reports, retransmitted [Robustness Variable] times; queries are answered
// with current-state reports after a random delay within their Max Response
// Time; an older querier switches the interface to IGMPv1/v2 (MLDv1) joins
// and leaves. Pure logic on the caller's clock, like router.h.
//
// Meridian uses it twice: an edge gateway reports its receivers' merged
// membership into the overlay toward the ingress; an ingress gateway reports
// the overlay's merged membership on its production-side port, so the
// production network's multicast router builds the tree toward it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <vector>

#include "multicast_gw/router.h"

namespace meridian::mcast {

/// What an interface wants of a group. INCLUDE({}) is "nothing" and is not stored.
struct Subscription {
  FilterMode mode = FilterMode::kInclude;
  std::vector<IpAddress> sources;  // sorted, unique
  bool operator==(const Subscription&) const = default;
};
using Interest = std::map<IpAddress, Subscription>;

/// RFC 3376 §3.2 merge of one more membership into `into`: EXCLUDE wins,
/// with the intersection of the exclude lists less every included source;
/// otherwise INCLUDE with the union.
void merge_subscription(Subscription& into, const Subscription& more);
/// A downstream link's router state as subscriptions (RFC 4605 §4.1):
/// INCLUDE(A) → INCLUDE(A), EXCLUDE(X, Y) → EXCLUDE(Y).
Interest interest_of(const MembershipRouter& downstream, Millis now);
/// The same for a link's groups held as a router would hold them.
Interest interest_of(const std::map<IpAddress, GroupState>& groups, Millis now);
/// One group's: none for INCLUDE({}).
std::optional<Subscription> subscription_of(const GroupState& gs, Millis now);
/// The merge over every downstream link.
Interest merge_interest(std::span<const MembershipRouter* const> downstream, Millis now);
Interest merge_interest(std::span<const std::map<IpAddress, GroupState>* const> downstream, Millis now);
/// The same for `groups` only (a lookup per link and group, not a pass over every membership).
Interest merge_interest(std::span<const std::map<IpAddress, GroupState>* const> downstream,
                        std::span<const IpAddress> groups, Millis now);

struct HostConfig {
  uint8_t family = 4;
  uint8_t version = 0;                        // newest spoken (0: IGMPv3 / MLDv2)
  uint8_t robustness = 2;
  uint32_t unsolicited_report_interval_ms = 1000;  // RFC 3376 §8.11 (v3), RFC 3810 §9.11
  uint32_t query_interval_ms = 125'000;       // for the Older Version Querier Present Interval
  uint8_t newest_version() const { return family == 4 ? 3 : 2; }
  uint8_t speaks() const { return version ? version : newest_version(); }
};

/// Messages to send: v3/MLDv2 records (one report, split by the encoder),
/// and older-version joins and leaves.
struct HostOutput {
  std::vector<GroupRecord> records;
  struct Older {
    IpAddress group;
    MessageKind kind;  // kJoin or kLeave
    uint8_t version;
    bool operator==(const Older&) const = default;
  };
  std::vector<Older> older;
  bool empty() const { return records.empty() && older.empty(); }
};

class MembershipHost {
 public:
  MembershipHost(HostConfig cfg, uint64_t seed);

  /// The interest changed (or not): state-change reports go out at once.
  void set_interest(const Interest& wanted, Millis now, HostOutput& out);
  /// The same for `groups` only (sorted, unique): each becomes what `wanted` holds of it, or nothing.
  void set_interest(const Interest& wanted, std::span<const IpAddress> groups, Millis now, HostOutput& out);
  /// A query heard on the interface: schedules the answer (§5.2) and tracks
  /// older queriers (§7.2.1).
  void on_query(const Membership& q, Millis now);
  /// Retransmissions and query answers that are due.
  void tick(Millis now, HostOutput& out);
  Millis next_deadline() const;
  /// New settings (a config change): the interest and what is pending stay;
  /// what is sent from now on follows them.
  void reconfigure(const HostConfig& cfg) { cfg_ = cfg; }

  const Interest& state() const { return state_; }
  /// IGMPv1/v2 or MLDv1 while an older querier was heard recently.
  uint8_t compatibility(Millis now) const;
  uint64_t reports_sent() const { return reports_sent_; }

 private:
  struct Pending {
    uint8_t filter_changes = 0;               // TO_IN/TO_EX retransmissions left
    std::map<IpAddress, uint8_t> allow, block;  // per-source retransmissions left
    Millis next = 0;
    bool answer = false;                      // a group(-and-source) query to answer
    std::vector<IpAddress> answer_sources;    // empty: the whole group
    Millis answer_at = 0;
  };
  void state_change(const IpAddress& g, const Subscription* before, const Subscription* after, Millis now,
                    HostOutput& out);
  void send_changes(const IpAddress& g, Pending& p, HostOutput& out);
  void current_state(const IpAddress& g, const std::vector<IpAddress>& only, HostOutput& out) const;
  void older_change(const IpAddress& g, bool joined, Millis now, HostOutput& out);
  Millis random_delay(uint32_t max_ms);

  HostConfig cfg_;
  std::mt19937_64 rng_;
  Interest state_;
  std::map<IpAddress, Pending> pending_;
  Millis general_answer_at_ = 0;  // 0: none pending
  Millis v1_querier_until_ = 0, v2_querier_until_ = 0;
  uint64_t reports_sent_ = 0;
};

}  // namespace meridian::mcast
