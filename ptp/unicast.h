// Unicast negotiation, server side (IEEE 1588-2019 §16.1): clients ask by
// Signaling for Announce, Sync and Delay_Resp at a rate for a duration; the
// server grants (or denies with duration 0), serves every grant at its
// rate until it expires or is cancelled, and acknowledges cancellations.
// Pure logic: the instance builds and sends the messages this schedules.
//
// Scheduling is a min-heap of (due time, client, message kind) with lazy
// deletion: a renewed or cancelled grant bumps its generation, and stale
// heap entries are skipped when they surface. One poll costs O(due log n),
// so a server with 100k clients at 1 Hz spends its time building messages,
// not finding them (ptp/bench/ptp_unicast_bench.cc).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <optional>
#include <queue>
#include <unordered_map>
#include <vector>

#include "ptp/message.h"
#include "ptp/peer.h"

namespace meridian::ptp {

struct UnicastPolicy {
  uint32_t max_clients = 250'000;
  int8_t min_log_announce = -3;   // fastest rates granted
  int8_t min_log_sync = -7;
  int8_t min_log_delay_resp = -7;
  int8_t max_log_announce = 4;    // slowest rates granted (2^4 = 16 s, as the config's interval ranges)
  int8_t max_log_sync = 4;
  int8_t max_log_delay_resp = 4;
  uint32_t max_duration_s = 300;
  /// Announce and Sync messages a second (a Sync counts twice: its
  /// Follow_Up) that all live grants together may commit the clock to; a
  /// grant beyond it is denied. Clients times rates is peer-controlled work.
  double max_messages_per_second = 1'000'000;
};

/// Why a REQUEST_UNICAST_TRANSMISSION was denied (GRANT with duration 0).
#define MERIDIAN_PTP_UNICAST_DENIALS(X)                                                        \
  X(kNotNegotiable, "not_negotiable", "a message type other than Announce, Sync or Delay_Resp") \
  X(kRateTooFast, "rate_too_fast", "logInterMessagePeriod below the fastest rate granted")      \
  X(kRateTooSlow, "rate_too_slow", "logInterMessagePeriod above the slowest rate granted (2^4 s)") \
  X(kZeroDuration, "zero_duration", "durationField 0")                                         \
  X(kServerFull, "server_full", "no room for another client (max_clients)")                \
  X(kRateBudget, "rate_budget", "granting it would pass max_messages_per_second for all clients") \
  X(kTooManyTlvs, "too_many_tlvs", "TLVs beyond the 8th of one Signaling message, not answered")

enum class UnicastDenial : uint8_t {
#define MERIDIAN_PTP_DENIAL_ENUM(e, n, d) e,
  MERIDIAN_PTP_UNICAST_DENIALS(MERIDIAN_PTP_DENIAL_ENUM)
#undef MERIDIAN_PTP_DENIAL_ENUM
  kCount
};
const char* unicast_denial_name(UnicastDenial d);

enum class UnicastKind : uint8_t { kAnnounce = 0, kSync = 1, kDelayResp = 2 };

struct UnicastGrant {
  bool active = false;
  int8_t log_period = 0;
  int64_t expires = 0;       // base ns
  uint32_t generation = 0;   // bumped on every (re)grant or cancel
  uint16_t sequence = 0;     // of the messages sent under it
};

struct UnicastClient {
  PeerAddress address;
  PortIdentity identity;
  uint16_t port = 1;
  std::array<UnicastGrant, 3> grants;  // by UnicastKind
};

class UnicastServer {
 public:
  explicit UnicastServer(const UnicastPolicy& policy = {}) : policy_(policy) {}

  /// A Signaling message from `from` on `port`. Returns the reply to send
  /// back (GRANTs and ACKNOWLEDGE_CANCELs, one per request TLV), or nothing
  /// when the message carried no negotiation TLV.
  std::optional<Message> on_signaling(uint16_t port, const Message& m, const PeerAddress& from, int64_t now);
  /// Messages due by `now`: calls `due(client index, kind)` for each and
  /// schedules the next one at the grant's period.
  template <class Due>
  void poll(int64_t now, Due&& due);
  /// True when `from` holds a live Delay_Resp grant.
  bool delay_resp_granted(const PeerAddress& from, int64_t now) const;

  size_t active_clients(int64_t now) const;
  /// Client slots in use, live or expired but not yet reclaimed.
  size_t size() const { return clients_.size(); }
  UnicastClient& client(size_t i) { return clients_[i]; }
  const UnicastClient& client(size_t i) const { return clients_[i]; }
  uint64_t denied() const;
  uint64_t denied(UnicastDenial why) const { return denials_[static_cast<size_t>(why)]; }
  /// Slots of clients whose grants had all lapsed, handed to new clients.
  uint64_t reclaimed() const { return reclaimed_; }
  /// Announce and Sync messages a second the active grants commit to.
  double load() const { return load_; }

 private:
  struct Entry {
    int64_t due;
    uint32_t client;
    uint32_t generation;
    UnicastKind kind;
    bool operator>(const Entry& o) const { return due > o.due; }
  };
  struct AddressHash {
    size_t operator()(const PeerAddress& a) const;
  };
  int8_t min_log(UnicastKind k) const;
  int8_t max_log(UnicastKind k) const;
  /// A slot for a new client: a fresh one below max_clients, else one whose
  /// grants have all lapsed (found by a bounded scan from a cursor, so a
  /// full server costs a request at most kReclaimScan checks).
  std::optional<uint32_t> new_slot(int64_t now);
  bool live(const UnicastClient& c, int64_t now) const;
  /// Messages a second a grant commits the clock to (0 for Delay_Resp,
  /// which is answered per request).
  static double load_of(UnicastKind k, int8_t log_period);
  /// Ends a grant, returning its load to the budget.
  void end_grant(UnicastGrant& g, UnicastKind k);

  static constexpr size_t kReclaimScan = 1024;
  /// Negotiation TLVs answered per Signaling message: three kinds and their
  /// cancels need fewer; more would not fit the reply frame.
  static constexpr size_t kMaxTlvsPerMessage = 8;
  UnicastPolicy policy_;
  std::vector<UnicastClient> clients_;
  std::unordered_map<PeerAddress, uint32_t, AddressHash> index_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_;
  std::array<uint64_t, static_cast<size_t>(UnicastDenial::kCount)> denials_{};
  uint64_t reclaimed_ = 0;
  size_t reclaim_cursor_ = 0;
  double load_ = 0;  // messages a second of the active Announce and Sync grants
};

/// What a unicast client asks each master for (G.8275.2 and ptp4l's
/// unicast_master_table): Announce from every master in its table, to run
/// the BMCA over them; Sync and Delay_Resp from the one it selected.
struct UnicastRequestPolicy {
  int8_t log_announce = 0;
  int8_t log_sync = 0;
  int8_t log_delay_resp = 0;
  uint32_t duration_s = 300;      // asked for each grant
  int8_t log_query_interval = 0;  // retry period: no answer, or denied
};

/// Unicast negotiation, client side (IEEE 1588-2019 §16.1). Pure logic: the
/// instance sends the Signaling messages this returns and feeds back what
/// the masters answer.
/// - Each master in the table is asked for Announce; the selected master
///   also for Sync and Delay_Resp.
/// - A request left unanswered, or denied (duration 0), is repeated every
///   2^log_query_interval s.
/// - A grant is renewed when half its duration has passed, so one lost
///   renewal still leaves time for the next; an expired grant is asked for
///   again.
/// - Selecting another master cancels Sync and Delay_Resp at the old one.
/// - A master's CANCEL is acknowledged; the grant is asked for again a
///   query interval later while it is still wanted.
class UnicastRequester {
 public:
  struct Grant {
    bool requested = false;      // a request is out, not yet answered
    bool granted = false;
    int8_t log_period = 0;
    int64_t expires = 0;         // base ns
    int64_t next_action = 0;     // when to (re)ask or renew
  };
  struct Master {
    PeerAddress address;
    std::array<Grant, 3> grants;  // by UnicastKind
  };
  /// One Signaling message for `master`, carrying `tlvs`.
  struct Outgoing {
    size_t master = 0;
    std::vector<UnicastTlv> tlvs;
  };

  UnicastRequester(std::vector<PeerAddress> masters, const UnicastRequestPolicy& policy);

  /// Requests, renewals and cancels due by `now`, one message per master.
  std::vector<Outgoing> poll(int64_t now);
  /// A Signaling message from `from`. Returns the acknowledgements owed
  /// (for the master's CANCELs), if any.
  std::optional<Outgoing> on_signaling(const Message& m, const PeerAddress& from, int64_t now);
  /// The master to take Sync and Delay_Resp from (the BMCA's choice), or
  /// none. Cancels at the previous one go out at the next poll.
  void select(std::optional<size_t> master, int64_t now);

  std::optional<size_t> index_of(const PeerAddress& a) const;
  bool granted(size_t master, UnicastKind kind, int64_t now) const;
  const std::vector<Master>& masters() const { return masters_; }
  std::optional<size_t> selected() const { return selected_; }
  uint64_t denials() const { return denials_; }

 private:
  bool wanted(size_t master, UnicastKind kind) const;
  int8_t log_period(UnicastKind kind) const;
  int64_t query_interval() const;

  std::vector<Master> masters_;
  UnicastRequestPolicy policy_;
  std::optional<size_t> selected_;
  std::vector<std::pair<size_t, UnicastKind>> cancels_;  // owed to a deselected master
  uint64_t denials_ = 0;
};

template <class Due>
void UnicastServer::poll(int64_t now, Due&& due) {
  while (!heap_.empty() && heap_.top().due <= now) {
    Entry e = heap_.top();
    heap_.pop();
    UnicastGrant& g = clients_[e.client].grants[static_cast<size_t>(e.kind)];
    if (!g.active || g.generation != e.generation) continue;  // renewed or cancelled since
    if (now >= g.expires) {
      end_grant(g, e.kind);
      continue;
    }
    due(e.client, e.kind);
    // Granted periods are bounded by policy; the clamp in log_interval_ns
    // also keeps a corrupted one from overflowing. Either way the next due
    // time is after `now`, so the loop ends.
    const int64_t period = log_interval_ns(g.log_period);
    e.due = e.due + period <= now ? now + period : e.due + period;
    heap_.push(e);
  }
}

}  // namespace meridian::ptp
