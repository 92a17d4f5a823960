// Shared fixture of the pipeline tests: an in-process EAL (--no-huge) with
// the real worker loop on lcore 1, net_ring ports the tests feed and drain,
// frame builders and the counters' accessors. Every pipeline test file
// includes it; the EAL environment is registered once, in pipeline_test.cc.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "config/log.h"
#include "dataplane/eal.h"
#include "dataplane/module_catalog.h"
#include "dataplane/runtime.h"
#include "vxlan/module.h"
#include "vxlan/wire.h"

namespace meridian::pipeline_test {

using namespace std::chrono_literals;
using dataplane::DropReason;
using nlohmann::json;


inline rte_mempool* g_test_pool = nullptr;  // mbufs the test injects
inline int g_unique = 0;

class EalEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    dataplane::register_builtin_sections();
    log::set_level(log::Level::kWarn);
    dataplane::redirect_dpdk_log();
    const std::string prefix = "mrd-pipe-" + std::to_string(getpid());
    // Three lcores on two CPUs: lcores 1 and 2 share CPU 1, so two-worker
    // layouts can be tested on a 2-core machine (slowly, but for real).
    // 1 GiB: a VTEP's route table holds rte_lpm's 64 MiB tbl24 in one piece,
    // which 512 MiB, fragmented by the tests before, could not always give.
    std::vector<std::string> args = {"pipeline_test", "--lcores", "0@0,1@1,2@1", "--main-lcore", "0", "--no-huge",
                                     "-m", "1024", "--file-prefix", prefix, "--log-level=4"};
    // A NIC with a PTP clock, when the machine has one, for PtpHardware.
    if (const char* hw = std::getenv("MERIDIAN_PTP_HW_DEVARGS")) {
      args.insert(args.end(), {"-a", hw});
    } else {
      args.push_back("--no-pci");
    }
    ASSERT_EQ(dataplane::eal_init(args), "");
    g_test_pool = rte_pktmbuf_pool_create("test_pool", 65535, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    ASSERT_NE(g_test_pool, nullptr);
  }
  void TearDown() override {
    rte_mempool_free(g_test_pool);
    rte_eal_cleanup();
  }
};

struct RingPort {
  std::string name;      // config name
  std::string ethdev;    // DPDK device name
  rte_ring* rx = nullptr;                   // RX queue 0
  rte_ring* tx[2] = {nullptr, nullptr};     // worker 0's queue, next queue
  std::vector<rte_ring*> rxs, txs;          // all queues
};

/// A net_ring port: `nrx` RX rings, `ntx` TX rings (one per worker + control).
inline RingPort make_ring_port(const std::string& name, unsigned tx_ring_size = 16384, unsigned nrx = 1,
                        unsigned ntx = 2) {
  RingPort p;
  p.name = name;
  const std::string base = name + std::to_string(++g_unique);
  for (unsigned q = 0; q < nrx; ++q) {
    p.rxs.push_back(rte_ring_create((base + "_r" + std::to_string(q)).c_str(), 16384, 0, 0));
  }
  for (unsigned q = 0; q < ntx; ++q) {
    p.txs.push_back(rte_ring_create((base + "_t" + std::to_string(q)).c_str(), q == 0 ? tx_ring_size : 16384, 0, 0));
  }
  p.rx = p.rxs[0];
  p.tx[0] = p.txs[0];
  p.tx[1] = ntx > 1 ? p.txs[1] : nullptr;
  int id = rte_eth_from_rings(base.c_str(), p.rxs.data(), nrx, p.txs.data(), ntx, 0);
  EXPECT_GE(id, 0);
  char devname[RTE_ETH_NAME_MAX_LEN];
  rte_eth_dev_get_name_by_port(static_cast<uint16_t>(id), devname);
  p.ethdev = devname;
  return p;
}

inline void free_ring_port(RingPort& p) {
  std::vector<rte_ring*> all = p.rxs;
  all.insert(all.end(), p.txs.begin(), p.txs.end());
  for (rte_ring* r : all) {
    void* m;
    while (rte_ring_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    rte_ring_free(r);
  }
}

inline json config_for(const std::vector<RingPort>& ports, const json& xconnect, const json& punt = json::array()) {
  json doc = {{"dataplane", {{"lcores", {0, 1}}, {"main_lcore", 0}, {"mbufs", 32768}}},
              {"ports", json::array()},
              {"xconnect", xconnect},
              {"punt", {{"ethertypes", punt}}}};
  for (const auto& p : ports) {
    doc["ports"].push_back({{"name", p.name}, {"devargs", p.ethdev}, {"rx_descriptors", 64}, {"tx_descriptors", 64}});
  }
  return doc;
}

/// The running VTEP's control side.
inline vxlan::VxlanControl& vxlan_of(dataplane::Dataplane& dp) { return dp.module<vxlan::VxlanModule>()->control(); }

inline std::unique_ptr<dataplane::Dataplane> make_dataplane(const json& doc) {
  auto parsed = config::parse_config(doc);
  EXPECT_TRUE(parsed.config) << (parsed.errors.empty() ? "" : parsed.errors[0].path + ": " + parsed.errors[0].reason);
  if (!parsed.config) return nullptr;
  std::string error;
  auto dp = dataplane::Dataplane::create(*parsed.config, error);
  EXPECT_TRUE(dp) << error;
  return dp;
}

/// A frame with a recognisable, sequence-dependent body.
inline std::vector<uint8_t> frame(uint32_t seq, size_t len, uint16_t ethertype = 0x0800) {
  std::vector<uint8_t> f(len);
  std::mt19937 rng(seq);
  for (auto& b : f) b = static_cast<uint8_t>(rng());
  f[12] = static_cast<uint8_t>(ethertype >> 8);
  f[13] = static_cast<uint8_t>(ethertype);
  if (len >= 18) std::memcpy(&f[14], &seq, 4);
  return f;
}

inline rte_mbuf* to_mbuf(const std::vector<uint8_t>& bytes) {
  rte_mbuf* m = rte_pktmbuf_alloc(g_test_pool);
  if (!m) return nullptr;
  std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(bytes.size())), bytes.data(), bytes.size());
  return m;
}

inline std::vector<uint8_t> bytes_of(rte_mbuf* m) {
  std::vector<uint8_t> out(rte_pktmbuf_pkt_len(m));
  // rte_pktmbuf_read copies only when the data is not contiguous.
  const auto* p = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, out.size(), out.data()));
  if (p != out.data()) std::memcpy(out.data(), p, out.size());
  return out;
}

inline void inject(RingPort& p, const std::vector<std::vector<uint8_t>>& frames) {
  for (const auto& f : frames) ASSERT_EQ(rte_ring_enqueue(p.rx, to_mbuf(f)), 0);
}

inline std::vector<std::vector<uint8_t>> collect(rte_ring* r, size_t want, dataplane::Dataplane* dp = nullptr,
                                          std::chrono::milliseconds timeout = 5000ms) {
  std::vector<std::vector<uint8_t>> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < want && std::chrono::steady_clock::now() < deadline) {
    void* m;
    if (rte_ring_dequeue(r, &m) == 0) {
      out.push_back(bytes_of(static_cast<rte_mbuf*>(m)));
      rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    } else {
      if (dp) dp->control_tick();
      std::this_thread::sleep_for(100us);
    }
  }
  return out;
}

template <class Reason>
uint64_t drops(const dataplane::PortTotals& t, Reason r) {
  return t.drops_of(r);
}

inline config::MacAddress mac_of(const char* s) { return *config::parse_mac(s); }

inline constexpr uint8_t kVtepMac[6] = {0x02, 0, 0, 0, 0x01, 0x02};
inline constexpr uint8_t kVtep2Mac[6] = {0x02, 0, 0, 0, 0x01, 0x03};

inline std::vector<uint8_t> arp_request_from(const uint8_t* mac, uint8_t last_octet) {
  std::vector<uint8_t> f(vxlan::kArpFrame);
  const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, zero[6] = {};
  const uint8_t sender_ip[4] = {10, 1, 0, last_octet}, target_ip[4] = {10, 1, 0, 1};
  vxlan::build_arp(f.data(), vxlan::kArpRequest, bcast, mac, sender_ip, zero, target_ip);
  return f;
}

/// A VXLAN frame from 10.1.0.`from` to `dst_ip` carrying `inner`.
inline std::vector<uint8_t> vxlan_frame(uint8_t from, const uint8_t* vtep_mac, const uint8_t* our_mac, uint32_t vni,
                                 const std::vector<uint8_t>& inner, uint8_t dst_last = 1, bool i_flag = true) {
  vxlan::OuterTemplate t;
  const uint8_t src[4] = {10, 1, 0, from}, dst[4] = {10, 1, 0, dst_last};
  vxlan::build_outer_template(t, {our_mac, vtep_mac, src, dst, false, 4789, 64});
  std::vector<uint8_t> f(vxlan::kOuterV4 + inner.size());
  vxlan::write_outer(f.data(), t, vni, 50000, 0, static_cast<uint16_t>(inner.size()));
  if (!i_flag) f[vxlan::outer_udp_offset(false) + vxlan::kUdpHeader] = 0;
  std::copy(inner.begin(), inner.end(), f.begin() + vxlan::kOuterV4);
  return f;
}

inline std::vector<uint8_t> eth_frame(const char* dst, const char* src, uint32_t seq, size_t len) {
  auto f = frame(seq, len, 0x88b5);
  auto d = mac_of(dst), s = mac_of(src);
  std::copy(d.bytes.begin(), d.bytes.end(), f.begin());
  std::copy(s.bytes.begin(), s.bytes.end(), f.begin() + 6);
  return f;
}

inline std::vector<rte_mbuf*> take(rte_ring* r, size_t want, dataplane::Dataplane* dp) {
  std::vector<rte_mbuf*> out;
  const auto deadline = std::chrono::steady_clock::now() + 5000ms;
  while (out.size() < want && std::chrono::steady_clock::now() < deadline) {
    void* m;
    if (rte_ring_dequeue(r, &m) == 0) {
      out.push_back(static_cast<rte_mbuf*>(m));
    } else {
      dp->control_tick();
      std::this_thread::sleep_for(100us);
    }
  }
  return out;
}

// --- net_pcap: a capture file in, a capture file out. ---

inline void write_pcap(const std::string& path, const std::vector<std::vector<uint8_t>>& frames) {
  std::ofstream out(path, std::ios::binary);
  const uint32_t hdr[] = {0xa1b2c3d4, 0x00040002, 0, 0, 65535, 1};
  out.write(reinterpret_cast<const char*>(hdr), 4 + 4 + 4 + 4 + 4 + 4 - 0);
  for (const auto& f : frames) {
    const uint32_t rec[] = {0, 0, static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size())};
    out.write(reinterpret_cast<const char*>(rec), sizeof rec);
    out.write(reinterpret_cast<const char*>(f.data()), static_cast<std::streamsize>(f.size()));
  }
}

inline std::vector<std::vector<uint8_t>> read_pcap(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::vector<uint8_t>> frames;
  in.seekg(24);
  uint32_t rec[4];
  while (in.read(reinterpret_cast<char*>(rec), sizeof rec)) {
    std::vector<uint8_t> f(rec[2]);
    in.read(reinterpret_cast<char*>(f.data()), rec[2]);
    frames.push_back(std::move(f));
  }
  return frames;
}

}  // namespace meridian::pipeline_test
