// Hierarchical token bucket scheduler with Linux HTB semantics, as pure logic
// driven by the caller's clock (picoseconds), so every rule is unit-tested with
// simulated time. The DPDK stage owns one per egress port on the worker that
// owns the port's TX queue: single-threaded, no locks.
//
// Semantics (docs/qos.md):
//   - Leaves own bounded FIFO queues; inner classes only lend.
//   - Each class has a rate bucket (tokens, depth `burst`) and a ceil bucket
//     (ctokens, depth `cburst`), both kept as picoseconds of transmission time
//     at the class's rate/ceil, charged with wire bytes (length + overhead).
//   - Mode: GREEN (tokens >= 0) sends on its own rate, YELLOW (tokens < 0,
//     ctokens >= 0) may borrow from its parent, RED (ctokens < 0) cannot send.
//   - Dequeue serves level 0 (green leaves) first, then lenders level by level
//     upwards; at each level the lowest prio number first; within one prio,
//     DRR by quantum. A borrowed packet is charged to the tokens of the lender
//     and everything above it (`lends` at the lender, `borrows` below) and to
//     the ctokens of every class on the path.
//   - A class is only served while every ancestor has ctokens >= 0, so ceil
//     holds at every level even when children's rates over-subscribe a parent.
//
// Data structures (O(1) per packet apart from the depth walk, depth <= 8):
//   - per level a bitmap of prios with a non-empty "row" of green classes;
//   - per inner class and prio a "feed" list of yellow children wanting to
//     borrow at that prio (Linux's structure, with DRR lists instead of rb-trees);
//   - a timing wheel (Carousel) of non-green classes, keyed by the time their
//     mode changes, with a bitmap over the slots.
//
// Layout, for the per-packet cost at 64K leaves (qos/bench/qos_bench.cc): a class
// is four cache lines ordered by how often they are touched (buckets, then
// counters, then queue and lists, then the wheel); leaves keep their two list
// nodes inline (they sit at one prio), inner classes keep their per-prio
// nodes and feed heads aside; queued packets sit four to a 64-byte chunk. A charge
// only re-places a class whose mode or demand changed, a run's later packets
// only subtract their costs, and an emptied leaf stays listed until its next
// turn (usually refilled by then).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace meridian::qos {

inline constexpr unsigned kMaxLevels = 8;  // tree depth: root at depth 0 .. leaves at most depth 7
inline constexpr unsigned kPrios = 8;
inline constexpr uint32_t kNone = UINT32_MAX;
inline constexpr uint64_t kPicosPerSecond = 1'000'000'000'000ULL;

/// RED-like ECN marking on queue bytes (the DCQCN congestion point): no
/// marking below kmin, probability rising linearly to pmax at kmax, every ECT
/// packet marked above kmax. Non-ECT packets only see the tail drop.
struct EcnProfile {
  uint64_t kmin_bytes = 0;
  uint64_t kmax_bytes = 0;
  double pmax = 0;
  bool operator==(const EcnProfile&) const = default;
};

/// One class, with every value resolved to numbers (the config layer parses units).
struct ClassSpec {
  uint32_t parent = kNone;  // index into TreeSpec::classes; kNone for the root
  uint64_t rate_bps = 0;
  uint64_t ceil_bps = 0;    // >= rate_bps
  uint64_t burst_bytes = 0;
  uint64_t cburst_bytes = 0;
  uint8_t prio = 0;         // leaves: 0 (highest) .. 7
  uint32_t quantum = 0;     // DRR weight in bytes; 0 = default rule (see default_quanta)
  uint16_t overhead = 24;   // preamble + IFG + FCS per packet on the wire
  uint32_t limit_packets = 1000;
  uint64_t limit_bytes = 0;  // 0 = no byte limit
  std::optional<EcnProfile> ecn;
  bool operator==(const ClassSpec&) const = default;
};

struct TreeSpec {
  std::vector<ClassSpec> classes;  // exactly one root
  uint32_t default_class = kNone;  // a leaf
};

/// Structural check (the config layer reports the same with JSON paths).
/// Empty when fine.
std::string check_tree(const TreeSpec& tree);

/// Default burst/cburst: 1 ms at the rate plus one jumbo frame, like tc's
/// rate/HZ + mtu with HZ = 1000.
uint64_t default_burst(uint64_t rate_bps);

/// Default quanta: proportional to rate among siblings, the smallest sibling
/// rate getting 1600 bytes (one full frame with overhead), capped at 1 MiB.
/// So spare bandwidth is shared in proportion to the children's rates, as in
/// the HTB user guide (Linux's r2q clamp would split it equally above 16 Mbit).
void fill_default_quanta(TreeSpec& tree);

enum class EnqueueResult : uint8_t { kQueued, kQueuedMarkCe, kDropped };

struct Dequeued {
  uintptr_t packet;
  uint32_t length;
  uint32_t leaf;
};

/// Always-on per-class statistics (the scheduler's own single writer).
struct ClassStats {
  uint64_t bytes = 0;    // wire bytes sent (length + overhead)
  uint64_t packets = 0;
  uint64_t drops = 0;
  uint64_t ecn_marks = 0;
  uint64_t overlimits = 0;  // times the class went over its rate or ceil, or was held by an ancestor's ceil
  uint64_t lends = 0;       // packets this class lent its rate tokens for
  uint64_t borrows = 0;     // packets this class sent on borrowed tokens
};

class HtbScheduler {
 public:
  enum class Mode : uint8_t { kGreen, kYellow, kRed };

  /// `capacity` bounds the packets queued over all leaves (the node pool).
  /// The tree must pass check_tree(); quanta of 0 take the default rule.
  HtbScheduler(TreeSpec tree, uint32_t capacity, uint64_t now_ps);

  /// Queues a packet on `leaf`. `ect` says the packet is ECN-capable; the
  /// caller sets CE when told kQueuedMarkCe. kDropped: tail drop, counted.
  EnqueueResult enqueue(uint32_t leaf, uintptr_t packet, uint32_t length, bool ect, uint64_t now_ps);
  /// The next packet to send at `now_ps`, or nothing when every backlogged
  /// class waits for tokens (see next_wakeup).
  std::optional<Dequeued> dequeue(uint64_t now_ps);
  /// Up to `max` packets in the order dequeue() would give them at `now_ps`,
  /// with the wheel advanced once (the egress stage's burst). Returns the count.
  unsigned dequeue_burst(uint64_t now_ps, Dequeued* out, unsigned max);
  /// Earliest time a waiting class may become sendable (UINT64_MAX if none).
  uint64_t next_wakeup() const;

  /// A lightweight change: new rates, ceils, bursts, prio and quantum for an
  /// existing class. Queued packets stay; token levels are clamped to the new
  /// bucket depths.
  void update_class(uint32_t index, const ClassSpec& spec, uint64_t now_ps);

  /// Removes every packet queued on leaf `c`, in order, calling
  /// `release(const Dequeued&)` for each (moving them to a replacement tree).
  /// Nothing is charged or counted as sent.
  template <class Fn>
  void drain_class(uint32_t c, Fn&& release) {
    if (classes_[c].q_packets == 0) return;
    while (classes_[c].q_packets) release(pop(c));
    place_upwards(c, classes_[c].t_c);
  }
  /// drain_class over every leaf (shutdown, or freeing a replaced tree).
  template <class Fn>
  void drain(Fn&& release) {
    for (uint32_t c = 0; c < classes_.size(); ++c) drain_class(c, release);
  }
  /// Carries a class's counters over from the tree this one replaces.
  void restore_stats(uint32_t c, const ClassStats& stats) { classes_[c].stats = stats; }

  // Introspection for stats and tests.
  size_t size() const { return classes_.size(); }
  const ClassSpec& spec(uint32_t c) const { return specs_[c]; }
  const ClassStats& stats(uint32_t c) const { return classes_[c].stats; }
  /// Token levels in bytes at the class's rate (negative: owed).
  int64_t tokens_bytes(uint32_t c) const;
  int64_t ctokens_bytes(uint32_t c) const;
  uint32_t queue_packets(uint32_t c) const { return classes_[c].q_packets; }
  uint64_t queue_bytes(uint32_t c) const { return classes_[c].q_bytes; }
  Mode mode(uint32_t c) const { return classes_[c].mode; }
  uint8_t level(uint32_t c) const { return classes_[c].level; }
  bool is_leaf(uint32_t c) const { return classes_[c].leaf; }
  uint32_t default_class() const { return default_class_; }
  uint32_t queued_total() const { return queued_; }

  static constexpr unsigned kWheelSlots = 4096;
  static constexpr unsigned kWheelShift = 20;  // slot width 2^20 ps = 1.05 us

 private:
  enum class ListKind : uint8_t { kRow, kFeed };
  struct ListNode {
    uint32_t prev = kNone, next = kNone;
    int32_t deficit = 0;  // DRR: at most quantum (< 2^25), down to minus one packet
  };
  struct alignas(64) Class {
    // Line 0: the buckets, refreshed and charged at every level per packet;
    // in picoseconds of transmission at rate / ceil.
    int64_t tokens = 0, ctokens = 0;
    int64_t burst_ps = 0, cburst_ps = 0;
    uint64_t rate_mult = 0, ceil_mult = 0;  // ps per byte, << 20
    uint64_t t_c = 0;                       // time of the last token update
    uint32_t parent = kNone;
    uint8_t level = 0;  // leaves 0; inner classes 7 - depth
    Mode mode = Mode::kGreen;
    bool leaf = true;
    uint8_t prio = 0;
    // Line 1: counters (every level per packet), the queue limit and overhead.
    ClassStats stats;
    uint32_t limit_packets = 0;
    uint16_t overhead = 0;
    // Where the class sits, one list per prio: the rows of its level while
    // green (`row_mask`), its parent's feeds while not red (`offer_mask`).
    uint8_t row_mask = 0;
    uint8_t offer_mask = 0;
    // Line 2: the leaf's queue (chunk indices; the first packet sits at
    // q_offset in q_head, the rest follow contiguously) and list nodes.
    uint32_t q_head = kNone, q_tail = kNone;
    uint32_t q_packets = 0, quantum = 0;
    uint64_t q_bytes = 0;
    uint64_t held_until = 0;  // an ancestor's ceil holds this class back until then
    std::array<ListNode, 2> own;  // a leaf's [ListKind] nodes at its prio
    uint32_t inner = kNone;       // inner classes: index into inner_
    uint8_t feed_mask = 0;        // inner classes: prios with yellow children
    bool byte_limit = false;      // spec limit_bytes set
    bool ecn = false;             // spec ecn set
    uint8_t q_offset = 0;
    // Line 3: timing wheel membership (the one slot entry that counts).
    uint64_t w_slot = 0;
    bool on_wheel = false;
  };
  /// Per-prio list nodes and feed heads of an inner class (inner classes can
  /// sit in rows and feeds at several prios at once; leaves at one).
  struct InnerLists {
    std::array<std::array<ListNode, kPrios>, 2> nodes;  // [ListKind][prio]
    std::array<uint32_t, kPrios> feed;                  // yellow children wanting to borrow
  };
  /// Queued packets, four to a cache line: a leaf's queue is a chain of
  /// chunks, so popping a run of packets misses once per four, not per packet.
  static constexpr unsigned kChunkPackets = 4;
  struct alignas(64) Chunk {
    std::array<uintptr_t, kChunkPackets> packet;
    std::array<uint32_t, kChunkPackets> length;
    uint32_t next;
  };

  void configure(uint32_t c, const ClassSpec& spec);
  void refresh(Class& c, uint64_t now);
  Mode compute_mode(const Class& c) const;
  /// Puts `c` where its mode and demand say; returns true when what it offers
  /// its parent's feeds changed (so the parent must be re-placed too).
  bool place(uint32_t c, uint64_t now);
  /// Takes `c` out of every row or feed list it is in.
  void detach(uint32_t c);
  void place_upwards(uint32_t c, uint64_t now);
  uint8_t demand(const Class& c) const;

  // DRR lists over ListNode[prio]: `head` is the class served next.
  ListNode& node(uint32_t c, ListKind kind, uint8_t prio);
  uint32_t& feed_head(uint32_t parent, uint8_t prio) { return inner_[classes_[parent].inner].feed[prio]; }
  void list_insert(uint32_t& head, uint32_t c, ListKind kind, uint8_t prio);
  void list_remove(uint32_t& head, uint32_t c, ListKind kind, uint8_t prio);
  uint32_t drr_pick(uint32_t& head, ListKind kind, uint8_t prio);
  void row_remove(uint32_t c, uint8_t prio);
  void feed_remove(uint32_t c, uint8_t prio);

  void wheel_schedule(uint32_t c, uint64_t when);
  void wheel_cancel(uint32_t c);
  void wheel_advance(uint64_t now);

  /// Loads ahead for the runs likely next (rte_sched's grinders, in spirit):
  /// the leaf after the current one in its list, and the first leaf under
  /// the next class of the row. Each step issues one dependent prefetch
  /// (class lines, an inner class's feed heads, a leaf's first chunk), so at
  /// 64K leaves the next pick finds its lines in cache instead of missing
  /// three times in a row.
  struct Lookahead {
    uint32_t cls = kNone;
    uint8_t prio = 0;
    bool feeds_loaded = false;  // inner class: its feed heads were prefetched
  };
  void look_ahead(Lookahead& l);
  void prefetch_class(uint32_t c) const;
  std::array<Lookahead, 2> ahead_{};

  /// Packets at `now` (wheel already advanced), up to `max`, from the one
  /// leaf the rules pick next; 0 when none may go.
  unsigned dequeue_run(uint64_t now, Dequeued* out, unsigned max);
  Dequeued pop(uint32_t leaf);
  uint32_t red_ancestor(uint32_t c, uint64_t now);
  /// The classes a run's packets are charged to, leaf to root, as the first
  /// packet's charge() left them, with the bucket costs of one wire length.
  struct RunPath {
    std::array<Class*, kMaxLevels> cls;
    std::array<int64_t, kMaxLevels> cost_tokens, cost_ctokens;
    unsigned size = 0;
    unsigned lender = 0;  // index of the lender: rate tokens are charged from here up
    uint32_t wire = 0;    // the costs are for this many wire bytes
  };
  /// Charges one packet up the path; true when a mode on it moved or a
  /// class was re-placed (so the next pick may differ). Records the path in
  /// `record` when given.
  bool charge(uint32_t leaf, uint8_t lend_level, uint32_t wire, uint64_t now, RunPath* record);
  /// The rest of a run after a charge() that changed nothing: subtracts the
  /// packet's costs when no bucket on the path crosses zero (no mode can
  /// move, so charge() would change nothing either); false, and nothing
  /// charged, otherwise. Counters are added per run (count_run).
  bool charge_in_run(RunPath& path, uint32_t wire);
  void count_run(const RunPath& path, uint64_t packets, uint64_t wire_bytes);

  std::vector<Class> classes_;
  std::vector<ClassSpec> specs_;  // as configured (quantum filled in)
  std::vector<InnerLists> inner_;
  uint32_t default_class_ = kNone;
  // Rows: green classes per level and prio.
  std::array<std::array<uint32_t, kPrios>, kMaxLevels> row_{};
  std::array<uint8_t, kMaxLevels> row_mask_{};
  uint8_t level_mask_ = 0;
  // Timing wheel.
  // Slot -> classes scheduled there. A cancelled or moved class leaves its
  // entry behind (skipped when the slot runs: on_wheel/w_slot disagree), so
  // cancelling touches no neighbours and a due slot is an array to prefetch.
  std::vector<std::vector<uint32_t>> wheel_;
  std::vector<uint32_t> due_;                 // scratch for wheel_advance
  std::array<uint64_t, kWheelSlots / 64> wheel_bits_{};
  uint64_t wheel_now_slot_ = 0;               // every slot before this one has been run
  uint32_t wheel_count_ = 0;
  // Chunk pool shared by all leaves, with a LIFO free list (recently freed
  // chunks are still in cache). Sized so `capacity` packets always fit.
  std::vector<Chunk> chunks_;
  uint32_t free_chunk_ = kNone;
  uint32_t capacity_ = 0;
  uint32_t queued_ = 0;
  uint64_t rng_ = 0x9e3779b97f4a7c15ULL;  // xorshift state for ECN marking
};

}  // namespace meridian::qos
