// meridian-bench: whole-pipeline throughput on one worker lcore.
//
// Traffic comes from a net_pcap port replaying a generated capture forever
// (rx_pcap=FILE,infinite_rx=1) and leaves through a net_null sink. Each
// trial runs a plain io-forward loop (the baseline) and then Meridian's
// real worker loop on the same ports, queues and lcore; trials interleave
// so machine noise hits both alike. Figures are medians; the ratio is
// meridian / baseline from the same run.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <thread>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>

#include "eal.h"
#include "log.h"
#include "runtime.h"

namespace po = boost::program_options;
using namespace meridian;
using nlohmann::json;

#ifndef MERIDIAN_SOURCE_DIR
#define MERIDIAN_SOURCE_DIR "."
#endif

namespace {

struct Trial {
  uint64_t packets = 0;
  uint64_t cycles = 0;
  double seconds = 0;
  double mpps() const { return seconds > 0 ? packets / seconds / 1e6 : 0; }
  double cycles_per_packet() const { return packets ? static_cast<double>(cycles) / packets : 0; }
};

/// The baseline, like testpmd's io forwarding over a port pair: poll both
/// ports, send each burst out of the other port, free what did not fit.
/// Nothing else: no parsing, no counters, no drop accounting.
struct IoForward {
  uint16_t rx_port, tx_port;
  uint16_t burst;
  uint64_t stop_tsc;
  Trial result;
};

int io_forward_main(void* arg) {
  auto& f = *static_cast<IoForward*>(arg);
  rte_mbuf* pkts[dataplane::kMaxBurst];
  uint64_t forwarded = 0;
  const uint64_t start = rte_rdtsc();
  uint64_t now = start;
  const uint16_t rx[2] = {f.rx_port, f.tx_port}, tx[2] = {f.tx_port, f.rx_port};
  while (now < f.stop_tsc) {
    for (int dir = 0; dir < 2; ++dir) {
      const uint16_t n = rte_eth_rx_burst(rx[dir], 0, pkts, f.burst);
      if (n) {
        const uint16_t sent = rte_eth_tx_burst(tx[dir], 0, pkts, n);
        if (sent < n) rte_pktmbuf_free_bulk(pkts + sent, n - sent);
        forwarded += sent;
      }
    }
    now = rte_rdtsc();
  }
  f.result.packets = forwarded;
  f.result.cycles = now - start;
  f.result.seconds = static_cast<double>(now - start) / rte_get_tsc_hz();
  return 0;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string scenario, pcap, prefix, lcores_text;
  unsigned frame_size = 64, flows = 1024, trials = 5, burst = 32;
  double duration = 2.0;
  po::options_description desc("meridian-bench options");
  desc.add_options()
      ("help,h", "show this help")
      ("scenario", po::value(&scenario)->default_value("xconnect"), "scenario: xconnect")
      ("frame-size", po::value(&frame_size)->default_value(64), "frame size on the wire incl. FCS")
      ("flows", po::value(&flows)->default_value(1024), "distinct flows in the generated capture")
      ("pcap", po::value(&pcap), "replay this capture instead of generating one")
      ("duration", po::value(&duration)->default_value(2.0), "seconds per measurement")
      ("trials", po::value(&trials)->default_value(5), "interleaved baseline/meridian trial pairs")
      ("burst", po::value(&burst)->default_value(32), "RX burst size (both loops)")
      ("worker-lcore", po::value<unsigned>()->default_value(1), "lcore running the measured loop")
      ("file-prefix", po::value(&prefix), "EAL file prefix (default: unique per process)")
      ("json", "print one JSON object instead of a table");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "meridian-bench: " << e.what() << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  if (scenario != "xconnect") {
    std::cerr << "meridian-bench: unknown scenario '" << scenario << "' (available: xconnect)\n";
    return 2;
  }
  if (frame_size < 64 || frame_size > 9018 || trials == 0 || trials > 100 || duration <= 0 ||
      duration > 60 || burst == 0 || burst > dataplane::kMaxBurst) {
    std::cerr << "meridian-bench: frame-size 64..9018, trials 1..100, duration (0,60], burst 1..64\n";
    return 2;
  }
  const bool as_json = vm.count("json") > 0;
  log::set_level(log::Level::kWarn);
  const unsigned worker = vm["worker-lcore"].as<unsigned>();
  if (prefix.empty()) prefix = "mrd-bench-" + std::to_string(getpid());

  std::string tmpdir;
  if (pcap.empty()) {
    char tmpl[] = "/tmp/meridian-bench-XXXXXX";
    tmpdir = mkdtemp(tmpl);
    pcap = tmpdir + "/traffic.pcap";
    const std::string cmd = "/usr/bin/python3 " MERIDIAN_SOURCE_DIR "/bench/gen_traffic.py --frame-size " +
                            std::to_string(frame_size) + " --flows " + std::to_string(flows) + " -o " + pcap;
    if (std::system(cmd.c_str()) != 0) {
      std::cerr << "meridian-bench: traffic generation failed: " << cmd << "\n";
      return 1;
    }
  }

  // One worker: the main lcore controls, `worker` runs both loops in turn.
  json doc = {{"dataplane", {{"lcores", {0, worker}}, {"main_lcore", 0}, {"file_prefix", prefix},
                             {"burst_size", burst}, {"mbufs", 32768}, {"memory_mb", 1024}}},
              {"ports", {{{"name", "source"}, {"devargs", "net_pcap0,rx_pcap=" + pcap + ",infinite_rx=1"}},
                         {{"name", "sink"}, {"devargs", "net_null0,no-rx=1"}}}},
              {"xconnect", {{{"a", "source"}, {"b", "sink"}}}}};
  auto parsed = config::parse_config(doc);
  if (!parsed.config) {
    std::cerr << "meridian-bench: " << parsed.errors[0].path << ": " << parsed.errors[0].reason << "\n";
    return 2;
  }
  dataplane::redirect_dpdk_log();
  auto args = dataplane::build_eal_args(*parsed.config, false, "error");
  if (std::string err = dataplane::eal_init(args); !err.empty()) {
    std::cerr << "meridian-bench: " << err << "\n";
    return 1;
  }
  std::string error;
  auto dp = dataplane::Dataplane::create(*parsed.config, error);
  if (!dp) {
    std::cerr << "meridian-bench: " << error << "\n";
    rte_eal_cleanup();
    return 1;
  }
  const uint16_t src = *dp->port_id("source"), sink = *dp->port_id("sink");
  const uint64_t hz = rte_get_tsc_hz();

  std::vector<Trial> base_trials, mer_trials;
  for (unsigned t = 0; t < trials; ++t) {
    IoForward fwd{src, sink, static_cast<uint16_t>(burst), rte_rdtsc() + static_cast<uint64_t>(duration * hz), {}};
    rte_eal_remote_launch(io_forward_main, &fwd, worker);
    rte_eal_wait_lcore(worker);
    base_trials.push_back(fwd.result);

    const uint64_t before = dp->port_totals(sink).tx_packets;
    const uint64_t start = rte_rdtsc();
    dp->start_workers();
    std::this_thread::sleep_for(std::chrono::duration<double>(duration));
    dp->stop_workers();
    const uint64_t end = rte_rdtsc();
    Trial m;
    m.packets = dp->port_totals(sink).tx_packets - before;
    m.cycles = end - start;  // the worker busy-polls: every cycle of the lcore is spent on the loop
    m.seconds = static_cast<double>(end - start) / hz;
    mer_trials.push_back(m);
  }
  const auto totals_src = dp->port_totals(src);
  const auto totals_sink = dp->port_totals(sink);
  dp.reset();
  rte_eal_cleanup();
  if (!tmpdir.empty()) std::filesystem::remove_all(tmpdir);

  std::vector<double> mpps, base_mpps, cpp, base_cpp, ratios;
  for (unsigned t = 0; t < trials; ++t) {
    mpps.push_back(mer_trials[t].mpps());
    base_mpps.push_back(base_trials[t].mpps());
    cpp.push_back(mer_trials[t].cycles_per_packet());
    base_cpp.push_back(base_trials[t].cycles_per_packet());
    ratios.push_back(base_mpps.back() > 0 ? mpps.back() / base_mpps.back() : 0);
  }
  const double m = median(mpps), b = median(base_mpps);
  json out = {{"scenario", scenario},
              {"frame_size", frame_size},
              {"flows", flows},
              {"trials", trials},
              {"duration_s", duration},
              {"burst", burst},
              {"mpps", m},
              {"gbps_l1", m * (frame_size + 20) * 8 / 1e3},
              {"gbps_l2", m * frame_size * 8 / 1e3},
              {"cycles_per_packet", median(cpp)},
              {"baseline_mpps", b},
              {"baseline_cycles_per_packet", median(base_cpp)},
              {"ratio", b > 0 ? m / b : 0},
              {"trial_mpps", mpps},
              {"trial_baseline_mpps", base_mpps},
              {"trial_ratios", ratios},
              {"drops", totals_src.drops_total() + totals_sink.drops_total()},
              {"tsc_hz", hz}};
  if (as_json) {
    std::cout << out.dump() << "\n";
  } else {
    std::cout << std::fixed << std::setprecision(3)
              << "scenario " << scenario << ", " << frame_size << " B frames, " << flows << " flows, "
              << trials << " x " << duration << " s trials, medians:\n\n"
              << "                 Mpps     Gbit/s(L1)  cycles/pkt\n"
              << "baseline io-fwd  " << std::setw(8) << b << "  " << std::setw(10) << b * (frame_size + 20) * 8 / 1e3
              << "  " << std::setw(10) << median(base_cpp) << "\n"
              << "meridian         " << std::setw(8) << m << "  " << std::setw(10) << m * (frame_size + 20) * 8 / 1e3
              << "  " << std::setw(10) << median(cpp) << "\n\n"
              << "ratio meridian/baseline: " << (b > 0 ? m / b : 0) << "   drops: " << out["drops"] << "\n";
  }
  return 0;
}
