// Scheduler throughput: meridian's HTB (qos/htb.h) against DPDK's rte_sched,
// both in the same run, so the ratio is measured on the same machine state.
//
// Cases: 16, 1K and 64K leaves; all leaves backlogged (backlog:100) or only
// every 10th leaf (backlog:10). Per iteration both schedulers do the same
// work: dequeue a burst of kBurst packets, then enqueue exactly those packets
// again to the leaf (queue) they came from. The packets recirculate, so every
// backlogged leaf keeps its share of the population (kept from draining for
// good, never overflowing) and the scheduler alone decides the service order.
// One "item" = one packet dequeued + enqueued.
//
// HTB tree (depth 4: root -> level-1 -> level-2 -> leaves, fan-outs a*b*c):
//   - The simulated clock advances by the dequeued packets' wire time on a
//     100 Gbit/s link (64 B + 24 B overhead = 7.04 ns), so token refills,
//     mode changes and the timing wheel run as they would at line rate.
//   - Root: rate = ceil = 10 Tbit/s, never limiting.
//   - Every other class: ceil = 10 Tbit/s, rate = its share of the link
//     divided by `oversub` (leaves 100 Gbit/s / oversub / N):
//       oversub:1  rates carry the load (rte_sched's model: every queue has
//                  its rate). All backlogged, nobody borrows; with 10%
//                  backlogged the active leaves borrow the idle ones' share.
//       oversub:2  rates sum to half the link: with all leaves backlogged each
//                  gets about twice its rate, so every class keeps flipping
//                  between green and yellow and borrows from every level
//                  above (HTB's hardest path: a wheel wake and re-placements
//                  for about every second packet).
//     "borrow_frac" reports the share of packets sent on borrowed tokens.
//
// rte_sched (DPDK 22.11, librte_sched from libdpdk), one port at 100 Gbit/s,
// one subport, pipes matched to the leaves:
//   16 leaves -> 16 pipes x 1 queue, 1K -> 1024 pipes x 1 queue (best-effort
//   TC, queue 0), 64K -> 4096 pipes x 16 queues (TC 0..11 + 4 BE queues).
//   rte_sched has no borrowing between pipes, so pipe and subport rates are the
//   port rate (like HTB's ceil) and buckets are large: it is never
//   credit-limited, which is its fastest path. Its clock is the TSC.
//
// Run: build/bench/qos_bench [google-benchmark flags]; qos/bench/qos_ratio.py
// runs it with repetitions and prints the HTB / rte_sched ratios.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_sched.h>

#include "qos/htb.h"

namespace {

using meridian::qos::ClassSpec;
using meridian::qos::Dequeued;
using meridian::qos::HtbScheduler;
using meridian::qos::kNone;
using meridian::qos::kPicosPerSecond;
using meridian::qos::TreeSpec;

constexpr uint32_t kBurst = 32;
constexpr uint32_t kPktLen = 64;      // bytes, without the 24 B overhead
constexpr uint32_t kOverhead = 24;    // preamble + IFG + FCS, both schedulers
constexpr uint64_t kLinkBps = 100'000'000'000ULL;       // simulated link for HTB, port rate for rte_sched
constexpr uint64_t kRootBps = 10'000'000'000'000ULL;    // HTB root rate = ceil = every ceil
constexpr uint32_t kMaxPopulation = 1u << 18;           // packets queued over all leaves

bool g_eal_ok = false;

/// Packets queued per backlogged leaf: as many as fit kMaxPopulation, 4..64.
uint32_t per_leaf(uint32_t backlogged) {
  return std::clamp<uint32_t>(kMaxPopulation / backlogged, 4, 64);
}

std::vector<uint32_t> backlogged_leaves(uint32_t leaves, uint32_t backlog_pct) {
  std::vector<uint32_t> v;
  const uint32_t step = backlog_pct >= 100 ? 1 : 100 / backlog_pct;
  for (uint32_t l = 0; l < leaves; l += step) v.push_back(l);
  return v;
}

/// items_per_second (packets/s) plus "Mpps" and "ns_per_pkt" with values in
/// those units in the JSON (the console appends "/s" and "s" to rate counters).
void set_counters(benchmark::State& state, uint64_t packets, uint32_t backlogged, uint32_t population) {
  state.SetItemsProcessed(static_cast<int64_t>(packets));
  const double p = static_cast<double>(packets);
  state.counters["Mpps"] = benchmark::Counter(p * 1e-6, benchmark::Counter::kIsRate);
  state.counters["ns_per_pkt"] =
      benchmark::Counter(p * 1e-9, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["backlogged"] = backlogged;
  state.counters["queued"] = population;
}

// ---------------------------------------------------------------------------
// HTB

struct Shape {
  uint32_t a, b, c;  // level-1 classes, level-2 per level-1, leaves per level-2
};

Shape shape_for(uint32_t leaves) {
  const unsigned k = static_cast<unsigned>(std::countr_zero(leaves));  // leaves is a power of 2
  const unsigned ka = k / 3, kb = (k - ka) / 2, kc = k - ka - kb;
  return {1u << ka, 1u << kb, 1u << kc};
}

ClassSpec make_class(uint32_t parent, uint64_t rate, uint64_t ceil) {
  ClassSpec c;
  c.parent = parent;
  c.rate_bps = rate;
  c.ceil_bps = ceil;
  c.burst_bytes = meridian::qos::default_burst(rate);
  c.cburst_bytes = meridian::qos::default_burst(ceil);
  c.overhead = kOverhead;
  c.limit_packets = 1000;
  return c;
}

struct HtbCase {
  uint32_t leaves = 0, backlog_pct = 0, oversub = 1;
  uint32_t first_leaf = 0;
  uint32_t population = 0;
  std::vector<uint32_t> backlogged;  // class indices
  std::unique_ptr<HtbScheduler> sched;
  uint64_t now = 0;
  uint64_t wire_ps = 0;

  HtbCase(uint32_t n, uint32_t pct, uint32_t over) : leaves(n), backlog_pct(pct), oversub(over) {
    const Shape s = shape_for(n);
    const uint64_t leaf_rate = kLinkBps / oversub / n;
    TreeSpec tree;
    tree.classes.push_back(make_class(kNone, kRootBps, kRootBps));
    for (uint32_t i = 0; i < s.a; ++i) tree.classes.push_back(make_class(0, leaf_rate * s.b * s.c, kRootBps));
    for (uint32_t i = 0; i < s.a * s.b; ++i) {
      tree.classes.push_back(make_class(1 + i / s.b, leaf_rate * s.c, kRootBps));
    }
    first_leaf = static_cast<uint32_t>(tree.classes.size());
    for (uint32_t l = 0; l < n; ++l) {
      tree.classes.push_back(make_class(1 + s.a + l / s.c, leaf_rate, kRootBps));
    }
    tree.default_class = first_leaf;
    if (std::string err = meridian::qos::check_tree(tree); !err.empty()) {
      std::fprintf(stderr, "qos_bench: bad HTB tree: %s\n", err.c_str());
      std::abort();
    }
    for (uint32_t l : backlogged_leaves(n, pct)) backlogged.push_back(first_leaf + l);
    const uint32_t per = per_leaf(static_cast<uint32_t>(backlogged.size()));
    population = per * static_cast<uint32_t>(backlogged.size());
    sched = std::make_unique<HtbScheduler>(std::move(tree), population + kBurst, 0);
    wire_ps = (kPktLen + kOverhead) * 8 * kPicosPerSecond / kLinkBps;
    uintptr_t handle = 0;
    for (uint32_t r = 0; r < per; ++r) {
      for (uint32_t leaf : backlogged) sched->enqueue(leaf, handle++, kPktLen, false, now);
    }
    // Warm up into the steady state (buckets drained from their initial
    // bursts, classes flipping modes): a few rounds over the population.
    const uint64_t warm = std::clamp<uint64_t>(uint64_t{16} * population, 100'000, 2'000'000);
    for (uint64_t i = 0; i < warm / kBurst; ++i) {
      if (!step()) break;
    }
  }

  /// One burst, as the egress stage runs it: kBurst dequeues at one time,
  /// the clock then advancing by their wire time, and kBurst enqueues back
  /// to the same leaves. False if the
  /// scheduler had nothing to send (must not happen: root never limits).
  bool step() {
    Dequeued out[kBurst];
    const unsigned n = sched->dequeue_burst(now, out, kBurst);
    now += n * wire_ps;
    for (uint32_t i = 0; i < n; ++i) sched->enqueue(out[i].leaf, out[i].packet, out[i].length, false, now);
    return n == kBurst;
  }

  uint64_t sum_borrows() const {
    uint64_t b = 0;
    for (uint32_t l = first_leaf; l < first_leaf + leaves; ++l) b += sched->stats(l).borrows;
    return b;
  }
  uint64_t sum_drops() const {
    uint64_t d = 0;
    for (uint32_t l = first_leaf; l < first_leaf + leaves; ++l) d += sched->stats(l).drops;
    return d;
  }
};

std::unique_ptr<HtbCase> g_htb;

void BM_Htb(benchmark::State& state) {
  const auto leaves = static_cast<uint32_t>(state.range(0));
  const auto pct = static_cast<uint32_t>(state.range(1));
  const auto oversub = static_cast<uint32_t>(state.range(2));
  if (!g_htb || g_htb->leaves != leaves || g_htb->backlog_pct != pct || g_htb->oversub != oversub) {
    g_htb.reset();
    g_htb = std::make_unique<HtbCase>(leaves, pct, oversub);
  }
  HtbCase& h = *g_htb;
  const uint64_t borrows0 = h.sum_borrows();
  const uint64_t drops0 = h.sum_drops();
  uint64_t packets = 0;
  bool ok = true;
  for (auto _ : state) {
    ok &= h.step();
    packets += kBurst;
  }
  if (!ok) {
    state.SkipWithError("HTB dequeue returned nothing with backlogged leaves");
    return;
  }
  if (h.sum_drops() != drops0) {
    state.SkipWithError("HTB dropped packets (population not conserved)");
    return;
  }
  set_counters(state, packets, static_cast<uint32_t>(h.backlogged.size()), h.population);
  state.counters["borrow_frac"] =
      packets ? static_cast<double>(h.sum_borrows() - borrows0) / static_cast<double>(packets) : 0.0;
}

// ---------------------------------------------------------------------------
// rte_sched

struct RteCase {
  uint32_t leaves = 0, backlog_pct = 0;
  uint32_t population = 0, backlogged = 0;
  rte_mempool* pool = nullptr;
  rte_sched_port* port = nullptr;
  std::string error;
  uint64_t short_dequeues = 0;

  RteCase(uint32_t n, uint32_t pct) : leaves(n), backlog_pct(pct) {
    static unsigned generation = 0;
    ++generation;
    // Leaves -> (pipe, traffic class, queue). Up to 4096 pipes with one queue
    // each; beyond that 16 queues per pipe (all 13 TCs, 4 BE queues).
    const bool multi = n > 4096;
    const uint32_t pipes = multi ? n / RTE_SCHED_QUEUES_PER_PIPE : n;
    const uint64_t rate = kLinkBps / 8;  // bytes per second
    constexpr uint16_t kQsize = 64;      // >= per_leaf()

    rte_sched_subport_profile_params sp{};
    sp.tb_rate = rate;
    sp.tb_size = 1'000'000;
    for (auto& r : sp.tc_rate) r = rate;
    sp.tc_period = 10;

    rte_sched_port_params pp{};
    const std::string port_name = "qosbench_port" + std::to_string(generation);
    pp.name = port_name.c_str();
    pp.socket = std::max(0, static_cast<int>(rte_socket_id()));
    pp.rate = rate;
    pp.mtu = 1522;
    pp.frame_overhead = kOverhead;
    pp.n_subports_per_port = 1;
    pp.subport_profiles = &sp;
    pp.n_subport_profiles = 1;
    pp.n_max_subport_profiles = 1;
    pp.n_pipes_per_subport = pipes;

    rte_sched_pipe_params pipe{};
    pipe.tb_rate = rate;
    pipe.tb_size = 1'000'000;
    pipe.tc_period = 10;
    pipe.tc_ov_weight = 1;
    for (auto& w : pipe.wrr_weights) w = 1;

    rte_sched_subport_params sub{};
    sub.n_pipes_per_subport_enabled = pipes;
    for (uint32_t tc = 0; tc < RTE_SCHED_TRAFFIC_CLASSES_PER_PIPE; ++tc) {
      const bool used = multi || tc == RTE_SCHED_TRAFFIC_CLASS_BE;
      sub.qsize[tc] = used ? kQsize : 0;
      pipe.tc_rate[tc] = used ? rate : 0;
    }
    sub.pipe_profiles = &pipe;
    sub.n_pipe_profiles = 1;
    sub.n_max_pipe_profiles = 1;
    sub.cman_params = nullptr;

    port = rte_sched_port_config(&pp);
    if (!port) {
      error = "rte_sched_port_config failed";
      return;
    }
    if (int rc = rte_sched_subport_config(port, 0, &sub, 0); rc != 0) {
      error = "rte_sched_subport_config failed: " + std::to_string(rc);
      return;
    }
    for (uint32_t p = 0; p < pipes; ++p) {
      if (int rc = rte_sched_pipe_config(port, 0, p, 0); rc != 0) {
        error = "rte_sched_pipe_config failed: " + std::to_string(rc);
        return;
      }
    }

    const std::vector<uint32_t> bl = backlogged_leaves(n, pct);
    backlogged = static_cast<uint32_t>(bl.size());
    const uint32_t per = per_leaf(backlogged);
    population = per * backlogged;
    const std::string pool_name = "qosbench_pool" + std::to_string(generation);
    pool = rte_pktmbuf_pool_create(pool_name.c_str(), population + 2 * kBurst, 0, 0,
                                   RTE_PKTMBUF_HEADROOM + kPktLen, pp.socket);
    if (!pool) {
      error = std::string("mbuf pool: ") + rte_strerror(rte_errno);
      return;
    }
    std::vector<rte_mbuf*> pkts(population);
    if (rte_pktmbuf_alloc_bulk(pool, pkts.data(), population) != 0) {
      error = "mbuf alloc failed";
      return;
    }
    size_t k = 0;
    for (uint32_t r = 0; r < per; ++r) {
      for (uint32_t leaf : bl) {
        rte_mbuf* m = pkts[k++];
        m->data_len = static_cast<uint16_t>(kPktLen);
        m->pkt_len = kPktLen;
        uint32_t pipe_id = leaf, tc = RTE_SCHED_TRAFFIC_CLASS_BE, queue = 0;
        if (multi) {
          pipe_id = leaf / RTE_SCHED_QUEUES_PER_PIPE;
          const uint32_t slot = leaf % RTE_SCHED_QUEUES_PER_PIPE;
          tc = std::min<uint32_t>(slot, RTE_SCHED_TRAFFIC_CLASS_BE);
          queue = slot - tc;
        }
        rte_sched_port_pkt_write(port, m, 0, pipe_id, tc, queue, RTE_COLOR_GREEN);
      }
    }
    for (size_t i = 0; i < pkts.size(); i += kBurst) {
      const uint32_t cnt = static_cast<uint32_t>(std::min<size_t>(kBurst, pkts.size() - i));
      if (rte_sched_port_enqueue(port, &pkts[i], cnt) != static_cast<int>(cnt)) {
        error = "prefill enqueue dropped packets";  // dropped mbufs went back to the pool
        return;
      }
    }
    const uint64_t warm = std::clamp<uint64_t>(uint64_t{16} * population, 100'000, 2'000'000);
    for (uint64_t moved = 0; moved < warm;) {
      int got = step();
      if (got < 0) return;
      moved += static_cast<uint64_t>(got) + 1;  // +1: never spin forever on empty dequeues
    }
    short_dequeues = 0;
  }

  ~RteCase() {
    rte_sched_port_free(port);  // frees the queued mbufs back to the pool
    rte_mempool_free(pool);
  }

  /// One burst: dequeue up to kBurst, enqueue them back (their queue id is
  /// still in mbuf->hash.sched). Returns the packets moved, -1 on a drop.
  int step() {
    rte_mbuf* out[kBurst];
    const int n = rte_sched_port_dequeue(port, out, kBurst);
    if (n < static_cast<int>(kBurst)) ++short_dequeues;
    if (n > 0 && rte_sched_port_enqueue(port, out, static_cast<uint32_t>(n)) != n) {
      error = "rte_sched dropped re-enqueued packets";
      return -1;
    }
    return n;
  }
};

std::unique_ptr<RteCase> g_rte;

void BM_RteSched(benchmark::State& state) {
  if (!g_eal_ok) {
    state.SkipWithError("DPDK EAL not initialised");
    return;
  }
  const auto leaves = static_cast<uint32_t>(state.range(0));
  const auto pct = static_cast<uint32_t>(state.range(1));
  if (!g_rte || g_rte->leaves != leaves || g_rte->backlog_pct != pct) {
    g_rte.reset();
    g_rte = std::make_unique<RteCase>(leaves, pct);
  }
  RteCase& r = *g_rte;
  if (!r.error.empty()) {
    state.SkipWithError(r.error.c_str());
    return;
  }
  const uint64_t short0 = r.short_dequeues;
  uint64_t packets = 0;
  for (auto _ : state) {
    const int n = r.step();
    if (n < 0) break;
    packets += static_cast<uint64_t>(n);
  }
  if (!r.error.empty()) {
    state.SkipWithError(r.error.c_str());
    return;
  }
  set_counters(state, packets, r.backlogged, r.population);
  state.counters["short_deq_frac"] =
      static_cast<double>(r.short_dequeues - short0) / static_cast<double>(std::max<int64_t>(1, state.iterations()));
}

bool init_eal(const char* argv0) {
  const std::string prefix = "qosbench_" + std::to_string(getpid());
  std::vector<std::string> args = {argv0, "--no-huge", "-m", "512", "--file-prefix", prefix,
                                   "-l", "0", "--log-level=3", "--no-pci"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (rte_eal_init(static_cast<int>(args.size()), argv.data()) < 0) {
    std::fprintf(stderr, "qos_bench: rte_eal_init failed (%s); rte_sched cases will report errors\n",
                 rte_strerror(rte_errno));
    return false;
  }
  rte_openlog_stream(stderr);  // keep DPDK's messages out of the benchmark's stdout
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  g_eal_ok = init_eal(argv[0]);
  // Interleave the two schedulers per case, so both see the same machine state.
  for (int64_t leaves : {16, 1024, 65536}) {
    for (int64_t pct : {100, 10}) {
      for (int64_t oversub : {1, 2}) {
        benchmark::RegisterBenchmark("BM_Htb", BM_Htb)
            ->ArgNames({"leaves", "backlog", "oversub"})
            ->Args({leaves, pct, oversub});
      }
      benchmark::RegisterBenchmark("BM_RteSched", BM_RteSched)->ArgNames({"leaves", "backlog"})->Args({leaves, pct});
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  g_htb.reset();
  g_rte.reset();
  if (g_eal_ok) {
    // rte_eal_cleanup leaves this process's runtime directory (config and
    // fbarray files, some MB on tmpfs) behind; it is ours alone (pid prefix).
    const std::string runtime_dir = rte_eal_get_runtime_dir();
    rte_eal_cleanup();
    if (runtime_dir.find("qosbench_") != std::string::npos) {
      std::error_code ec;
      std::filesystem::remove_all(runtime_dir, ec);
    }
  }
  return 0;
}
