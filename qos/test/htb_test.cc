// The HTB scheduler on simulated time: the HTB user-guide scenarios (link
// sharing with a class going idle, ceil, prio), per-window token-bucket
// invariants, DRR spare sharing by quantum, ceil at every level, tail drop,
// ECN marking and live class changes.
#include <gtest/gtest.h>

#include <cmath>

#include "qos/test/htb_sim.h"

namespace meridian::qos {
namespace {

using namespace sim;

constexpr uint64_t kMbit = 1'000'000;
constexpr uint32_t kMtuWire = 1500 + 24;

// The user guide's tree: root 100, A 40 (A1 30, A2 10), B 60; all may use 100.
enum : uint32_t { kRoot, kA, kB, kA1, kA2 };
TreeSpec guide_tree(uint64_t a_ceil = 100 * kMbit, uint8_t a1_prio = 0, uint8_t a2_prio = 0) {
  TreeSpec t;
  t.classes = {cls(kNone, 100 * kMbit), cls(kRoot, 40 * kMbit, a_ceil), cls(kRoot, 60 * kMbit, 100 * kMbit),
               cls(kA, 30 * kMbit, 100 * kMbit, a1_prio), cls(kA, 10 * kMbit, 100 * kMbit, a2_prio)};
  t.default_class = kB;
  EXPECT_EQ(check_tree(t), "");
  return t;
}

double mbit(double bps) { return bps / 1e6; }

/// Every window of `window` ps sliding by `step`: each class (leaves and the
/// inner classes as sums of their leaves) sends at most ceil*T + cburst + MTU.
void expect_ceil_windows(const Sim& s, const std::vector<std::pair<std::vector<uint32_t>, uint32_t>>& groups,
                         uint64_t from, uint64_t to, uint64_t window) {
  for (const auto& [leaves, cls_index] : groups) {
    const ClassSpec& c = s.tree().classes[cls_index];
    const double limit = c.ceil_bps / 8.0 * (window / 1e12) + c.cburst_bytes + kMtuWire;
    for (uint64_t t = from; t + window <= to; t += window / 4) {
      EXPECT_LE(s.bytes(leaves, t, t + window), limit) << "class " << cls_index << " window at " << t;
    }
  }
}

/// A backlogged leaf sends at least rate*T - burst - MTU in every window.
void expect_rate_windows(const Sim& s, uint32_t leaf, uint64_t from, uint64_t to, uint64_t window) {
  const ClassSpec& c = s.tree().classes[leaf];
  const double floor = c.rate_bps / 8.0 * (window / 1e12) - c.burst_bytes - kMtuWire;
  for (uint64_t t = from; t + window <= to; t += window / 4) {
    EXPECT_GE(static_cast<double>(s.bytes({leaf}, t, t + window)), floor) << "leaf " << leaf << " window at " << t;
  }
}

TEST(Htb, CheckTreeRejectsBadTrees) {
  TreeSpec t = guide_tree();
  EXPECT_EQ(check_tree(t), "");
  TreeSpec no_root = t;
  no_root.classes[0].parent = kA;
  EXPECT_NE(check_tree(no_root), "");  // cycle root <-> A, no root left
  TreeSpec ceil_low = t;
  ceil_low.classes[kA].ceil_bps = 10 * kMbit;
  EXPECT_EQ(check_tree(ceil_low), "class 1: ceil below rate");
  TreeSpec inner_default = t;
  inner_default.default_class = kA;
  EXPECT_EQ(check_tree(inner_default), "the default class must be a leaf");
  TreeSpec deep;
  deep.classes.push_back(cls(kNone, kMbit));
  for (uint32_t i = 1; i < 9; ++i) deep.classes.push_back(cls(i - 1, kMbit));
  deep.default_class = 8;
  EXPECT_EQ(check_tree(deep), "class 8: deeper than 8 levels");
  deep.classes.pop_back();
  deep.default_class = 7;
  EXPECT_EQ(check_tree(deep), "");
}

TEST(Htb, DefaultQuantaAreProportionalToRateAmongSiblings) {
  TreeSpec t = guide_tree();
  fill_default_quanta(t);
  EXPECT_EQ(t.classes[kA2].quantum, 1600u);
  EXPECT_EQ(t.classes[kA1].quantum, 4800u);
  EXPECT_EQ(t.classes[kA].quantum, 1600u);
  EXPECT_EQ(t.classes[kB].quantum, 2400u);
}

TEST(Htb, LinkSharingWithOneClassGoingIdle) {
  Sim s(guide_tree());
  s.add({kA1, 1000});
  s.add({kA2, 1000});
  s.add({kB, 1000, 0, 0, 4 * kSecond});  // B goes idle at 4 s
  s.run_until(8 * kSecond);
  // All busy: everyone gets exactly its rate (the rates add up to the link).
  EXPECT_NEAR(mbit(s.rate_bps({kA1}, 1 * kSecond, 4 * kSecond)), 30, 0.3);
  EXPECT_NEAR(mbit(s.rate_bps({kA2}, 1 * kSecond, 4 * kSecond)), 10, 0.2);
  EXPECT_NEAR(mbit(s.rate_bps({kB}, 1 * kSecond, 4 * kSecond)), 60, 0.6);
  // B idle: its 60 is lent by the root to A and split 3:1 by quantum (rate).
  EXPECT_NEAR(mbit(s.rate_bps({kA1}, 5 * kSecond, 8 * kSecond)), 75, 1.5);
  EXPECT_NEAR(mbit(s.rate_bps({kA2}, 5 * kSecond, 8 * kSecond)), 25, 0.5);
  EXPECT_NEAR(mbit(s.rate_bps({kA1, kA2}, 5 * kSecond, 8 * kSecond)), 100, 0.5);
  const uint64_t w = 100 * kMs;
  expect_ceil_windows(s, {{{kA1, kA2, kB}, kRoot}, {{kA1, kA2}, kA}, {{kA1}, kA1}, {{kA2}, kA2}, {{kB}, kB}}, 0,
                      8 * kSecond, w);
  expect_rate_windows(s, kA1, 0, 8 * kSecond, w);
  expect_rate_windows(s, kA2, 0, 8 * kSecond, w);
  expect_rate_windows(s, kB, 0, 4 * kSecond, w);
  // The spare went through A (borrowing) from the root (lending).
  EXPECT_GT(s.sched().stats(kRoot).lends, 0u);
  EXPECT_GT(s.sched().stats(kA).borrows, 0u);
  EXPECT_GT(s.sched().stats(kA1).borrows, 0u);
}

TEST(Htb, CeilIsNeverExceeded) {
  Sim s(guide_tree(50 * kMbit));
  s.add({kA1, 1000});
  s.add({kA2, 1000});
  s.run_until(4 * kSecond);
  EXPECT_NEAR(mbit(s.rate_bps({kA1, kA2}, 1 * kSecond, 4 * kSecond)), 50, 0.5);
  // A's 10 spare (50 - 40) is split 3:1.
  EXPECT_NEAR(mbit(s.rate_bps({kA1}, 1 * kSecond, 4 * kSecond)), 37.5, 0.75);
  EXPECT_NEAR(mbit(s.rate_bps({kA2}, 1 * kSecond, 4 * kSecond)), 12.5, 0.25);
  for (uint64_t w : {1 * kMs, 10 * kMs, 100 * kMs}) {
    expect_ceil_windows(s, {{{kA1, kA2}, kA}, {{kA1, kA2}, kRoot}}, 0, 4 * kSecond, w);
  }
  EXPECT_GT(s.sched().stats(kA).overlimits, 0u);
}

TEST(Htb, PrioTakesTheSpareFirst) {
  Sim s(guide_tree(100 * kMbit, /*a1*/ 0, /*a2*/ 1));
  s.add({kA1, 1000});
  s.add({kA2, 1000});
  s.run_until(1 * kSecond);
  const uint64_t a2_borrows = s.sched().stats(kA2).borrows;
  const uint64_t a1_borrows = s.sched().stats(kA1).borrows;
  s.run_until(4 * kSecond);
  // A1 (prio 0) takes all 60 spare; A2 (prio 1) only gets its rate.
  EXPECT_NEAR(mbit(s.rate_bps({kA1}, 1 * kSecond, 4 * kSecond)), 90, 0.9);
  EXPECT_NEAR(mbit(s.rate_bps({kA2}, 1 * kSecond, 4 * kSecond)), 10, 0.2);
  // Borrowing order as the counters show it: A1 keeps borrowing, A2 never does.
  EXPECT_GT(s.sched().stats(kA1).borrows, a1_borrows + 10000);
  EXPECT_EQ(s.sched().stats(kA2).borrows, a2_borrows);
  EXPECT_LE(a2_borrows, 2u);  // at most the start-up burst
}

TEST(Htb, SpareIsSharedByQuantum) {
  for (auto [qa, qb] : {std::pair{3000u, 1000u}, {1600u, 1600u}, {8000u, 2000u}}) {
    TreeSpec t;
    t.classes = {cls(kNone, 100 * kMbit), cls(0, 10 * kMbit, 100 * kMbit, 0, qa),
                 cls(0, 10 * kMbit, 100 * kMbit, 0, qb)};
    t.default_class = 1;
    Sim s(t);
    s.add({1, 1000});
    s.add({2, 1000});
    s.run_until(5 * kSecond);
    const double a = s.rate_bps({1}, kSecond, 5 * kSecond) - 10e6;
    const double b = s.rate_bps({2}, kSecond, 5 * kSecond) - 10e6;
    const double want = static_cast<double>(qa) / qb;
    EXPECT_NEAR(a / b, want, want * 0.02) << qa << ":" << qb;
    EXPECT_NEAR((a + b) / 1e6, 80, 0.8);
  }
}

TEST(Htb, CeilHoldsAtEveryLevelEvenWhenChildrenOversubscribe) {
  // Non-strict tree: the children's rates (30 + 30) exceed the parent's ceil (20).
  TreeSpec t;
  t.classes = {cls(kNone, 100 * kMbit), cls(0, 20 * kMbit), cls(1, 30 * kMbit), cls(1, 30 * kMbit)};
  t.default_class = 2;
  Sim s(t);
  s.add({2, 1000});
  s.add({3, 1000});
  s.run_until(3 * kSecond);
  EXPECT_NEAR(mbit(s.rate_bps({2, 3}, kSecond, 3 * kSecond)), 20, 0.2);
  for (uint64_t w : {1 * kMs, 50 * kMs}) expect_ceil_windows(s, {{{2, 3}, 1}}, 0, 3 * kSecond, w);
}

TEST(Htb, LinkSerialisationDoesNotChangeTheShares) {
  // A 100 Mbit link under the same tree: same results as an infinitely fast one.
  Sim s(guide_tree(), 100e6 * 1.0);
  s.add({kA1, 1500});
  s.add({kA2, 64});
  s.add({kB, 700});
  s.run_until(3 * kSecond);
  EXPECT_NEAR(mbit(s.rate_bps({kA1}, kSecond, 3 * kSecond)), 30, 0.6);
  EXPECT_NEAR(mbit(s.rate_bps({kA2}, kSecond, 3 * kSecond)), 10, 0.2);
  EXPECT_NEAR(mbit(s.rate_bps({kB}, kSecond, 3 * kSecond)), 60, 1.2);
}

TEST(Htb, UnderloadedLeafGetsItsDemandAndTheRestIsLent) {
  Sim s(guide_tree());
  s.add({kA1, 1000, 5e6});  // offers 5, well under its 30
  s.add({kA2, 1000});
  s.add({kB, 1000});
  s.run_until(3 * kSecond);
  EXPECT_NEAR(mbit(s.rate_bps({kA1}, kSecond, 3 * kSecond)), 5, 0.1);
  // The 25 A1 leaves unused is lent on (by A to A2, by the root to A and B): the link stays full
  // and nobody falls below its rate.
  EXPECT_NEAR(mbit(s.rate_bps({kA1, kA2, kB}, kSecond, 3 * kSecond)), 100, 1.0);
  EXPECT_GE(mbit(s.rate_bps({kA2}, kSecond, 3 * kSecond)), 10 * 0.98);
  EXPECT_GE(mbit(s.rate_bps({kB}, kSecond, 3 * kSecond)), 60 * 0.98);
}

TEST(Htb, TailDropAtTheQueueLimitIsCounted) {
  TreeSpec t;
  t.classes = {cls(kNone, kMbit), cls(0, kMbit)};
  t.classes[1].limit_packets = 5;
  t.classes[1].limit_bytes = 4000;
  t.default_class = 1;
  HtbScheduler h(t, 64, 0);
  int queued = 0;
  for (int i = 0; i < 10; ++i) queued += h.enqueue(1, i, 700, false, 0) != EnqueueResult::kDropped;
  EXPECT_EQ(queued, 5);
  EXPECT_EQ(h.stats(1).drops, 5u);
  EXPECT_EQ(h.queue_packets(1), 5u);
  EXPECT_EQ(h.queue_bytes(1), 3500u);
  EXPECT_EQ(h.enqueue(1, 99, 600, false, 0), EnqueueResult::kDropped);  // 4100 > 4000 bytes
  EXPECT_EQ(h.enqueue(0, 99, 60, false, 0), EnqueueResult::kDropped);   // inner classes own no queue
  // The node pool is a hard bound too.
  TreeSpec small = t;
  small.classes[1].limit_packets = 100;
  small.classes[1].limit_bytes = 0;
  HtbScheduler tiny(small, 3, 0);
  for (int i = 0; i < 5; ++i) tiny.enqueue(1, i, 60, false, 0);
  EXPECT_EQ(tiny.queue_packets(1), 3u);
  // FIFO order out.
  auto d = tiny.dequeue(0);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->packet, 0u);
  uint64_t released = 0;
  tiny.drain([&](const Dequeued&) { ++released; });
  EXPECT_EQ(released, 2u);
  EXPECT_EQ(tiny.queued_total(), 0u);
}

// dequeue_burst sends runs from one leaf without re-selecting; it must give
// exactly the packets, in exactly the order, that one dequeue() per packet
// gives at the same times. Mixed lengths, borrowing at every level, prios.
TEST(Htb, BurstDequeueMatchesPacketByPacket) {
  TreeSpec t;
  t.classes = {cls(kNone, 1000 * kMbit)};
  for (uint32_t i = 0; i < 3; ++i) t.classes.push_back(cls(0, 200 * kMbit, 1000 * kMbit));
  for (uint32_t i = 0; i < 12; ++i) {
    t.classes.push_back(cls(1 + i / 4, (1 + i % 3) * 10 * kMbit, (i % 5 == 0 ? 300 : 1000) * kMbit,
                            static_cast<uint8_t>(i % 2), 700 + 300 * (i % 4)));
  }
  t.default_class = 4;
  ASSERT_EQ(check_tree(t), "");
  HtbScheduler one(t, 4096, 0), burst(t, 4096, 0);
  uint64_t now = 0, handle = 0, rng = 12345;
  std::vector<uint64_t> seq_one, seq_burst;
  uint64_t same_leaf_pairs = 0;  // the runs this test is about happened
  for (int round = 0; round < 4000; ++round) {
    // Offer a few packets of mixed sizes to random leaves, identically.
    for (int k = 0; k < 10; ++k) {
      rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
      const uint32_t leaf = 4 + static_cast<uint32_t>((rng >> 33) % 12);
      const uint32_t len = 64 + static_cast<uint32_t>((rng >> 45) % 1437);
      ASSERT_EQ(one.enqueue(leaf, handle, len, false, now), burst.enqueue(leaf, handle, len, false, now));
      ++handle;
    }
    for (unsigned i = 0; i < 16; ++i) {
      const auto d = one.dequeue(now);
      if (!d) break;
      seq_one.push_back(d->packet);
    }
    Dequeued out[16];
    const unsigned n = burst.dequeue_burst(now, out, 16);
    for (unsigned i = 0; i < n; ++i) seq_burst.push_back(out[i].packet);
    for (unsigned i = 1; i < n; ++i) same_leaf_pairs += out[i].leaf == out[i - 1].leaf;
    ASSERT_EQ(seq_one, seq_burst) << "round " << round;
    now += 50 * kMs / 1000;  // 50 us
  }
  EXPECT_GT(seq_one.size(), 20000u);
  EXPECT_GT(same_leaf_pairs, seq_one.size() / 10);
  for (uint32_t c = 0; c < t.classes.size(); ++c) {
    EXPECT_EQ(one.stats(c).bytes, burst.stats(c).bytes) << c;
    EXPECT_EQ(one.stats(c).borrows, burst.stats(c).borrows) << c;
    EXPECT_EQ(one.stats(c).lends, burst.stats(c).lends) << c;
    EXPECT_EQ(one.tokens_bytes(c), burst.tokens_bytes(c)) << c;
  }
}

// A leaf that empties stays in its lists until its next turn (a refill in
// between costs nothing). Left empty, it must neither block the lenders above
// it nor be served; refilled, it is served on its own rate again.
TEST(Htb, EmptiedLeafNeitherBlocksBorrowersNorLosesItsPlace) {
  enum : uint32_t { kTop, kGreen, kBorrower };
  TreeSpec t;
  t.classes = {cls(kNone, 100 * kMbit), cls(kTop, 90 * kMbit, 100 * kMbit), cls(kTop, kMbit, 100 * kMbit)};
  t.default_class = kGreen;
  ASSERT_EQ(check_tree(t), "");
  HtbScheduler h(t, 256, 0);
  ASSERT_NE(h.enqueue(kGreen, 1, 1500, false, 0), EnqueueResult::kDropped);
  auto d = h.dequeue(0);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->leaf, kGreen);
  EXPECT_EQ(h.mode(kGreen), HtbScheduler::Mode::kGreen);  // empty, green, still listed
  // The borrower's own 1 Mbit burst covers one packet; the rest is lent by
  // the root (14 KB of burst at once), past the empty green leaf.
  for (uint32_t i = 0; i < 20; ++i) h.enqueue(kBorrower, 100 + i, 1500, false, 0);
  unsigned sent = 0;
  while (auto b = h.dequeue(0)) {
    EXPECT_EQ(b->leaf, kBorrower);
    ++sent;
  }
  EXPECT_GE(sent, 5u);
  EXPECT_GT(h.stats(kBorrower).borrows, 0u);
  // Refilled: the green leaf goes first (level 0 before lenders) once the
  // root's ceil has recovered.
  h.enqueue(kGreen, 2, 1500, false, 0);
  const uint64_t later = h.next_wakeup();
  ASSERT_NE(later, UINT64_MAX);
  d = h.dequeue(later + kMs);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->leaf, kGreen);
  EXPECT_EQ(d->packet, 2u);
  // Drained completely: nothing left to send, however long we wait.
  uint64_t now = later + kMs;
  while (h.queued_total()) {
    now += kMs;
    while (h.dequeue(now)) {
    }
  }
  EXPECT_FALSE(h.dequeue(now + kSecond));
  EXPECT_EQ(h.stats(kGreen).packets, 2u);
  EXPECT_EQ(h.stats(kBorrower).packets, 20u);
}

// Packets are stored four to a chunk: FIFO order holds across chunk
// boundaries, and a full pool fits however the packets spread over leaves.
TEST(Htb, QueuesKeepOrderAndTheFullCapacityFits) {
  TreeSpec t;
  t.classes = {cls(kNone, 10 * kMbit)};
  for (uint32_t i = 0; i < 64; ++i) t.classes.push_back(cls(0, kMbit / 8, 10 * kMbit));
  t.default_class = 1;
  for (auto& c : t.classes) c.limit_packets = 1000;
  constexpr uint32_t kCapacity = 50;
  HtbScheduler h(t, kCapacity, 0);
  // One packet on each of 50 leaves: 50 chunks for 50 packets.
  for (uint32_t i = 0; i < kCapacity; ++i) EXPECT_NE(h.enqueue(1 + i, i, 100, false, 0), EnqueueResult::kDropped);
  EXPECT_EQ(h.enqueue(60, 999, 100, false, 0), EnqueueResult::kDropped);
  uint64_t released = 0;
  h.drain([&](const Dequeued&) { ++released; });
  EXPECT_EQ(released, kCapacity);
  // Then 50 on one leaf, popped partly and refilled so the head sits mid-chunk.
  for (uint32_t i = 0; i < kCapacity; ++i) h.enqueue(1, 1000 + i, 100, false, 0);
  uint64_t expect = 1000;
  for (int i = 0; i < 7; ++i) {
    const auto d = h.dequeue(0);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->packet, expect++);
  }
  for (uint32_t i = 0; i < 7; ++i) EXPECT_NE(h.enqueue(1, 1050 + i, 100, false, 0), EnqueueResult::kDropped);
  EXPECT_EQ(h.queue_packets(1), kCapacity);
  std::vector<uint64_t> order;
  h.drain_class(1, [&](const Dequeued& d) { order.push_back(d.packet); });
  ASSERT_EQ(order.size(), kCapacity);
  for (uint64_t v : order) EXPECT_EQ(v, expect++);
}

TEST(Htb, EcnMarksEctPacketsLikeRedOnQueueBytes) {
  TreeSpec t;
  t.classes = {cls(kNone, kMbit), cls(0, kMbit)};
  t.classes[1].limit_packets = 1000;
  t.classes[1].ecn = EcnProfile{10000, 20000, 0.5};
  t.default_class = 1;
  HtbScheduler h(t, 2048, 0);
  int marks_low = 0, marks_mid = 0, marks_high = 0, nonect_marks = 0;
  for (int i = 0; i < 10; ++i) marks_low += h.enqueue(1, i, 1000, true, 0) == EnqueueResult::kQueuedMarkCe;
  // 10 000 .. 20 000 queued bytes: probability rises from 0 to 0.5 (mean 0.25).
  for (int i = 0; i < 10; ++i) marks_mid += h.enqueue(1, i, 1000, true, 0) == EnqueueResult::kQueuedMarkCe;
  for (int i = 0; i < 10; ++i) nonect_marks += h.enqueue(1, i, 1, false, 0) == EnqueueResult::kQueuedMarkCe;
  for (int i = 0; i < 10; ++i) marks_high += h.enqueue(1, i, 1000, true, 0) == EnqueueResult::kQueuedMarkCe;
  EXPECT_EQ(marks_low, 0);
  EXPECT_EQ(nonect_marks, 0);
  EXPECT_EQ(marks_high, 10);
  EXPECT_EQ(h.stats(1).ecn_marks, static_cast<uint64_t>(marks_mid + marks_high));
  // In the ramp: 15 000 queued bytes give p = 0.25 (zero-length probes keep the depth).
  HtbScheduler r(t, 2048, 0);
  for (int i = 0; i < 15; ++i) r.enqueue(1, i, 1000, false, 0);
  int marked = 0;
  for (int i = 0; i < 800; ++i) marked += r.enqueue(1, i, 0, true, 0) == EnqueueResult::kQueuedMarkCe;
  EXPECT_NEAR(marked / 800.0, 0.25, 0.05);
}

TEST(Htb, LiveRateChangeKeepsQueuedPackets) {
  TreeSpec t;
  t.classes = {cls(kNone, 100 * kMbit), cls(0, 10 * kMbit), cls(0, 10 * kMbit)};
  t.default_class = 1;
  Sim s(t);
  s.add({1, 1000});
  s.add({2, 1000, 0, 0, 2 * kSecond});
  s.run_until(kSecond);
  const uint32_t queued = s.sched().queue_packets(1);
  ClassSpec faster = cls(0, 40 * kMbit);
  s.sched().update_class(1, faster, s.now());
  EXPECT_EQ(s.sched().queue_packets(1), queued);
  EXPECT_EQ(s.sched().spec(1).rate_bps, 40 * kMbit);
  s.run_until(3 * kSecond);
  EXPECT_NEAR(mbit(s.rate_bps({1}, 1100 * kMs, 2 * kSecond)), 40, 0.4);
  EXPECT_NEAR(mbit(s.rate_bps({2}, 1100 * kMs, 2 * kSecond)), 10, 0.1);
  // Prio change of a backlogged leaf moves it between rows without losing it.
  ClassSpec low = faster;
  low.prio = 5;
  s.sched().update_class(1, low, s.now());
  s.run_until(4 * kSecond);
  EXPECT_NEAR(mbit(s.rate_bps({1}, 3100 * kMs, 4 * kSecond)), 40, 0.4);
}

TEST(Htb, IdleSchedulerSleepsUntilTokensReturn) {
  TreeSpec t;
  t.classes = {cls(kNone, 8000), cls(0, 8000)};  // 1000 bytes/s
  t.classes[1].burst_bytes = t.classes[1].cburst_bytes = 0;
  t.classes[0].burst_bytes = t.classes[0].cburst_bytes = 0;
  t.default_class = 1;
  HtbScheduler h(t, 16, 0);
  h.enqueue(1, 1, 476, false, 0);
  h.enqueue(1, 2, 476, false, 0);
  ASSERT_TRUE(h.dequeue(0));  // 500 wire bytes: half a second of tokens owed
  EXPECT_FALSE(h.dequeue(kSecond / 4));
  // Waits beyond the wheel's horizon (4096 slots of 1.05 us) come back as
  // re-checks; the packet leaves at the first wake-up at or after 0.5 s.
  uint64_t now = kSecond / 4;
  int wakeups = 0;
  std::optional<Dequeued> d;
  while (!(d = h.dequeue(now)) && wakeups < 1000) {
    const uint64_t wake = h.next_wakeup();
    ASSERT_GT(wake, now);
    now = wake;
    ++wakeups;
  }
  ASSERT_TRUE(d);
  EXPECT_GE(now, kSecond / 2);
  EXPECT_LE(now, kSecond / 2 + (uint64_t{1} << HtbScheduler::kWheelShift));
  EXPECT_EQ(h.stats(1).packets, 2u);
}

}  // namespace
}  // namespace meridian::qos
