// Google Benchmark micro-benchmarks for the per-packet kernels.
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include <rte_mbuf.h>

#include "dataplane/xconnect.h"
#include "net/packet_meta.h"
#include "net/packet_view.h"

using namespace meridian;
using namespace meridian::dataplane;

namespace {

std::vector<uint8_t> ipv4_udp_frame() {
  std::vector<uint8_t> f(60, 0);
  f[12] = 0x08;
  f[14] = 0x45;
  f[16] = 0;
  f[17] = 46;
  f[23] = net::kProtoUdp;
  f[34] = 0x12;
  f[36] = 0x12;
  f[37] = 0xb5;
  return f;
}

std::vector<uint8_t> vlan_ipv6_tcp_frame() {
  std::vector<uint8_t> f(18 + 40 + 20, 0);
  f[12] = 0x81;
  f[14] = 0x00;
  f[15] = 100;
  f[16] = 0x86;
  f[17] = 0xdd;
  f[18] = 0x60;
  f[23] = 20;
  f[24] = net::kProtoTcp;
  return f;
}

void BM_ParseIpv4Udp(benchmark::State& state) {
  auto f = ipv4_udp_frame();
  net::PacketView v;
  for (auto _ : state) {
    benchmark::DoNotOptimize(net::parse_packet(f.data(), f.size(), v));
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseIpv4Udp);

void BM_ParseVlanIpv6Tcp(benchmark::State& state) {
  auto f = vlan_ipv6_tcp_frame();
  net::PacketView v;
  for (auto _ : state) {
    benchmark::DoNotOptimize(net::parse_packet(f.data(), f.size(), v));
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseVlanIpv6Tcp);

/// The pipeline's packet metadata for a VXLAN frame (the decapsulation
/// path's first read), with and without its inner frame.
void BM_ParseMetaVxlan(benchmark::State& state) {
  const bool inner = state.range(0) != 0;
  auto f = ipv4_udp_frame();  // UDP to 4789
  f.resize(14 + 20 + 8 + 8 + 60, 0);
  f[17] = static_cast<uint8_t>(f.size() - 14);
  f[42] = net::kVxlanFlagI;
  std::memcpy(&f[50], ipv4_udp_frame().data(), 60);
  net::PacketMeta m;
  for (auto _ : state) {
    net::parse_meta(f.data(), f.size(), net::kDefaultVxlanPort, m);
    if (inner) net::parse_inner(f.data(), f.size(), m);
    benchmark::DoNotOptimize(m);
  }
  if (!m.has(net::kMetaVni) || (inner && m.inner.ip_version != 4)) state.SkipWithError("not parsed as VXLAN");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseMetaVxlan)->Arg(0)->Arg(1);

/// The default pipeline's stages over a 32-packet burst of plain mbuf
/// structs (no EAL needed: the stages only read headers and set verdicts).
void BM_XconnectPipelineBurst32(benchmark::State& state) {
  const bool punt_enabled = state.range(0) != 0;
  constexpr uint16_t kBurst = 32;
  std::vector<rte_mbuf> mbufs(kBurst);
  std::vector<std::vector<uint8_t>> data(kBurst, std::vector<uint8_t>(RTE_PKTMBUF_HEADROOM + 128, 0));
  auto frame = ipv4_udp_frame();
  PacketBatch batch;
  for (uint16_t i = 0; i < kBurst; ++i) {
    std::memset(&mbufs[i], 0, sizeof(rte_mbuf));
    mbufs[i].buf_addr = data[i].data();
    mbufs[i].data_off = RTE_PKTMBUF_HEADROOM;
    mbufs[i].data_len = static_cast<uint16_t>(frame.size());
    mbufs[i].pkt_len = static_cast<uint32_t>(frame.size());
    std::memcpy(data[i].data() + RTE_PKTMBUF_HEADROOM, frame.data(), frame.size());
    batch.pkts[i] = &mbufs[i];
  }
  ForwardingTables tables;
  tables.xconnect_peer[0] = 1;
  if (punt_enabled) tables.punt_ethertype.set(0x88cc);
  tables.punt_enabled = punt_enabled;
  const Pipeline pipeline = make_xconnect_pipeline();
  const StageContext ctx{tables, 0, 0};
  for (auto _ : state) {
    batch.reset(0, kBurst);
    for (const auto& stage : pipeline) {
      if (stage->active(tables)) stage->process(batch, ctx);  // as the engine runs them
    }
    benchmark::DoNotOptimize(batch.verdict);
  }
  state.SetItemsProcessed(state.iterations() * kBurst);
}
BENCHMARK(BM_XconnectPipelineBurst32)->Arg(0)->Arg(1);

}  // namespace

BENCHMARK_MAIN();
