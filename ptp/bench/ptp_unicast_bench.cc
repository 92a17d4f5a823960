// Unicast server capacity: one PtpInstance as grandmaster serving N unicast
// clients (negotiated through Signaling, as ptp4l's unicast clients ask),
// each taking Announce, Sync + Follow_Up and a Delay_Resp to its own
// Delay_Req once a second. Everything runs on one core through the real
// code: the instance's schedule, message encoding, UDPv4 framing with
// checksums, and decoding each client's Delay_Req frame. Reports, per N,
// the CPU time per simulated second (median of repetitions) and the clients
// one core serves at 1 Hz: N / (CPU seconds per simulated second).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "ptp/instance.h"
#include "ptp/transport.h"

using namespace meridian::ptp;

namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kTick = 10'000'000;  // the control lcore's tick

PeerAddress client_address(uint32_t n) {
  PeerAddress a;
  a.unicast = true;
  a.ip = {10, static_cast<uint8_t>(n >> 16), static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  a.mac = {2, 0, 0, static_cast<uint8_t>(n >> 16), static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  return a;
}

struct Server {
  PtpClock clock;
  std::unique_ptr<PtpInstance> ptp;
  std::array<uint8_t, 2048> frame{};
  std::array<uint8_t, 512> msg{};
  uint64_t frames = 0;

  explicit Server(uint32_t clients) {
    InstanceConfig c;
    c.node.defaults.identity = ClockIdentity{2, 0, 0, 0xff, 0xfe, 0, 0, 1};
    c.node.defaults.priority1 = 1;
    c.unicast_server = true;
    c.unicast.max_clients = clients;
    ptp = std::make_unique<PtpInstance>(c, clock);
    ptp->start(0);
    int64_t t = 0;
    for (; t < 10 * kSecond && ptp->node().state(1) != PortState::kMaster; t += kTick) run_tick(t);
    for (uint32_t i = 0; i < clients; ++i) {
      Message req;
      req.header.type = MessageType::kSignaling;
      req.header.source = PortIdentity{ClockIdentity{4, 0, 0, 0xff, 0xfe, static_cast<uint8_t>(i >> 16),
                                                     static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)},
                                       1};
      for (MessageType type : {MessageType::kAnnounce, MessageType::kSync, MessageType::kDelayResp}) {
        req.unicast.push_back(UnicastTlv{TlvType::kRequestUnicastTransmission, type, 0, 300, false});
      }
      ptp->receive(1, req, t, client_address(i), t);
      drain(t);
    }
  }
  // Frames what the instance queued, as the service does, and reports
  // transmit times so two-step Follow_Ups follow.
  void drain(int64_t now) {
    for (auto out = ptp->take_outgoing(); !out.empty(); out = ptp->take_outgoing()) {
      for (auto& tx : out) {
        FrameAddresses a;
        a.transport = Transport::kUdpIpv4;
        a.src_ip = {10, 255, 0, 1};
        if (tx.to.unicast) {
          a.dst_mac = tx.to.mac;
          a.dst_ip = tx.to.ip;
        } else {
          set_multicast_destination(a, false);
        }
        ptp->stamp_one_step(tx, now);
        const size_t n = encode(tx.message, msg);
        frames += build_frame(a, tx.event, {msg.data(), n}, frame) > 0;
        if (tx.cookie) ptp->tx_done(tx.cookie, now, now);
      }
    }
  }
  void run_tick(int64_t now) {
    ptp->tick(now);
    drain(now);
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<uint32_t> sizes{10'000, 50'000, 100'000, 200'000};
  int repetitions = 3;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--repetitions") && i + 1 < argc) repetitions = std::max(1, std::atoi(argv[++i]));
    if (!std::strcmp(argv[i], "--clients") && i + 1 < argc) sizes = {static_cast<uint32_t>(std::atoi(argv[++i]))};
  }
  std::printf("%10s %14s %14s %16s\n", "clients", "cpu_ms_per_s", "frames_per_s", "clients_per_core");
  for (uint32_t n : sizes) {
    Server s(n);
    // Every client's Delay_Req frame, built before the clock starts: on the
    // wire they arrive built; the server pays for finding and decoding them.
    using ReqFrame = std::array<uint8_t, 96>;
    std::vector<ReqFrame> req_frames(n);
    for (uint32_t c = 0; c < n; ++c) {
      Message req;
      req.header.type = MessageType::kDelayReq;
      req.header.flags = kFlagUnicast;
      req.header.source = PortIdentity{ClockIdentity{4, 0, 0, 0xff, 0xfe, static_cast<uint8_t>(c >> 16),
                                                     static_cast<uint8_t>(c >> 8), static_cast<uint8_t>(c)},
                                       1};
      FrameAddresses a;
      a.transport = Transport::kUdpIpv4;
      a.src_ip = client_address(c).ip;
      a.dst_ip = {10, 255, 0, 1};
      const size_t len = encode(req, s.msg);
      if (build_frame(a, true, {s.msg.data(), len}, req_frames[c]) == 0) return 1;
    }
    std::vector<double> cpu_ms;
    int64_t now = 20 * kSecond;
    for (int r = 0; r < repetitions; ++r) {
      const uint64_t frames_before = s.frames;
      const auto start = std::chrono::steady_clock::now();
      // One simulated second: 100 ticks; each tick, 1 % of the clients send
      // their Delay_Req.
      for (int tick = 0; tick < 100; ++tick, now += kTick) {
        s.run_tick(now);
        for (uint32_t c = static_cast<uint32_t>(tick); c < n; c += 100) {
          const ReqFrame& f = req_frames[c];
          PtpLocation loc;
          Message in;
          if (!locate(f, loc) || decode({f.data() + loc.offset, loc.length}, in) != DecodeError::kNone) return 1;
          s.ptp->receive(1, in, now, client_address(c), now);
        }
        s.drain(now);
      }
      cpu_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
      if (r == 0) std::fprintf(stderr, "n=%u frames in one simulated second: %llu\n", n,
                               static_cast<unsigned long long>(s.frames - frames_before));
    }
    std::sort(cpu_ms.begin(), cpu_ms.end());
    const double median = cpu_ms[cpu_ms.size() / 2];
    std::printf("%10u %14.1f %14.0f %16.0f\n", n, median, static_cast<double>(n) * 4 / (median / 1000.0),
                static_cast<double>(n) / (median / 1000.0));
  }
  return 0;
}
