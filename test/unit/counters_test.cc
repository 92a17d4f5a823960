// Counters: single-writer adds, per-port sums over workers, and the shared
// drop-reason id space the modules' X-macro lists register in.
#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

#include "dataplane/counter_set.h"
#include "dataplane/counters.h"
#include "ptp/drop_reasons.h"
#include "qos/drop_reasons.h"
#include "vxlan/drop_reasons.h"

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
  EXPECT_EQ(t.drops_of(DropReason::kTxFull), 2u);
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

namespace test_module {
// A module's own list, as a module folder declares it.
#define TEST_MODULE_DROP_REASONS(X)                                          \
  X(kFirst, "test_module_first", kIngress, "the first reason of a module")  \
  X(kSecond, "test_module_second", kAfterPunt, "the second reason of a module")
MERIDIAN_DEFINE_DROP_REASONS(Drop, TEST_MODULE_DROP_REASONS)
}  // namespace test_module

TEST(DropReasons, EngineReasonsComeFirstAtFixedIds) {
  EXPECT_EQ(drop_id(DropReason::kRuntFrame), 0u);
  EXPECT_STREQ(drop_reason_name(DropReason::kTxFull), "tx_full");
  EXPECT_EQ(drop_reason(drop_id(DropReason::kPuntUnhandled)).stage, DropStage::kAfterPunt);
}

TEST(DropReasons, AModuleListJoinsTheSharedSpaceOnceAndIsCountedPerPort) {
  const DropId first = drop_id(test_module::Drop::kFirst);
  EXPECT_GE(first, drop_id(DropReason::kPortDown) + 1u);  // after the engine's
  EXPECT_EQ(drop_id(test_module::Drop::kSecond), first + 1);
  EXPECT_EQ(drop_id(test_module::Drop::kFirst), first);  // registered once
  EXPECT_EQ(test_module::reason_count(test_module::Drop{}), 2u);
  EXPECT_STREQ(drop_reason_name(test_module::Drop::kSecond), "test_module_second");
  EXPECT_EQ(find_drop_reason("test_module_second"), first + 1);
  EXPECT_FALSE(find_drop_reason("no_such_reason"));

  std::vector<WorkerCounters> workers(2);
  workers[0].ports[1].drop(test_module::Drop::kFirst, 3);
  workers[1].ports[1].drop(test_module::Drop::kSecond);
  const PortTotals t = sum_port(workers, 1);
  EXPECT_EQ(t.drops_of(test_module::Drop::kFirst), 3u);
  EXPECT_EQ(t.ingress_drops(), 3u);  // the after-punt one accounts for a punted frame
  EXPECT_EQ(t.drops_total(), 4u);
}

TEST(DropReasons, NamesAreUniqueSnakeCaseAndDescribed) {
  drop_id(meridian::vxlan::Drop{});  // every module's list: a clash aborts here
  drop_id(meridian::qos::Drop{});
  drop_id(meridian::ptp::Drop{});
  std::set<std::string> names;
  for (DropId i = 0; i < drop_reason_count(); ++i) {
    std::string n = drop_reason_name(i);
    EXPECT_TRUE(names.insert(n).second) << n;
    for (char c : n) EXPECT_TRUE(islower(c) || c == '_') << n;
    EXPECT_GT(std::string(drop_reason(i).help).size(), 10u);
  }
  EXPECT_EQ(drop_reason_count(), names.size());
  // PTP's view lists its reasons without this prefix (ptp/service.cc).
  for (uint16_t r = 0; r < meridian::ptp::reason_count(meridian::ptp::Drop{}); ++r) {
    EXPECT_EQ(std::string(drop_reason_name(static_cast<meridian::ptp::Drop>(r))).substr(0, 4), "ptp_");
  }
  EXPECT_STREQ(drop_reason(static_cast<DropId>(kMaxDropReasons - 1)).name, "unknown");  // never registered
}

TEST(DropReasonsDeathTest, ANameTwiceIsAProgrammingErrorCaughtAtOnce) {
  EXPECT_DEATH(register_drop_reasons({{"tx_full", DropStage::kEgress, "a module reusing an engine name"}}),
               "declared twice");
}

namespace test_module {
#define TEST_MODULE_COUNTERS(X)                                                                 \
  X(sent, "sent", "meridian_test_frames_total", "result=sent", "Test frames, by result")       \
  X(lost, "lost", "meridian_test_frames_total", "result=lost", "")                             \
  X(retries, "retry_count", "meridian_test_retries_total", "", "Retries")
MERIDIAN_DEFINE_COUNTER_SET(Counters, TEST_MODULE_COUNTERS)
}  // namespace test_module

TEST(CounterSets, OneListGivesPerWorkerBlocksSumsJsonAndPrometheusFamilies) {
  EXPECT_EQ(alignof(test_module::Counters), kCacheLine);
  std::vector<test_module::Counters> workers(3);
  ++workers[0].sent;
  workers[1].sent.add(4);
  workers[2].lost.add(2);
  ++workers[2].retries;
  const auto t = sum_counters<test_module::Counters>(workers);
  EXPECT_EQ(t.sent, 5u);
  EXPECT_EQ(t.lost, 2u);
  EXPECT_EQ(counters_json<test_module::Counters>(t), (nlohmann::json{{"sent", 5}, {"lost", 2}, {"retry_count", 1}}));
  meridian::config::MetricsWriter out;
  write_counters<test_module::Counters>(out, t, {{"port", "a"}});
  EXPECT_EQ(out.text(),
            "# HELP meridian_test_frames_total Test frames, by result\n"
            "# TYPE meridian_test_frames_total counter\n"
            "meridian_test_frames_total{port=\"a\",result=\"sent\"} 5\n"
            "meridian_test_frames_total{port=\"a\",result=\"lost\"} 2\n"
            "# HELP meridian_test_retries_total Retries\n"
            "# TYPE meridian_test_retries_total counter\n"
            "meridian_test_retries_total{port=\"a\"} 1\n");
  // Several instances (a bridge domain each): every family once, every
  // instance's samples under it; and the figures since a baseline.
  test_module::Counters::Totals before;
  before.sent = 3;
  before.retries = 7;  // more than now (a counter reset): never below zero
  const auto since = t.minus(before);
  EXPECT_EQ(since.values(), (std::array<uint64_t, 3>{2, 2, 0}));
  meridian::config::MetricsWriter many;
  write_counter_instances<test_module::Counters>(many, {{{{"vni", "1"}}, t}, {{{"vni", "2"}}, since}});
  EXPECT_EQ(many.text(),
            "# HELP meridian_test_frames_total Test frames, by result\n"
            "# TYPE meridian_test_frames_total counter\n"
            "meridian_test_frames_total{vni=\"1\",result=\"sent\"} 5\n"
            "meridian_test_frames_total{vni=\"1\",result=\"lost\"} 2\n"
            "meridian_test_frames_total{vni=\"2\",result=\"sent\"} 2\n"
            "meridian_test_frames_total{vni=\"2\",result=\"lost\"} 2\n"
            "# HELP meridian_test_retries_total Retries\n"
            "# TYPE meridian_test_retries_total counter\n"
            "meridian_test_retries_total{vni=\"1\"} 1\n"
            "meridian_test_retries_total{vni=\"2\"} 0\n");
}
