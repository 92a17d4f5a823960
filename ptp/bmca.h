// The best master clock algorithm: the data set comparison and the state
// decision of IEEE 1588-2019 §9.3, and the alternate BMCA of ITU-T
// G.8275.1/G.8275.2 (no priority1; localPriority after priority2; the
// grandmaster identity only breaks ties between clocks of class > 127).
// Plus the foreign master table with its qualification rule (§9.3.2.5).
// Pure logic on simulated or real time in nanoseconds.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "ptp/message.h"

namespace meridian::ptp {

enum class BmcaKind : uint8_t { kDefault, kTelecom };

/// What one clock offers in a comparison: from an Announce (§9.3.4) or from
/// the local defaultDS (D0: stepsRemoved 0, sender = receiver = own port 0).
struct ComparableDataSet {
  uint8_t priority1 = 128;
  ClockQuality quality;
  uint8_t priority2 = 128;
  ClockIdentity gm_identity{};
  uint16_t steps_removed = 0;
  PortIdentity sender;    // the port that sent the Announce
  PortIdentity receiver;  // our port that received it
  uint8_t local_priority = 128;  // G.8275.x: of the receiving port (or the clock, for D0)
};

enum class Ordering : uint8_t { kABetter, kABetterByTopology, kBBetter, kBBetterByTopology, kSame };
/// True for kABetter and kABetterByTopology.
inline bool a_wins(Ordering o) { return o == Ordering::kABetter || o == Ordering::kABetterByTopology; }

Ordering compare(BmcaKind kind, const ComparableDataSet& a, const ComparableDataSet& b);

ComparableDataSet from_announce(const Message& announce, const PortIdentity& receiver, uint8_t local_priority);
ComparableDataSet from_default(const DefaultDataSet& d0, uint8_t local_priority);

/// The state decision's outcome for one port (§9.3.3 Figure 33).
enum class Decision : uint8_t { kNone, kM1, kM2, kM3, kP1, kP2, kS1, kListening };
const char* decision_name(Decision d);

struct DecisionInput {
  BmcaKind kind = BmcaKind::kDefault;
  ComparableDataSet d0;
  const ComparableDataSet* ebest = nullptr;   // best over all ports
  bool ebest_on_this_port = false;
  const ComparableDataSet* erbest = nullptr;  // best on this port
  PortState state = PortState::kListening;
  bool slave_only = false;   // never master: S1 toward the best master, LISTENING elsewhere
};
Decision decide(const DecisionInput& in);

/// Foreign masters heard on one port. A sender is qualified once it has sent
/// `threshold` Announces within `window` (FOREIGN_MASTER_THRESHOLD = 2 in
/// FOREIGN_MASTER_TIME_WINDOW = 4 announce intervals), and drops out when it
/// has been silent for the announce receipt timeout.
class ForeignMasters {
 public:
  struct Record {
    PortIdentity sender;
    Message announce;              // the newest
    std::vector<int64_t> arrivals; // within the window, oldest first
  };

  /// Senders are peers: the table is bounded. A new sender beyond
  /// kMaxRecords replaces the one heard from least recently (counted), and
  /// each keeps only its last kMaxArrivals arrival times, more than any
  /// qualification threshold needs.
  static constexpr size_t kMaxRecords = 16;
  static constexpr size_t kMaxArrivals = 8;

  /// Records an Announce. Announces from our own clock and those with
  /// stepsRemoved >= 255 are refused (false).
  bool add(const Message& announce, const ClockIdentity& own, int64_t now_ns, int64_t window_ns);
  /// Drops senders silent for `timeout_ns`; true when any was dropped.
  bool expire(int64_t now_ns, int64_t timeout_ns);
  /// The best qualified record, or nullptr.
  const Record* best(BmcaKind kind, const PortIdentity& receiver, uint8_t local_priority, uint32_t threshold,
                     int64_t now_ns, int64_t window_ns) const;
  const std::vector<Record>& records() const { return records_; }
  void clear() { records_.clear(); }
  /// Records replaced because the table was full.
  uint64_t evicted() const { return evicted_; }

 private:
  std::vector<Record> records_;
  uint64_t evicted_ = 0;
};

}  // namespace meridian::ptp
