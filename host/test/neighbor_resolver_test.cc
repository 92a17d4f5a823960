// Underlay next-hop resolution with simulated time: retries, timeouts,
// re-probing with the MAC still usable, failure and recovery.
#include <gtest/gtest.h>

#include "host/neighbor_resolver.h"

namespace meridian::host {
namespace {

IpAddress ip(const char* s) { return *config::parse_ip(s); }
MacAddress mac(const char* s) { return *config::parse_mac(s); }

TEST(Resolver, SolicitsRetriesThenFailsAndRetriesLater) {
  NeighborResolver r({1.0, 3, 300, 5.0});
  r.want(ip("10.1.0.2"), 1, 100.0);
  std::vector<NeighborResolver::Solicit> out;
  r.tick(100.0, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].port, 1);
  EXPECT_FALSE(out[0].unicast_to.has_value());
  r.tick(100.5, out);  // not yet due
  EXPECT_EQ(out.size(), 1u);
  r.tick(101.0, out);
  r.tick(102.0, out);
  EXPECT_EQ(out.size(), 3u);
  r.tick(103.0, out);  // third try unanswered: failed, no new solicitation
  EXPECT_EQ(out.size(), 3u);
  EXPECT_EQ(r.entry(ip("10.1.0.2"), 1)->state, NeighborResolver::State::kFailed);
  EXPECT_FALSE(r.lookup(ip("10.1.0.2"), 1));
  r.tick(107.9, out);
  EXPECT_EQ(out.size(), 3u);
  r.tick(108.0, out);  // failed_retry elapsed: try again
  EXPECT_EQ(out.size(), 4u);
}

TEST(Resolver, ReplyResolvesAndProbeKeepsMacUsable) {
  NeighborResolver r({1.0, 3, 300, 5.0});
  const auto a = ip("fd01::2");
  r.want(a, 2, 0);
  std::vector<NeighborResolver::Solicit> out;
  r.tick(0, out);
  EXPECT_TRUE(r.on_reply(a, 2, mac("02:00:00:00:00:02"), 0.2));
  EXPECT_FALSE(r.on_reply(a, 1, mac("02:00:00:00:00:07"), 0.2)) << "the same address on another link is not this hop";
  EXPECT_FALSE(r.on_reply(a, 2, mac("02:00:00:00:00:02"), 0.3)) << "same MAC is not a change";
  EXPECT_EQ(*r.lookup(a, 2), mac("02:00:00:00:00:02"));
  out.clear();
  r.tick(300.3, out);  // reachable time over: unicast probe, MAC still usable
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].unicast_to);
  EXPECT_EQ(*out[0].unicast_to, mac("02:00:00:00:00:02"));
  EXPECT_TRUE(r.lookup(a, 2));
  EXPECT_EQ(r.entry(a, 2)->state, NeighborResolver::State::kProbing);
  // Unanswered probes: the MAC is withdrawn and tick reports the change.
  r.tick(301.3, out);
  r.tick(302.3, out);
  EXPECT_TRUE(r.tick(303.3, out));
  EXPECT_FALSE(r.lookup(a, 2));
  // A new MAC announced later is taken.
  EXPECT_TRUE(r.on_reply(a, 2, mac("02:00:00:00:00:03"), 304));
  EXPECT_EQ(*r.lookup(a, 2), mac("02:00:00:00:00:03"));
}

TEST(Resolver, UnsolicitedRepliesForUnknownAddressesAreIgnored) {
  NeighborResolver r;
  EXPECT_FALSE(r.on_reply(ip("10.9.9.9"), 1, mac("02:00:00:00:00:09"), 1));
  EXPECT_TRUE(r.entries().empty());
}

TEST(Resolver, RetainForgetsAddressesNoLongerNeeded) {
  NeighborResolver r;
  r.want(ip("10.1.0.2"), 1, 0);
  r.want(ip("10.1.0.3"), 1, 0);
  r.retain({{1, ip("10.1.0.3")}});
  EXPECT_EQ(r.entries().size(), 1u);
  EXPECT_TRUE(r.entry(ip("10.1.0.3"), 1));
  // Wanted on another port: another hop, resolved there from scratch.
  r.on_reply(ip("10.1.0.3"), 1, mac("02:00:00:00:00:03"), 0);
  r.want(ip("10.1.0.3"), 2, 1);
  EXPECT_FALSE(r.lookup(ip("10.1.0.3"), 2));
  r.retain({{2, ip("10.1.0.3")}});
  EXPECT_FALSE(r.entry(ip("10.1.0.3"), 1));
  EXPECT_EQ(r.entry(ip("10.1.0.3"), 2)->port, 2);
}

TEST(Resolver, AShorterReachableTimeAskedLaterAppliesToTheCurrentAnswer) {
  NeighborResolver r({1.0, 3, 300, 5.0});
  r.want(ip("10.1.0.2"), 1, 0, 86400);
  std::vector<NeighborResolver::Solicit> out;
  r.tick(0, out);
  r.on_reply(ip("10.1.0.2"), 1, mac("02:00:00:00:00:02"), 0);
  r.want(ip("10.1.0.2"), 1, 10, 60);  // another client joins, trusting answers for 60 s
  out.clear();
  r.tick(59, out);
  EXPECT_TRUE(out.empty());
  r.tick(60, out);
  ASSERT_EQ(out.size(), 1u) << "re-probed 60 s after the answer, not a day";
  EXPECT_TRUE(out[0].unicast_to);
}

}  // namespace
}  // namespace meridian::host

namespace meridian::host {
namespace {

TEST(Resolver, StaticEntriesAreNeverSolicitedNorOverriddenNorForgotten) {
  NeighborResolver r;
  r.set_static(ip("10.1.0.9"), 1, mac("02:00:00:00:00:09"));
  std::vector<NeighborResolver::Solicit> out;
  r.want(ip("10.1.0.9"), 1, 0);
  r.tick(1000, out);
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(r.on_reply(ip("10.1.0.9"), 1, mac("02:00:00:00:00:0a"), 1));
  EXPECT_EQ(*r.lookup(ip("10.1.0.9"), 1), mac("02:00:00:00:00:09"));
  r.retain({});
  EXPECT_TRUE(r.lookup(ip("10.1.0.9"), 1));
}

}  // namespace
}  // namespace meridian::host
