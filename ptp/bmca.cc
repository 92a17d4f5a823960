#include "ptp/bmca.h"

#include <algorithm>
#include <cstdint>

namespace meridian::ptp {
namespace {

int compare_ports(const PortIdentity& a, const PortIdentity& b) {
  if (a.clock != b.clock) return a.clock < b.clock ? -1 : 1;
  if (a.port != b.port) return a.port < b.port ? -1 : 1;
  return 0;
}

// §9.3.4 Figure 36: the same grandmaster seen over two paths.
Ordering compare_topology(const ComparableDataSet& a, const ComparableDataSet& b) {
  const unsigned sa = a.steps_removed, sb = b.steps_removed;
  if (sa + 1 < sb) return Ordering::kABetter;
  if (sb + 1 < sa) return Ordering::kBBetter;
  if (sa < sb) {
    const int d = compare_ports(b.receiver, b.sender);
    if (d < 0) return Ordering::kABetter;
    if (d > 0) return Ordering::kABetterByTopology;
    return Ordering::kSame;  // error-1: B's Announce came from our own port
  }
  if (sa > sb) {
    const int d = compare_ports(a.receiver, a.sender);
    if (d < 0) return Ordering::kBBetter;
    if (d > 0) return Ordering::kBBetterByTopology;
    return Ordering::kSame;
  }
  const int senders = compare_ports(a.sender, b.sender);
  if (senders != 0) return senders < 0 ? Ordering::kABetterByTopology : Ordering::kBBetterByTopology;
  if (a.receiver.port != b.receiver.port)
    return a.receiver.port < b.receiver.port ? Ordering::kABetterByTopology : Ordering::kBBetterByTopology;
  return Ordering::kSame;  // error-2: the same message twice
}

template <typename T>
std::optional<Ordering> lower_wins(T a, T b) {
  if (a < b) return Ordering::kABetter;
  if (b < a) return Ordering::kBBetter;
  return std::nullopt;
}

}  // namespace

Ordering compare(BmcaKind kind, const ComparableDataSet& a, const ComparableDataSet& b) {
  if (kind == BmcaKind::kDefault) {
    if (a.gm_identity == b.gm_identity) return compare_topology(a, b);
    if (auto o = lower_wins(a.priority1, b.priority1)) return *o;
  }
  if (auto o = lower_wins(a.quality.clock_class, b.quality.clock_class)) return *o;
  if (auto o = lower_wins(a.quality.clock_accuracy, b.quality.clock_accuracy)) return *o;
  if (auto o = lower_wins(a.quality.offset_scaled_log_variance, b.quality.offset_scaled_log_variance)) return *o;
  if (auto o = lower_wins(a.priority2, b.priority2)) return *o;
  if (kind == BmcaKind::kTelecom) {
    if (auto o = lower_wins(a.local_priority, b.local_priority)) return *o;
    // G.8275.x: only clocks that cannot be grandmaster-quality tell apart by
    // identity; class <= 127 grandmasters compare by topology.
    if (a.quality.clock_class <= 127 || a.gm_identity == b.gm_identity) return compare_topology(a, b);
  }
  return a.gm_identity < b.gm_identity ? Ordering::kABetter : Ordering::kBBetter;
}

ComparableDataSet from_announce(const Message& m, const PortIdentity& receiver, uint8_t local_priority) {
  ComparableDataSet d;
  d.priority1 = m.announce.priority1;
  d.quality = m.announce.gm_quality;
  d.priority2 = m.announce.priority2;
  d.gm_identity = m.announce.gm_identity;
  d.steps_removed = m.announce.steps_removed;
  d.sender = m.header.source;
  d.receiver = receiver;
  d.local_priority = local_priority;
  return d;
}

ComparableDataSet from_default(const DefaultDataSet& d0, uint8_t local_priority) {
  ComparableDataSet d;
  d.priority1 = d0.priority1;
  d.quality = d0.quality;
  d.priority2 = d0.priority2;
  d.gm_identity = d0.identity;
  d.steps_removed = 0;
  d.sender = PortIdentity{d0.identity, 0};
  d.receiver = d.sender;
  d.local_priority = local_priority;
  return d;
}

const char* decision_name(Decision d) {
  switch (d) {
    case Decision::kNone: return "none";
    case Decision::kM1: return "M1";
    case Decision::kM2: return "M2";
    case Decision::kM3: return "M3";
    case Decision::kP1: return "P1";
    case Decision::kP2: return "P2";
    case Decision::kS1: return "S1";
    case Decision::kListening: return "listening";
  }
  return "unknown";
}

Decision decide(const DecisionInput& in) {
  if (!in.erbest && in.state == PortState::kListening) return Decision::kNone;
  if (in.slave_only) {
    // D0 never competes: a slave-only clock follows the best master it hears
    // and listens on every other port.
    if (in.ebest_on_this_port && in.ebest) return Decision::kS1;
    return Decision::kListening;
  }
  if (in.d0.quality.clock_class <= 127) {
    // A grandmaster-quality clock never becomes a slave (§9.3.3).
    if (!in.erbest || a_wins(compare(in.kind, in.d0, *in.erbest))) return Decision::kM1;
    return Decision::kP1;
  }
  if (!in.ebest || a_wins(compare(in.kind, in.d0, *in.ebest))) return Decision::kM2;
  if (in.ebest_on_this_port) return Decision::kS1;
  if (in.erbest && compare(in.kind, *in.ebest, *in.erbest) == Ordering::kABetterByTopology) return Decision::kP2;
  return Decision::kM3;
}

bool ForeignMasters::add(const Message& announce, const ClockIdentity& own, int64_t now_ns, int64_t window_ns) {
  if (announce.header.source.clock == own || announce.announce.steps_removed >= 255) return false;
  auto it = std::find_if(records_.begin(), records_.end(),
                         [&](const Record& r) { return r.sender == announce.header.source; });
  if (it == records_.end()) {
    if (records_.size() < kMaxRecords) {
      records_.push_back(Record{announce.header.source, announce, {}});
      it = records_.end() - 1;
    } else {
      // Replace the sender with the fewest recent Announces (a one-shot
      // spoofed identity before a qualified master), the stalest among equals.
      auto weaker = [](const Record& a, const Record& b) {
        if (a.arrivals.size() != b.arrivals.size()) return a.arrivals.size() < b.arrivals.size();
        return (a.arrivals.empty() ? INT64_MIN : a.arrivals.back()) < (b.arrivals.empty() ? INT64_MIN : b.arrivals.back());
      };
      it = std::min_element(records_.begin(), records_.end(), weaker);
      *it = Record{announce.header.source, announce, {}};
      ++evicted_;
    }
  }
  it->announce = announce;
  it->arrivals.push_back(now_ns);
  std::erase_if(it->arrivals, [&](int64_t t) { return now_ns - t > window_ns; });
  if (it->arrivals.size() > kMaxArrivals) it->arrivals.erase(it->arrivals.begin());
  return true;
}

bool ForeignMasters::expire(int64_t now_ns, int64_t timeout_ns) {
  return std::erase_if(records_, [&](const Record& r) {
           return r.arrivals.empty() || now_ns - r.arrivals.back() > timeout_ns;
         }) > 0;
}

const ForeignMasters::Record* ForeignMasters::best(BmcaKind kind, const PortIdentity& receiver,
                                                   uint8_t local_priority, uint32_t threshold, int64_t now_ns,
                                                   int64_t window_ns) const {
  const Record* best = nullptr;
  ComparableDataSet best_ds;
  for (const Record& r : records_) {
    const auto recent = std::count_if(r.arrivals.begin(), r.arrivals.end(),
                                      [&](int64_t t) { return now_ns - t <= window_ns; });
    if (static_cast<uint32_t>(recent) < threshold) continue;
    const ComparableDataSet ds = from_announce(r.announce, receiver, local_priority);
    if (!best || a_wins(compare(kind, ds, best_ds))) {
      best = &r;
      best_ds = ds;
    }
  }
  return best;
}

}  // namespace meridian::ptp
