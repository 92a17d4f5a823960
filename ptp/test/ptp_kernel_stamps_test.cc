// Kernel timestamps for PTP event frames: the stamp table, the fingerprint,
// and the filtered packet socket itself on the loopback interface (frames
// sent through a second packet socket appear once outgoing and once
// received, each with the kernel's CLOCK_REALTIME stamp).
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "ptp/kernel_stamps.h"

namespace meridian::ptp {
namespace {

int64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

TEST(KernelStampTable, HandsOutEachStampOnceByDirectionAndFingerprint) {
  KernelStampTable t;
  t.add(StampDirection::kReceived, 7, 100);
  t.add(StampDirection::kSent, 7, 200);
  EXPECT_EQ(t.take(StampDirection::kSent, 7), 200);
  EXPECT_EQ(t.take(StampDirection::kSent, 7), std::nullopt);
  EXPECT_EQ(t.take(StampDirection::kReceived, 8), std::nullopt);
  EXPECT_EQ(t.take(StampDirection::kReceived, 7), 100);
}

TEST(KernelStampTable, NewestCopyWinsAndOldestIsOverwritten) {
  KernelStampTable t;
  t.add(StampDirection::kReceived, 1, 10);
  t.add(StampDirection::kReceived, 1, 20);
  EXPECT_EQ(t.take(StampDirection::kReceived, 1), 20);
  for (int i = 0; i < 300; ++i) t.add(StampDirection::kReceived, 1000 + static_cast<uint64_t>(i), i);
  EXPECT_EQ(t.take(StampDirection::kReceived, 1), std::nullopt);   // pushed out
  EXPECT_EQ(t.take(StampDirection::kReceived, 1000), std::nullopt);
  EXPECT_EQ(t.take(StampDirection::kReceived, 1299), 299);
}

TEST(FrameFingerprint, CoversBytesAndLength) {
  std::vector<uint8_t> a(100, 0x55), b = a;
  EXPECT_EQ(frame_fingerprint(a), frame_fingerprint(b));
  b[99] ^= 1;
  EXPECT_NE(frame_fingerprint(a), frame_fingerprint(b));
  std::vector<uint8_t> longer(a);
  longer.push_back(0);
  EXPECT_NE(frame_fingerprint(a), frame_fingerprint(longer));
}

// Ethernet + PTP (L2) or Ethernet + IPv4 + UDP + PTP, for lo.
std::vector<uint8_t> ptp_frame(bool udp, uint16_t udp_port, uint8_t message_type, uint16_t sequence) {
  std::vector<uint8_t> f(14, 0);
  std::vector<uint8_t> ptp(44, 0);
  ptp[0] = message_type;
  ptp[1] = 2;
  ptp[3] = 44;
  ptp[30] = static_cast<uint8_t>(sequence >> 8);
  ptp[31] = static_cast<uint8_t>(sequence);
  if (!udp) {
    f[12] = 0x88;
    f[13] = 0xf7;
  } else {
    f[12] = 0x08;
    const uint16_t ip_len = static_cast<uint16_t>(20 + 8 + ptp.size());
    const uint8_t ip[20] = {0x45, 0, static_cast<uint8_t>(ip_len >> 8), static_cast<uint8_t>(ip_len), 0, 0, 0x40, 0, 64,
                            17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1};
    f.insert(f.end(), ip, ip + 20);
    const uint16_t udp_len = static_cast<uint16_t>(8 + ptp.size());
    const uint8_t u[8] = {static_cast<uint8_t>(udp_port >> 8), static_cast<uint8_t>(udp_port),
                          static_cast<uint8_t>(udp_port >> 8), static_cast<uint8_t>(udp_port),
                          static_cast<uint8_t>(udp_len >> 8), static_cast<uint8_t>(udp_len), 0, 0};
    f.insert(f.end(), u, u + 8);
  }
  f.insert(f.end(), ptp.begin(), ptp.end());
  return f;
}

TEST(KernelTimestampTap, StampsEventFramesBothWaysOnLoopback) {
  std::string error;
  auto tap = KernelTimestampTap::open("lo", error);
  if (!tap) GTEST_SKIP() << "needs CAP_NET_RAW: " << error;
  const int tx = socket(AF_PACKET, SOCK_RAW, 0);  // send only: protocol 0 receives nothing
  ASSERT_GE(tx, 0);
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = static_cast<int>(if_nametoindex("lo"));
  to.sll_halen = 6;
  auto send = [&](const std::vector<uint8_t>& f) {
    ASSERT_EQ(sendto(tx, f.data(), f.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof(to)),
              static_cast<ssize_t>(f.size()));
  };
  const auto l2_sync = ptp_frame(false, 0, 0x0, 1);
  const auto udp_delay_req = ptp_frame(true, 319, 0x1, 2);
  const auto l2_announce = ptp_frame(false, 0, 0xb, 3);      // general: filtered out
  const auto udp_follow_up = ptp_frame(true, 320, 0x8, 4);   // general port: filtered out
  const int64_t before = realtime_ns();
  for (const auto* f : {&l2_announce, &udp_follow_up, &l2_sync, &udp_delay_req}) send(*f);
  const int64_t after = realtime_ns();
  close(tx);

  for (const auto* f : {&l2_sync, &udp_delay_req}) {
    for (auto dir : {StampDirection::kSent, StampDirection::kReceived}) {
      auto stamp = tap->take(dir, frame_fingerprint(*f));
      ASSERT_TRUE(stamp.has_value()) << "direction " << static_cast<int>(dir);
      EXPECT_GE(*stamp, before);
      EXPECT_LE(*stamp, after);
    }
  }
  EXPECT_FALSE(tap->take(StampDirection::kReceived, frame_fingerprint(l2_announce)).has_value());
  EXPECT_FALSE(tap->take(StampDirection::kReceived, frame_fingerprint(udp_follow_up)).has_value());
  // Only the two event frames, each seen twice, passed the filter (other
  // traffic on lo during the test could only add PTP event frames).
  EXPECT_GE(tap->counters().frames, 4u);
  EXPECT_EQ(tap->counters().tx_used, 2u);
  EXPECT_EQ(tap->counters().rx_used, 2u);
  EXPECT_EQ(tap->counters().rx_missed, 2u);
}

// The transparent clock's own send: the stamp is the driver's
// (loopback_xmit's skb_tx_timestamp), between the packet tap's outgoing
// copy (dev_queue_xmit, earlier) and the receive stamp (netif_rx, later).
TEST(KernelStampedSender, ReturnsTheDriversStamp) {
  std::string error;
  auto tap = KernelTimestampTap::open("lo", error);
  if (!tap) GTEST_SKIP() << "needs CAP_NET_RAW: " << error;
  auto sender = KernelStampedSender::open("lo", error);
  ASSERT_TRUE(sender) << error;
  const auto sync = ptp_frame(true, 319, 0x0, 7);
  const int64_t before = realtime_ns();
  const auto sent = sender->send(sync);
  const int64_t after = realtime_ns();
  ASSERT_TRUE(sent.sent);
  ASSERT_TRUE(sent.stamp.has_value());
  EXPECT_GE(*sent.stamp, before);
  EXPECT_LE(*sent.stamp, after);
  const auto tapped = tap->take(StampDirection::kSent, frame_fingerprint(sync));
  const auto received = tap->take(StampDirection::kReceived, frame_fingerprint(sync));
  ASSERT_TRUE(tapped.has_value());
  ASSERT_TRUE(received.has_value());
  EXPECT_LE(*tapped, *sent.stamp);
  EXPECT_GE(*received, *sent.stamp);

  // A frame the kernel refuses (beyond lo's MTU) is reported unsent, and
  // the next send still finds its own stamp.
  std::vector<uint8_t> oversized(70000, 0);
  EXPECT_FALSE(sender->send(oversized).sent);
  const auto next = ptp_frame(false, 0, 0x1, 8);
  const auto again = sender->send(next);
  ASSERT_TRUE(again.sent);
  ASSERT_TRUE(again.stamp.has_value());
  EXPECT_GE(*again.stamp, *sent.stamp);
  EXPECT_EQ(sender->counters().sent, 2u);
  EXPECT_EQ(sender->counters().send_failed, 1u);
  EXPECT_EQ(sender->counters().stamped, 2u);
  EXPECT_EQ(KernelStampedSender::open("no-such-if0", error), nullptr);
  EXPECT_NE(error.find("no-such-if0"), std::string::npos);
}

TEST(KernelTimestampTap, NamesAMissingInterface) {
  std::string error;
  EXPECT_EQ(KernelTimestampTap::open("no-such-if0", error), nullptr);
  EXPECT_NE(error.find("no-such-if0"), std::string::npos);
}

}  // namespace
}  // namespace meridian::ptp
