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
#include <set>
#include <thread>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>

#include "config/log.h"
#include "dataplane/eal.h"
#include "dataplane/module_catalog.h"
#include "dataplane/runtime.h"
#include "dataplane/time_base.h"
#include "vxlan/module.h"

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
  f.result.seconds = static_cast<double>(now - start) / static_cast<double>(dataplane::tsc_hz());
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
  dataplane::register_builtin_sections();
  std::string scenario, pcap, prefix, lcores_text;
  unsigned frame_size = 64, flows = 1024, trials = 5, burst = 32;
  double duration = 2.0;
  po::options_description desc("meridian-bench options");
  desc.add_options()
      ("help,h", "show this help")
      ("scenario", po::value(&scenario)->default_value("xconnect"),
       "xconnect | vxlan-encap | vxlan-decap | vxlan-her | mcast-fanout")
      ("macs", po::value<unsigned>()->default_value(1024), "vxlan: MAC addresses in the bridge domain")
      ("vteps", po::value<unsigned>()->default_value(8),
       "vxlan-her: remote VTEPs on the flood list; mcast-fanout: edges subscribed to the stream (1..256)")
      ("frame-size", po::value(&frame_size)->default_value(64), "frame size on the wire incl. FCS")
      ("replica-copy-max", po::value<unsigned>(),
       "vxlan-her, mcast-fanout: the VTEP's replica_copy_max_bytes (replicas of frames up to this size are copies; "
       "default: the config's default)")
      ("flows", po::value(&flows)->default_value(1024), "distinct flows in the generated capture")
      ("pcap", po::value(&pcap), "replay this capture instead of generating one")
      ("duration", po::value(&duration)->default_value(2.0), "seconds per measurement")
      ("trials", po::value(&trials)->default_value(5), "interleaved baseline/meridian trial pairs")
      ("burst", po::value(&burst)->default_value(32), "RX burst size (both loops)")
      ("worker-lcore", po::value<unsigned>()->default_value(1), "lcore running the measured loop")
      ("file-prefix", po::value(&prefix), "EAL file prefix (default: unique per process)")
      ("no-learning", "vxlan: bridge domain with MAC learning off (isolates the learning cost)")
      ("imix", "simple IMIX (64/570/1518 B, 7:4:1) instead of --frame-size")
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
  static const std::set<std::string> kScenarios = {"xconnect", "vxlan-encap", "vxlan-decap", "vxlan-her",
                                                   "mcast-fanout"};
  if (!kScenarios.count(scenario)) {
    std::cerr << "meridian-bench: unknown scenario '" << scenario
              << "' (available: xconnect, vxlan-encap, vxlan-decap, vxlan-her, mcast-fanout)\n";
    return 2;
  }
  const unsigned macs = vm["macs"].as<unsigned>(), vteps = vm["vteps"].as<unsigned>();
  if (macs == 0 || macs > 65536 || vteps == 0 || vteps > 256) {
    std::cerr << "meridian-bench: macs 1..65536, vteps 1..256\n";
    return 2;
  }
  const bool is_vxlan = scenario != "xconnect";
  // Head-end replication: every frame goes to `vteps` remote VTEPs (flooded,
  // or an (S,G) route with that many edges subscribed).
  const bool replicates = scenario == "vxlan-her" || scenario == "mcast-fanout";
  if (frame_size < 64 || frame_size > 9018 || trials == 0 || trials > 100 || duration <= 0 ||
      duration > 60 || burst == 0 || burst > dataplane::kMaxBurst) {
    std::cerr << "meridian-bench: frame-size 64..9018, trials 1..100, duration (0,60], burst 1..64\n";
    return 2;
  }
  const bool as_json = vm.count("json") > 0;
  const bool imix = vm.count("imix") > 0;
  // Average bytes on the wire per frame, for the Gbit/s figures.
  const double wire_bytes = imix ? (7 * 64 + 4 * 570 + 1518) / 12.0 : frame_size;
  log::set_level(log::Level::kWarn);
  const unsigned worker = vm["worker-lcore"].as<unsigned>();
  if (prefix.empty()) prefix = "mrd-bench-" + std::to_string(getpid());

  std::string tmpdir;
  if (pcap.empty()) {
    char tmpl[] = "/tmp/meridian-bench-XXXXXX";
    tmpdir = mkdtemp(tmpl);
    pcap = tmpdir + "/traffic.pcap";
    const std::string kind = scenario == "vxlan-decap"    ? "vxlan"
                             : scenario == "vxlan-her"    ? "broadcast"
                             : scenario == "mcast-fanout" ? "rtp-multicast"
                                                          : "plain";
    const std::string cmd = "/usr/bin/python3 " MERIDIAN_SOURCE_DIR "/bench/gen_traffic.py --frame-size " +
                            std::to_string(frame_size) + " --flows " + std::to_string(flows) + " --kind " + kind +
                            (is_vxlan ? " --macs " + std::to_string(macs) : std::string()) + (imix ? " --imix" : "") +
                            " -o " + pcap;
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
              {"xconnect", json::array()}};
  if (!is_vxlan) {
    doc["xconnect"] = {{{"a", "source"}, {"b", "sink"}}};
  } else {
    // encap/her: source = access, sink = underlay; decap: the other way round.
    // Next hops are static (net_null answers no ARP); FDB entries for the
    // generated destination MACs are static too, so every frame is known
    // unicast (encap/decap) or flooded (her), and sources are learned live.
    const bool decap = scenario == "vxlan-decap";
    const std::string access = decap ? "sink" : "source", underlay = decap ? "source" : "sink";
    json neighbors = json::array(), flood = json::array(), fdb = json::array();
    // mcast-fanout floods to one more VTEP than it subscribes: a frame that
    // flooded instead of following its route would show.
    const unsigned flood_vteps = scenario == "mcast-fanout" ? vteps + 1 : replicates ? vteps : 1;
    for (unsigned v = 0; v < flood_vteps; ++v) {
      const std::string ip = "10.1." + std::to_string((v + 2) >> 8) + "." + std::to_string((v + 2) & 0xff);
      char mac[18];
      std::snprintf(mac, sizeof mac, "02:00:00:00:%02x:%02x", 1 + (v >> 8), (v + 2) & 0xff);
      neighbors.push_back({{"ip", ip}, {"mac", mac}});
      flood.push_back(ip);
    }
    if (!replicates) {
      for (unsigned k = 0; k < macs; ++k) {
        char mac[18];
        std::snprintf(mac, sizeof mac, "02:00:00:01:%02x:%02x", k >> 8, k & 0xff);
        json e = {{"mac", mac}};
        if (decap) e["port"] = access;
        else e["vtep"] = "10.1.0.2";
        fdb.push_back(e);
      }
    }
    // The underlay carries the outer headers: a jumbo MTU there, as on real
    // fabrics, so full-size inner frames fit.
    // (Only when needed: bigger mbufs change the baseline too.)
    if (imix || frame_size - 4 + 50 > 1514) {
      for (auto& port : doc["ports"]) {
        if (port["name"] == underlay) port["mtu"] = 9000;
      }
    }
    doc["vxlan"] = {{"vtep", {{"interfaces", {{{"port", underlay}, {"ipv4", "10.1.0.1/16"}}}}, {"neighbors", neighbors}}},
                    {"bridge_domains", {{{"vni", 100},
                                         {"attachments", {{{"port", access}}}},
                                         {"max_fdb_entries", std::max(16384u, 4 * macs)},
                                         {"learning", vm.count("no-learning") == 0},
                                         // The remote VTEP(s) on the flood list: a bridge domain
                                         // decapsulates only from VTEPs it knows.
                                         {"flood", flood},
                                         {"static_fdb", fdb}}}}};
    if (vm.count("replica-copy-max")) doc["vxlan"]["vtep"]["replica_copy_max_bytes"] = vm["replica-copy-max"].as<unsigned>();
    if (scenario == "mcast-fanout") {
      // The gateway's ingress: the bridge domain snoops, and every edge is
      // subscribed to the stream's (S,G) (static subscriptions: no IGMP in
      // the measured path), so the VXLAN stage replicates by its route.
      json subs = json::array();
      for (unsigned v = 0; v < vteps; ++v) {
        subs.push_back({{"group", "239.1.1.1"}, {"source", "10.10.0.5"}, {"vtep", flood[v]}});
      }
      doc["multicast"] = {{"bridge_domains", {{{"vni", 100}, {"roles", {"ingress"}}, {"querier", {{"enabled", false}}},
                                                {"static_subscriptions", subs}}}}};
    }
  }
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
  const uint64_t hz = dataplane::tsc_hz();  // calibrated; DPDK's figure is reported beside it

  std::vector<Trial> base_trials, mer_trials;
  for (unsigned t = 0; t < trials; ++t) {
    IoForward fwd{src, sink, static_cast<uint16_t>(burst), rte_rdtsc() + static_cast<uint64_t>(duration * hz), {}};
    rte_eal_remote_launch(io_forward_main, &fwd, worker);
    rte_eal_wait_lcore(worker);
    base_trials.push_back(fwd.result);

    const uint64_t before = dp->port_totals(sink).tx_packets;
    const uint64_t start = rte_rdtsc();
    dp->start_workers();
    // The control lcore does what it does in meridiand: housekeeping every 10 ms
    // (learn events, aging, RCU reclamation).
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(duration);
    while (std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      dp->control_tick();
    }
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
  const json runtime = dp->runtime_json();
  json vxlan_counters = is_vxlan ? dp->module<vxlan::VxlanModule>()->control().bridge_domains_json(100)["bridge_domains"][0] : json();
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
              {"frame_size", imix ? json("imix") : json(frame_size)},
              {"flows", flows},
              {"trials", trials},
              {"duration_s", duration},
              {"burst", burst},
              {"mpps", m},
              {"gbps_l1", m * (wire_bytes + 20) * 8 / 1e3},
              {"gbps_l2", m * wire_bytes * 8 / 1e3},
              {"cycles_per_packet", median(cpp)},
              {"baseline_mpps", b},
              {"baseline_cycles_per_packet", median(base_cpp)},
              {"ratio", b > 0 ? m / b : 0},
              {"trial_mpps", mpps},
              {"trial_baseline_mpps", base_mpps},
              {"trial_ratios", ratios},
              {"drops", totals_src.drops_total() + totals_sink.drops_total()},
              {"source_rx_packets", totals_src.rx_packets},
              {"sink_tx_packets", totals_sink.tx_packets},
              {"tsc_hz", hz},
              {"runtime", runtime},
              {"dpdk_tsc_hz", dataplane::TimeBase::instance().dpdk_hz()}};
  if (is_vxlan) {
    out["bridge_domain"] = vxlan_counters;
    out["macs"] = macs;
    if (replicates) {
      // Output packets are replicas: the ratio compares replicas/s to the
      // baseline's forwarded packets/s.
      out["vteps"] = vteps;
      out["replicas_per_second"] = m * 1e6;
      out["input_mpps"] = m / vteps;
    }
  }
  if (as_json) {
    std::cout << out.dump() << "\n";
  } else {
    std::cout << std::fixed << std::setprecision(3)
              << "scenario " << scenario << ", " << (imix ? std::string("IMIX") : std::to_string(frame_size) + " B")
              << " frames, " << flows << " flows, "
              << trials << " x " << duration << " s trials, medians:\n\n"
              << "                 Mpps     Gbit/s(L1)  cycles/pkt\n"
              << "baseline io-fwd  " << std::setw(8) << b << "  " << std::setw(10) << b * (wire_bytes + 20) * 8 / 1e3
              << "  " << std::setw(10) << median(base_cpp) << "\n"
              << "meridian         " << std::setw(8) << m << "  " << std::setw(10) << m * (wire_bytes + 20) * 8 / 1e3
              << "  " << std::setw(10) << median(cpp) << "\n\n"
              << "ratio meridian/baseline: " << (b > 0 ? m / b : 0) << "   drops: " << out["drops"] << "\n\n"
              << "per stage (sampled, all trials)  cycles/pkt\n";
    for (const auto& st : runtime["stages"]) {
      std::cout << "  " << std::left << std::setw(31) << st["name"].get<std::string>() << std::right << std::setw(10)
                << st["cycles_per_packet"].get<double>() << "\n";
    }
  }
  return 0;
}
