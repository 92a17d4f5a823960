// host/'s presence with simulated time and captured frames: what it answers,
// defends, asks and learns, and that each client keeps its own share.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "host/presence.h"
#include "net/checksum.h"
#include "net/neighbor.h"
#include "net/packet_view.h"
#include "net/wire.h"

namespace meridian::host {
namespace {

IpAddress ip(const char* s) { return *config::parse_ip(s); }
MacAddress mac(const char* s) { return *config::parse_mac(s); }

struct Sent {
  uint16_t port;
  std::vector<uint8_t> frame;
};

class PresenceTest : public ::testing::Test {
 protected:
  PresenceTest()
      : presence_([this](uint16_t port, std::span<const uint8_t> f) {
                    sent_.push_back({port, {f.begin(), f.end()}});
                    return true;
                  },
                  [this] { return now_; }, ResolverTiming{1.0, 3, 300, 5.0}) {
    presence_.set_port_mac(1, our_mac_);
    presence_.set_port_mac(2, mac("02:00:00:00:02:02"));
  }

  std::vector<uint8_t> arp(uint16_t op, const MacAddress& from_mac, const char* from_ip, const char* to_ip,
                           const uint8_t* eth_dst = nullptr) {
    static const uint8_t kBroadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, kZero[6] = {};
    std::vector<uint8_t> f(net::kArpFrame);
    net::build_arp(f.data(), op, eth_dst ? eth_dst : kBroadcast, from_mac.bytes.data(), ip(from_ip).bytes.data(),
                   op == net::kArpReply ? our_mac_.bytes.data() : kZero, ip(to_ip).bytes.data());
    return f;
  }
  bool offer(uint16_t port, const std::vector<uint8_t>& f) { return presence_.handle_frame(port, f); }
  net::ArpView sent_arp(size_t i) {
    net::ArpView a;
    EXPECT_TRUE(net::parse_arp(sent_.at(i).frame.data() + net::kEthHeader, sent_.at(i).frame.size() - net::kEthHeader, a));
    return a;
  }
  net::NdView sent_nd(size_t i) {
    net::NdView nd;
    EXPECT_TRUE(net::parse_nd(sent_.at(i).frame.data() + net::kEthHeader, sent_.at(i).frame.size() - net::kEthHeader, nd));
    return nd;
  }

  double now_ = 100;
  std::vector<Sent> sent_;
  MacAddress our_mac_ = mac("02:00:00:00:01:01");
  MacAddress peer_mac_ = mac("02:00:00:00:00:99");
  Presence presence_;
};

TEST_F(PresenceTest, AnswersArpForAnAddressItOwnsOnThatPortOnly) {
  const auto vtep = presence_.add_client("vxlan");
  presence_.set_addresses(vtep, {{1, ip("10.0.0.1")}});
  EXPECT_TRUE(offer(1, arp(net::kArpRequest, peer_mac_, "10.0.0.9", "10.0.0.1")));
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].port, 1);
  const net::ArpView reply = sent_arp(0);
  EXPECT_EQ(reply.op, net::kArpReply);
  EXPECT_EQ(std::memcmp(reply.sender_ip, ip("10.0.0.1").bytes.data(), 4), 0);
  EXPECT_EQ(std::memcmp(reply.sender_mac, our_mac_.bytes.data(), 6), 0);
  EXPECT_EQ(std::memcmp(sent_[0].frame.data(), peer_mac_.bytes.data(), 6), 0);  // to the asker
  EXPECT_EQ(presence_.counters(vtep)->replies, 1u);
  // Another port, another address: not ours to answer, left to the modules.
  EXPECT_FALSE(offer(2, arp(net::kArpRequest, peer_mac_, "10.0.0.9", "10.0.0.1")));
  EXPECT_FALSE(offer(1, arp(net::kArpRequest, peer_mac_, "10.0.0.9", "10.0.0.7")));
  EXPECT_EQ(sent_.size(), 1u);
}

TEST_F(PresenceTest, DefendsItsIpv6AddressAndAnswersSolicitations) {
  const auto ptp = presence_.add_client("ptp");
  presence_.set_addresses(ptp, {{1, ip("fd77::10")}});
  const uint8_t unspecified[16] = {};
  std::vector<uint8_t> probe(net::kNdFrame), ns(net::kNdFrame);
  net::build_ns(probe.data(), peer_mac_.bytes.data(), unspecified, ip("fd77::10").bytes.data());
  net::build_ns(ns.data(), peer_mac_.bytes.data(), ip("fd77::9").bytes.data(), ip("fd77::10").bytes.data());
  EXPECT_TRUE(offer(1, probe));
  EXPECT_TRUE(offer(1, ns));
  ASSERT_EQ(sent_.size(), 2u);
  const net::NdView defence = sent_nd(0);
  EXPECT_EQ(defence.type, net::kNdNeighborAdvert);
  EXPECT_FALSE(defence.solicited);
  EXPECT_EQ(defence.dst_ip[0], 0xff);  // to all nodes
  const net::NdView answer = sent_nd(1);
  EXPECT_TRUE(answer.solicited);
  EXPECT_EQ(std::memcmp(answer.dst_ip, ip("fd77::9").bytes.data(), 16), 0);
  EXPECT_EQ(std::memcmp(answer.link_addr, our_mac_.bytes.data(), 6), 0);
  EXPECT_EQ(presence_.counters(ptp)->replies, 2u);
  EXPECT_FALSE(presence_.lookup(ip("fd77::9"), 1)) << "a solicitation teaches only hops someone wants";
}

TEST_F(PresenceTest, ResolvesWantedHopsReprobesAndLetsThemExpire) {
  const auto vtep = presence_.add_client("vxlan");
  presence_.set_addresses(vtep, {{1, ip("10.0.0.1")}});
  presence_.want(vtep, {{ip("10.0.0.2"), 1}}, 30);
  presence_.tick();
  ASSERT_EQ(sent_.size(), 1u);
  net::ArpView ask = sent_arp(0);
  EXPECT_EQ(ask.op, net::kArpRequest);
  EXPECT_EQ(std::memcmp(ask.sender_ip, ip("10.0.0.1").bytes.data(), 4), 0);  // from our address on that port
  EXPECT_EQ(sent_[0].frame[0], 0xff);
  EXPECT_EQ(presence_.counters(vtep)->requests, 1u);
  const uint64_t before = presence_.generation();
  EXPECT_TRUE(offer(1, arp(net::kArpReply, peer_mac_, "10.0.0.2", "10.0.0.1", our_mac_.bytes.data())));
  EXPECT_EQ(presence_.lookup(ip("10.0.0.2"), 1), peer_mac_);
  EXPECT_GT(presence_.generation(), before);
  EXPECT_EQ(presence_.counters(vtep)->answers, 1u);
  // The client's reachable time (30 s), then a unicast probe; unanswered
  // probes withdraw the MAC.
  now_ += 30;
  presence_.tick();
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(std::memcmp(sent_[1].frame.data(), peer_mac_.bytes.data(), 6), 0);
  EXPECT_TRUE(presence_.lookup(ip("10.0.0.2"), 1)) << "usable while probing";
  const uint64_t probing = presence_.generation();
  for (int i = 0; i < 3; ++i) {
    now_ += 1;
    presence_.tick();
  }
  EXPECT_FALSE(presence_.lookup(ip("10.0.0.2"), 1));
  EXPECT_GT(presence_.generation(), probing);
  // A reply from a hop nobody wants is left to the modules.
  EXPECT_FALSE(offer(1, arp(net::kArpReply, peer_mac_, "10.0.0.3", "10.0.0.1", our_mac_.bytes.data())));
}

TEST_F(PresenceTest, AnIpv6HopIsSolicitedFromOurIpv6Address) {
  const auto ptp = presence_.add_client("ptp");
  presence_.set_addresses(ptp, {{1, ip("10.0.0.1")}, {1, ip("fd77::10")}});
  presence_.want(ptp, {{ip("fd77::1"), 1}});
  presence_.tick();
  ASSERT_EQ(sent_.size(), 1u);
  const net::NdView ns = sent_nd(0);
  EXPECT_EQ(ns.type, net::kNdNeighborSolicit);
  EXPECT_EQ(std::memcmp(ns.src_ip, ip("fd77::10").bytes.data(), 16), 0);
  EXPECT_EQ(std::memcmp(ns.target, ip("fd77::1").bytes.data(), 16), 0);
  std::vector<uint8_t> na(net::kNdFrame);
  net::build_na(na.data(), our_mac_.bytes.data(), peer_mac_.bytes.data(), ip("fd77::1").bytes.data(),
                ip("fd77::10").bytes.data(), true);
  EXPECT_TRUE(offer(1, na));
  EXPECT_EQ(presence_.lookup(ip("fd77::1"), 1), peer_mac_);
  EXPECT_EQ(presence_.counters(ptp)->answers, 1u);
}

TEST_F(PresenceTest, WithoutAnAddressOnThePortNothingIsAsked) {
  const auto c = presence_.add_client("ptp");
  presence_.want(c, {{ip("10.0.0.2"), 2}});
  presence_.tick();
  EXPECT_TRUE(sent_.empty());
  EXPECT_EQ(presence_.counters(c)->requests, 0u);
}

TEST_F(PresenceTest, ClientsShareTheTableButKeepTheirOwnRegistrations) {
  const auto a = presence_.add_client("vxlan");
  const auto b = presence_.add_client("ptp");
  presence_.set_addresses(a, {{1, ip("10.0.0.1")}});
  presence_.want(a, {{ip("10.0.0.2"), 1}});
  presence_.want(b, {{ip("10.0.0.2"), 1}});
  presence_.set_static(a, {{{1, ip("10.0.0.5")}, peer_mac_}});
  presence_.set_static(b, {});
  EXPECT_EQ(presence_.lookup(ip("10.0.0.5"), 1), peer_mac_) << "b's empty static set leaves a's alone";
  presence_.remove_client(a);
  EXPECT_TRUE(presence_.entry(ip("10.0.0.2"), 1)) << "b still wants it";
  EXPECT_FALSE(presence_.entry(ip("10.0.0.5"), 1)) << "a's static went with a";
  EXPECT_FALSE(offer(1, arp(net::kArpRequest, peer_mac_, "10.0.0.9", "10.0.0.1"))) << "a's address went with a";
  presence_.remove_client(b);
  EXPECT_FALSE(presence_.entry(ip("10.0.0.2"), 1));
}

TEST_F(PresenceTest, MalformedFramesAreLeftAlone) {
  const auto a = presence_.add_client("vxlan");
  presence_.set_addresses(a, {{1, ip("10.0.0.1")}});
  std::vector<uint8_t> f = arp(net::kArpRequest, peer_mac_, "10.0.0.9", "10.0.0.1");
  for (size_t n = 0; n < f.size(); ++n) {
    EXPECT_FALSE(presence_.handle_frame(1, {f.data(), n})) << n;
  }
  EXPECT_TRUE(sent_.empty());
}

TEST_F(PresenceTest, AHopIsLearntOnlyOnItsOwnLinkAndNeverFromTaggedFrames) {
  const auto vtep = presence_.add_client("vxlan");
  presence_.set_addresses(vtep, {{1, ip("10.0.0.1")}, {2, ip("10.0.0.1")}});
  presence_.want(vtep, {{ip("10.0.0.2"), 1}});
  // The same address answering on port 2 is another segment's host.
  EXPECT_FALSE(offer(2, arp(net::kArpReply, mac("02:00:00:00:00:66"), "10.0.0.2", "10.0.0.1", our_mac_.bytes.data())));
  EXPECT_FALSE(presence_.lookup(ip("10.0.0.2"), 1));
  presence_.learn(ip("10.0.0.2"), 2, mac("02:00:00:00:00:66"));
  EXPECT_FALSE(presence_.lookup(ip("10.0.0.2"), 1));
  // A tagged request for our address is not ours (our addresses are untagged).
  std::vector<uint8_t> tagged = arp(net::kArpRequest, peer_mac_, "10.0.0.9", "10.0.0.1");
  const uint8_t tag[4] = {0x81, 0x00, 0x00, 0x0a};
  tagged.insert(tagged.begin() + 12, tag, tag + 4);
  sent_.clear();
  EXPECT_FALSE(offer(1, tagged));
  EXPECT_TRUE(sent_.empty());
  presence_.learn(ip("10.0.0.2"), 1, peer_mac_);
  EXPECT_EQ(presence_.lookup(ip("10.0.0.2"), 1), peer_mac_);
}

TEST_F(PresenceTest, AnAdvertisementWithoutTheTargetsLinkAddressTeachesNothing) {
  const auto ptp = presence_.add_client("ptp");
  presence_.set_addresses(ptp, {{1, ip("fd77::10")}});
  presence_.want(ptp, {{ip("fd77::1"), 1}});
  std::vector<uint8_t> na(net::kNdFrame);
  net::build_na(na.data(), our_mac_.bytes.data(), peer_mac_.bytes.data(), ip("fd77::1").bytes.data(),
                ip("fd77::10").bytes.data(), true);
  // Cut the option off (and fix the lengths and checksum the parser checks).
  na.resize(net::kEthHeader + net::kIpv6Header + 24);
  uint8_t* ip6 = na.data() + net::kEthHeader;
  net::put16(ip6 + 4, 24);
  uint8_t* icmp = ip6 + net::kIpv6Header;
  icmp[2] = icmp[3] = 0;
  net::put16(icmp + 2, net::checksum_finish(net::checksum_add(icmp, 24, net::ipv6_pseudo_sum(ip6 + 8, ip6 + 24, 24, net::kProtoIcmpv6))));
  EXPECT_FALSE(offer(1, na));
  EXPECT_FALSE(presence_.lookup(ip("fd77::1"), 1));
}

TEST_F(PresenceTest, ASolicitationGoesFromTheWantingClientsAddress) {
  const auto vtep = presence_.add_client("vxlan");
  const auto ptp = presence_.add_client("ptp");
  presence_.set_addresses(vtep, {{1, ip("10.0.0.1")}});
  presence_.set_addresses(ptp, {{1, ip("10.0.5.1")}});
  presence_.want(ptp, {{ip("10.0.5.2"), 1}});
  presence_.tick();
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(std::memcmp(sent_arp(0).sender_ip, ip("10.0.5.1").bytes.data(), 4), 0);
  EXPECT_EQ(presence_.counters(ptp)->requests, 1u);
  EXPECT_EQ(presence_.counters(vtep)->requests, 0u);
}

TEST_F(PresenceTest, ASharedHopIsTrustedForTheShortestReachableTimeAskedFor) {
  const auto vtep = presence_.add_client("vxlan");
  const auto ptp = presence_.add_client("ptp");
  presence_.set_addresses(vtep, {{1, ip("10.0.0.1")}});
  presence_.want(vtep, {{ip("10.0.0.2"), 1}}, 1000);
  presence_.want(ptp, {{ip("10.0.0.2"), 1}});  // the table's default: 300 s
  EXPECT_TRUE(offer(1, arp(net::kArpReply, peer_mac_, "10.0.0.2", "10.0.0.1", our_mac_.bytes.data())));
  EXPECT_EQ(presence_.counters(vtep)->answers, 1u);
  EXPECT_EQ(presence_.counters(ptp)->answers, 1u);
  sent_.clear();
  now_ += 300;
  presence_.tick();
  ASSERT_EQ(sent_.size(), 1u) << "re-probed after 300 s, not 1000";
}

TEST_F(PresenceTest, AnAdvertisementWithoutOverrideDoesNotReplaceAKnownMac) {
  const auto ptp = presence_.add_client("ptp");
  presence_.set_addresses(ptp, {{1, ip("fd77::10")}});
  presence_.want(ptp, {{ip("fd77::1"), 1}});
  auto na = [&](const MacAddress& m, bool override_flag) {
    std::vector<uint8_t> f(net::kNdFrame);
    net::build_na(f.data(), our_mac_.bytes.data(), m.bytes.data(), ip("fd77::1").bytes.data(),
                  ip("fd77::10").bytes.data(), true);
    if (!override_flag) {  // clear O, fix the checksum
      uint8_t* ip6 = f.data() + net::kEthHeader;
      uint8_t* icmp = ip6 + net::kIpv6Header;
      icmp[4] &= static_cast<uint8_t>(~0x20);
      icmp[2] = icmp[3] = 0;
      net::put16(icmp + 2, net::checksum_finish(net::checksum_add(icmp, 32, net::ipv6_pseudo_sum(ip6 + 8, ip6 + 24, 32, net::kProtoIcmpv6))));
    }
    return f;
  };
  EXPECT_TRUE(offer(1, na(peer_mac_, false))) << "an incomplete entry takes it";
  EXPECT_EQ(presence_.lookup(ip("fd77::1"), 1), peer_mac_);
  offer(1, na(mac("02:00:00:00:00:55"), false));
  EXPECT_EQ(presence_.lookup(ip("fd77::1"), 1), peer_mac_) << "no Override: the known MAC stays";
  offer(1, na(mac("02:00:00:00:00:55"), true));
  EXPECT_EQ(presence_.lookup(ip("fd77::1"), 1), mac("02:00:00:00:00:55"));
}

}  // namespace
}  // namespace meridian::host
