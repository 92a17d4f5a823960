// Unicast negotiation, server side: grants, denials, renewals, cancels,
// expiry and the schedule of Announce and Sync per client.
#include <gtest/gtest.h>

#include <map>

#include "unicast.h"

using namespace meridian::ptp;

namespace {

constexpr int64_t kSecond = 1'000'000'000;

PeerAddress client_address(uint32_t n) {
  PeerAddress a;
  a.unicast = true;
  a.ip = {10, 0, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  a.mac = {2, 0, 0, 0, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  return a;
}

Message request(std::initializer_list<std::pair<MessageType, int8_t>> what, uint32_t duration = 60,
                TlvType type = TlvType::kRequestUnicastTransmission) {
  Message m;
  m.header.type = MessageType::kSignaling;
  m.header.source = PortIdentity{ClockIdentity{1, 2, 3, 0xff, 0xfe, 4, 5, 6}, 1};
  for (const auto& [t, log] : what) m.unicast.push_back(UnicastTlv{type, t, log, duration, false});
  return m;
}

}  // namespace

TEST(UnicastServer, GrantsWhatWasAskedAndServesItAtItsRate) {
  UnicastServer s;
  const auto reply = s.on_signaling(1, request({{MessageType::kAnnounce, 0}, {MessageType::kSync, -2},
                                                {MessageType::kDelayResp, -2}}),
                                    client_address(1), 0);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->header.type, MessageType::kSignaling);
  ASSERT_EQ(reply->unicast.size(), 3u);
  for (const auto& t : reply->unicast) {
    EXPECT_EQ(t.type, TlvType::kGrantUnicastTransmission);
    EXPECT_EQ(t.duration_s, 60u);
    EXPECT_TRUE(t.renewal_invited);
  }
  EXPECT_TRUE(s.delay_resp_granted(client_address(1), kSecond));
  std::map<UnicastKind, int> sent;
  for (int64_t t = 0; t < 10 * kSecond; t += kSecond / 100) s.poll(t, [&](uint32_t, UnicastKind k) { ++sent[k]; });
  EXPECT_EQ(sent[UnicastKind::kAnnounce], 10);  // 1 per s over 10 s
  EXPECT_EQ(sent[UnicastKind::kSync], 40);      // 4 per s
  EXPECT_EQ(sent.count(UnicastKind::kDelayResp), 0u);  // answered per Delay_Req, not scheduled
}

TEST(UnicastServer, DeniesTooFastRatesAndTooManyClients) {
  UnicastPolicy policy;
  policy.max_clients = 2;
  UnicastServer s(policy);
  const auto fast = s.on_signaling(1, request({{MessageType::kSync, -8}}), client_address(1), 0);
  ASSERT_TRUE(fast);
  EXPECT_EQ(fast->unicast[0].duration_s, 0u);
  s.on_signaling(1, request({{MessageType::kSync, 0}}), client_address(1), 0);
  s.on_signaling(1, request({{MessageType::kSync, 0}}), client_address(2), 0);
  const auto third = s.on_signaling(1, request({{MessageType::kSync, 0}}), client_address(3), 0);
  EXPECT_EQ(third->unicast[0].duration_s, 0u);
  EXPECT_EQ(s.denied(), 2u);
  EXPECT_EQ(s.active_clients(kSecond), 2u);
}

TEST(UnicastServer, RenewalKeepsTheScheduleCancelStopsItExpiryEndsIt) {
  UnicastServer s;
  s.on_signaling(1, request({{MessageType::kSync, 0}}, 10), client_address(1), 0);
  int syncs = 0;
  auto count = [&](uint32_t, UnicastKind) { ++syncs; };
  for (int64_t t = 0; t <= 5 * kSecond; t += kSecond / 10) s.poll(t, count);
  EXPECT_EQ(syncs, 6);  // at 0..5 s
  s.on_signaling(1, request({{MessageType::kSync, 0}}, 10), client_address(1), 5 * kSecond + 1);  // renewal
  for (int64_t t = 5 * kSecond + kSecond / 10; t <= 10 * kSecond; t += kSecond / 10) s.poll(t, count);
  EXPECT_EQ(syncs, 11);  // no double schedule after the renewal
  const auto ack = s.on_signaling(1, request({{MessageType::kSync, 0}}, 0, TlvType::kCancelUnicastTransmission),
                                  client_address(1), 10 * kSecond + 1);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->unicast[0].type, TlvType::kAcknowledgeCancelUnicastTransmission);
  for (int64_t t = 10 * kSecond; t <= 20 * kSecond; t += kSecond / 10) s.poll(t, count);
  EXPECT_EQ(syncs, 11);
  // A grant that is not renewed ends at its duration.
  s.on_signaling(1, request({{MessageType::kAnnounce, 0}}, 3), client_address(2), 20 * kSecond);
  int announces = 0;
  for (int64_t t = 20 * kSecond; t <= 30 * kSecond; t += kSecond / 10) {
    s.poll(t, [&](uint32_t, UnicastKind) { ++announces; });
  }
  EXPECT_EQ(announces, 3);
  EXPECT_EQ(s.active_clients(30 * kSecond), 0u);
}
