// Counters: single-writer adds, per-port sums over workers, and the drop
// reason list generated from the X-macro.
#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

#include "dataplane/counters.h"

using namespace meridian::dataplane;

TEST(Counters, SingleWriterAddAndLoad) {
  SingleWriterCounter c;
  c.add(3);
  c.add(4);
  EXPECT_EQ(c.load(), 7u);
}

TEST(Counters, SumOverWorkersPerPort) {
  std::vector<WorkerCounters> workers(3);
  workers[0].ports[2].rx_packets.add(10);
  workers[1].ports[2].rx_packets.add(5);
  workers[2].ports[1].rx_packets.add(100);
  workers[1].ports[2].drop(DropReason::kTxFull, 2);
  workers[2].ports[2].drop(DropReason::kRuntFrame);
  PortTotals t = sum_port(workers, 2);
  EXPECT_EQ(t.rx_packets, 15u);
  EXPECT_EQ(t.drops[static_cast<size_t>(DropReason::kTxFull)], 2u);
  EXPECT_EQ(t.drops_total(), 3u);
  EXPECT_EQ(sum_port(workers, 1).rx_packets, 100u);
}

TEST(Counters, ReaderNeverSeesTornOrDecreasingValues) {
  WorkerCounters w;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < 200000; ++i) w.ports[0].tx_packets.add(1);
    done = true;
  });
  uint64_t last = 0;
  while (!done) {
    uint64_t v = w.ports[0].tx_packets.load();
    ASSERT_GE(v, last);
    last = v;
  }
  writer.join();
  EXPECT_EQ(w.ports[0].tx_packets.load(), 200000u);
}

TEST(Counters, WorkerBlocksDoNotShareCacheLines) {
  EXPECT_EQ(alignof(WorkerCounters), kCacheLine);
  EXPECT_EQ(sizeof(WorkerCounters) % kCacheLine, 0u);
}

TEST(DropReasons, NamesAreUniqueSnakeCaseAndDescribed) {
  std::set<std::string> names;
  for (size_t i = 0; i < kDropReasonCount; ++i) {
    std::string n = kDropReasonNames[i];
    EXPECT_TRUE(names.insert(n).second) << n;
    for (char c : n) EXPECT_TRUE(islower(c) || c == '_') << n;
    EXPECT_GT(std::string(kDropReasonHelp[i]).size(), 10u);
  }
  EXPECT_STREQ(drop_reason_name(DropReason::kTxFull), "tx_full");
  EXPECT_EQ(kDropReasonCount, names.size());
}
