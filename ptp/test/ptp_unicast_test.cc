// Unicast negotiation, server side: grants, denials, renewals, cancels,
// expiry and the schedule of Announce and Sync per client.
#include <gtest/gtest.h>

#include <map>

#include "ptp/unicast.h"

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
  EXPECT_EQ(s.denied(UnicastDenial::kRateTooFast), 1u);
  EXPECT_EQ(s.denied(UnicastDenial::kServerFull), 1u);
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

// Regression (hardening issue): a peer's logInterMessagePeriod of 34 made
// ldexp(1e9, 34) overflow int64 and poll() never returned. Every period a
// peer can send is now either granted inside the policy or denied, with a
// counted reason, and poll() always returns.
TEST(UnicastServer, EveryPeriodAPeerCanAskIsGrantedInPolicyOrDeniedAndPollEnds) {
  UnicastServer s;
  uint32_t n = 0;
  std::map<int, uint32_t> granted;
  for (int log = -128; log <= 127; ++log) {
    for (MessageType t : {MessageType::kAnnounce, MessageType::kSync, MessageType::kDelayResp}) {
      const auto reply = s.on_signaling(1, request({{t, static_cast<int8_t>(log)}}, 0xffffffffu), client_address(++n), 0);
      ASSERT_TRUE(reply);
      ASSERT_EQ(reply->unicast.size(), 1u);
      const bool in_policy = log <= 4 && log >= (t == MessageType::kAnnounce ? -3 : -7);
      EXPECT_EQ(reply->unicast[0].duration_s, in_policy ? 300u : 0u) << "log " << log;  // capped at max_duration_s
      if (in_policy) ++granted[log];
    }
  }
  EXPECT_EQ(s.denied(UnicastDenial::kRateTooSlow), 3u * (127 - 4));
  EXPECT_EQ(s.denied(UnicastDenial::kRateTooFast), (-3 + 128) + 2u * (-7 + 128));
  // Poll over a whole grant: bounded work, every call returns.
  uint64_t served = 0;
  for (int64_t t = 0; t <= 400 * kSecond; t += kSecond / 8) s.poll(t, [&](uint32_t, UnicastKind) { ++served; });
  EXPECT_GT(served, 0u);
  EXPECT_LT(served, 5'000'000u);
  EXPECT_EQ(s.active_clients(400 * kSecond), 0u);  // 300 s grants have lapsed
}

TEST(UnicastServer, NamesEachDenialReason) {
  UnicastServer s;
  auto denied = [&](Message m, uint32_t who) {
    const auto r = s.on_signaling(1, m, client_address(who), 0);
    return r && r->unicast.size() == 1 && r->unicast[0].duration_s == 0;
  };
  EXPECT_TRUE(denied(request({{MessageType::kManagement, 0}}), 1));
  EXPECT_TRUE(denied(request({{MessageType::kSync, 34}}), 2));
  EXPECT_TRUE(denied(request({{MessageType::kSync, -8}}), 3));
  EXPECT_TRUE(denied(request({{MessageType::kSync, 0}}, 0), 4));
  EXPECT_EQ(s.denied(UnicastDenial::kNotNegotiable), 1u);
  EXPECT_EQ(s.denied(UnicastDenial::kRateTooSlow), 1u);
  EXPECT_EQ(s.denied(UnicastDenial::kRateTooFast), 1u);
  EXPECT_EQ(s.denied(UnicastDenial::kZeroDuration), 1u);
  EXPECT_EQ(s.denied(), 4u);
  EXPECT_EQ(s.size(), 0u);  // a denied request takes no client slot
  EXPECT_STREQ(unicast_denial_name(UnicastDenial::kRateTooSlow), "rate_too_slow");
}

TEST(UnicastServer, GrantsStayWithinTheMessageBudgetAndTlvCount) {
  UnicastPolicy policy;
  policy.max_messages_per_second = 10;  // five Sync grants at 1/s (each with its Follow_Up)
  UnicastServer s(policy);
  for (uint32_t c = 1; c <= 5; ++c) {
    EXPECT_EQ(s.on_signaling(1, request({{MessageType::kSync, 0}}), client_address(c), 0)->unicast[0].duration_s, 60u);
  }
  EXPECT_DOUBLE_EQ(s.load(), 10.0);
  EXPECT_EQ(s.on_signaling(1, request({{MessageType::kSync, 0}}), client_address(6), 0)->unicast[0].duration_s, 0u);
  EXPECT_EQ(s.denied(UnicastDenial::kRateBudget), 1u);
  // Slowing one client down makes room; a renewal at the same rate is not new load.
  EXPECT_EQ(s.on_signaling(1, request({{MessageType::kSync, 1}}), client_address(1), 0)->unicast[0].duration_s, 60u);
  EXPECT_EQ(s.on_signaling(1, request({{MessageType::kSync, 0}}), client_address(2), 0)->unicast[0].duration_s, 60u);
  EXPECT_DOUBLE_EQ(s.load(), 9.0);
  // A cancel returns its share; so does expiry, once the schedule sees it.
  s.on_signaling(1, request({{MessageType::kSync, 0}}, 0, TlvType::kCancelUnicastTransmission), client_address(3), 0);
  EXPECT_DOUBLE_EQ(s.load(), 7.0);
  s.poll(61 * kSecond, [](uint32_t, UnicastKind) {});
  EXPECT_DOUBLE_EQ(s.load(), 0.0);
  // One Signaling message with 40 TLVs gets 8 answers; the reply still encodes.
  Message many;
  many.header.type = MessageType::kSignaling;
  for (int i = 0; i < 40; ++i) many.unicast.push_back(UnicastTlv{TlvType::kRequestUnicastTransmission, MessageType::kAnnounce, 0, 60, false});
  const auto reply = s.on_signaling(1, many, client_address(7), 62 * kSecond);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->unicast.size(), 8u);
  EXPECT_EQ(s.denied(UnicastDenial::kTooManyTlvs), 32u);
}

// A full server does not stay full of clients that left: spoofed one-shot
// requests cannot lock out real clients for longer than their grants.
TEST(UnicastServer, ReclaimsTheSlotsOfClientsWhoseGrantsLapsed) {
  UnicastPolicy policy;
  policy.max_clients = 100;
  UnicastServer s(policy);
  for (uint32_t c = 1; c <= 100; ++c) s.on_signaling(1, request({{MessageType::kSync, 0}}, 10), client_address(c), 0);
  const auto full = s.on_signaling(1, request({{MessageType::kSync, 0}}, 10), client_address(500), 5 * kSecond);
  EXPECT_EQ(full->unicast[0].duration_s, 0u);
  EXPECT_EQ(s.denied(UnicastDenial::kServerFull), 1u);
  int syncs_to_new = 0;
  const auto later = s.on_signaling(1, request({{MessageType::kSync, 0}}, 10), client_address(501), 11 * kSecond);
  ASSERT_EQ(later->unicast[0].duration_s, 10u);
  EXPECT_EQ(s.reclaimed(), 1u);
  EXPECT_EQ(s.size(), 100u);
  EXPECT_EQ(s.active_clients(11 * kSecond), 1u);
  // The reused slot serves the new client only: the old client's schedule is stale.
  for (int64_t t = 11 * kSecond; t <= 15 * kSecond; t += kSecond / 10) {
    s.poll(t, [&](uint32_t i, UnicastKind) {
      if (s.client(i).address == client_address(501)) ++syncs_to_new;
      else ADD_FAILURE() << "served a lapsed client";
    });
  }
  EXPECT_EQ(syncs_to_new, 5);
}

// ---- client side: UnicastRequester against the real UnicastServer --------------

namespace {

// Two masters (servers) and one client, exchanging Signaling in simulated
// time: each request reaches its server at once, and the answer comes back.
struct Negotiation {
  std::vector<UnicastServer> servers;
  UnicastRequester client;
  PeerAddress me = client_address(99);
  std::vector<bool> reachable;
  std::map<std::pair<size_t, TlvType>, int> seen;  // (master, TLV type) -> count sent by the client

  Negotiation(size_t n, const UnicastRequestPolicy& p, const UnicastPolicy& server_policy = {})
      : servers(n, UnicastServer(server_policy)), client(masters(n), p), reachable(n, true) {}
  static std::vector<PeerAddress> masters(size_t n) {
    std::vector<PeerAddress> v;
    for (size_t i = 0; i < n; ++i) v.push_back(client_address(static_cast<uint32_t>(i + 1)));
    return v;
  }
  void step(int64_t now) {
    for (auto& out : client.poll(now)) {
      Message m;
      m.header.type = MessageType::kSignaling;
      m.header.source = PortIdentity{ClockIdentity{9, 9, 9, 0xff, 0xfe, 9, 9, 9}, 1};
      m.unicast = out.tlvs;
      for (const auto& t : out.tlvs) ++seen[{out.master, t.type}];
      if (!reachable[out.master]) continue;
      const auto reply = servers[out.master].on_signaling(1, m, me, now);
      if (reply) client.on_signaling(*reply, client.masters()[out.master].address, now);
    }
  }
  void run(int64_t from, int64_t to) {
    for (int64_t t = from; t <= to; t += kSecond / 4) step(t);
  }
};

}  // namespace

TEST(UnicastRequester, AsksEveryMasterForAnnounceAndTheSelectedOneForSyncAndDelayResp) {
  UnicastRequestPolicy p;
  p.log_sync = -3;
  p.duration_s = 60;
  Negotiation n(2, p);
  n.run(0, kSecond);
  for (size_t m : {0u, 1u}) {
    EXPECT_TRUE(n.client.granted(m, UnicastKind::kAnnounce, kSecond));
    EXPECT_FALSE(n.client.granted(m, UnicastKind::kSync, kSecond));
  }
  n.client.select(1, kSecond);
  n.run(kSecond, 2 * kSecond);
  EXPECT_TRUE(n.client.granted(1, UnicastKind::kSync, 2 * kSecond));
  EXPECT_TRUE(n.client.granted(1, UnicastKind::kDelayResp, 2 * kSecond));
  EXPECT_EQ(n.client.masters()[1].grants[static_cast<size_t>(UnicastKind::kSync)].log_period, -3);
  EXPECT_TRUE(n.servers[1].delay_resp_granted(n.me, 2 * kSecond));
  EXPECT_FALSE(n.servers[0].delay_resp_granted(n.me, 2 * kSecond));
  // The BMCA moves to master 0: Sync and Delay_Resp are cancelled at 1
  // (its server stops serving them) and granted by 0.
  n.client.select(0, 2 * kSecond);
  n.run(2 * kSecond, 3 * kSecond);
  EXPECT_EQ((n.seen[{1, TlvType::kCancelUnicastTransmission}]), 2);
  EXPECT_FALSE(n.servers[1].delay_resp_granted(n.me, 3 * kSecond));
  EXPECT_TRUE(n.servers[0].delay_resp_granted(n.me, 3 * kSecond));
  EXPECT_TRUE(n.client.granted(0, UnicastKind::kSync, 3 * kSecond));
  EXPECT_FALSE(n.client.granted(1, UnicastKind::kSync, 3 * kSecond));
}

TEST(UnicastRequester, RenewsAtHalfTimeSoGrantsNeverLapse) {
  UnicastRequestPolicy p;
  p.duration_s = 10;
  Negotiation n(1, p);
  n.client.select(0, 0);
  int64_t lapsed = 0;
  for (int64_t t = 0; t <= 60 * kSecond; t += kSecond / 4) {
    n.step(t);
    if (t > kSecond && !n.client.granted(0, UnicastKind::kSync, t)) ++lapsed;
  }
  EXPECT_EQ(lapsed, 0);
  // One request at the start, then one renewal every 5 s per kind.
  EXPECT_NEAR((n.seen[{0, TlvType::kRequestUnicastTransmission}]), 3 * (1 + 60 / 5), 3);
}

TEST(UnicastRequester, RetriesUnansweredAndDeniedRequestsEveryQueryInterval) {
  UnicastRequestPolicy p;
  p.log_sync = -7;                 // faster than the server allows: denied
  p.log_query_interval = 1;        // every 2 s
  UnicastPolicy strict;
  strict.min_log_sync = -4;
  Negotiation n(1, p, strict);
  n.reachable[0] = false;
  n.run(0, 9 * kSecond);           // nobody answers: Announce asked at 0, 2, 4, 6, 8 s
  EXPECT_EQ((n.seen[{0, TlvType::kRequestUnicastTransmission}]), 5);
  EXPECT_FALSE(n.client.granted(0, UnicastKind::kAnnounce, 9 * kSecond));
  n.reachable[0] = true;
  n.client.select(0, 10 * kSecond);
  n.run(10 * kSecond, 14 * kSecond);
  EXPECT_TRUE(n.client.granted(0, UnicastKind::kAnnounce, 14 * kSecond));
  EXPECT_TRUE(n.client.granted(0, UnicastKind::kDelayResp, 14 * kSecond));
  EXPECT_FALSE(n.client.granted(0, UnicastKind::kSync, 14 * kSecond));
  EXPECT_EQ(n.client.denials(), 3u);  // Sync at 10, 12 and 14 s
}

TEST(UnicastRequester, AcknowledgesAMastersCancelAndAsksAgainLater) {
  UnicastRequestPolicy p;
  Negotiation n(1, p);
  n.client.select(0, 0);
  n.run(0, kSecond);
  ASSERT_TRUE(n.client.granted(0, UnicastKind::kSync, kSecond));
  Message cancel;
  cancel.header.type = MessageType::kSignaling;
  cancel.unicast.push_back(UnicastTlv{TlvType::kCancelUnicastTransmission, MessageType::kSync, 0, 0, false});
  const auto ack = n.client.on_signaling(cancel, n.client.masters()[0].address, kSecond);
  ASSERT_TRUE(ack);
  ASSERT_EQ(ack->tlvs.size(), 1u);
  EXPECT_EQ(ack->tlvs[0].type, TlvType::kAcknowledgeCancelUnicastTransmission);
  EXPECT_FALSE(n.client.granted(0, UnicastKind::kSync, kSecond));
  n.run(kSecond + kSecond / 4, 3 * kSecond);
  EXPECT_TRUE(n.client.granted(0, UnicastKind::kSync, 3 * kSecond));
  // Signaling from an address outside the table is ignored.
  EXPECT_FALSE(n.client.on_signaling(cancel, client_address(50), 3 * kSecond));
}

// A master's durationField becomes the client's renewal timer: it is capped
// at what the client asked for, so a hostile master cannot park a grant.
TEST(UnicastRequester, CapsAGrantedDurationAtWhatItAskedFor) {
  UnicastRequestPolicy p;
  p.duration_s = 60;
  UnicastRequester r({client_address(1)}, p);
  ASSERT_FALSE(r.poll(0).empty());  // Announce requested
  Message grant;
  grant.header.type = MessageType::kSignaling;
  grant.unicast.push_back(UnicastTlv{TlvType::kGrantUnicastTransmission, MessageType::kAnnounce, 0, 0xffffffffu, true});
  r.on_signaling(grant, client_address(1), 0);
  EXPECT_TRUE(r.granted(0, UnicastKind::kAnnounce, 59 * kSecond));
  EXPECT_FALSE(r.granted(0, UnicastKind::kAnnounce, 61 * kSecond));
  EXPECT_TRUE(r.poll(29 * kSecond).empty());
  EXPECT_FALSE(r.poll(30 * kSecond).empty());  // renewed at half of 60 s
}
