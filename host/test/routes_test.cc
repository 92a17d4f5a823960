// host::RouteTable on DPDK's LPM tables (in the pipeline test binary, whose
// main brings up the EAL): longest prefix wins, on-link destinations are
// their own next hop, a connected prefix beats an equal static one, and a
// gateway that is not on-link gives no hop.
#include <gtest/gtest.h>

#include "host/routes.h"

using namespace meridian;
using config::parse_ip;
using config::parse_prefix;

namespace {

config::IpAddress ip(const char* text) { return *parse_ip(text); }
config::IpPrefix prefix(const char* text) { return *parse_prefix(text, true); }

std::string hop_of(const host::RouteTable& routes, const char* destination) {
  const auto hop = routes.lookup(ip(destination));
  return hop ? to_string(hop->neighbor) + "@" + hop->port : "none";
}

TEST(HostRoutes, LongestPrefixOnLinkAndThroughGateways) {
  std::string error;
  auto routes = host::RouteTable::build(
      {{"u0", prefix("10.1.0.1/24")}, {"u1", prefix("10.2.0.1/24")}, {"u1", prefix("2001:db8::1/64")}},
      {{prefix("10.9.0.0/16"), ip("10.1.0.254")},
       {prefix("10.9.8.0/24"), ip("10.2.0.254")},     // longer: wins inside 10.9.8/24
       {prefix("10.1.0.0/24"), ip("10.2.0.253")},     // equal to a connected prefix: on-link wins
       {prefix("0.0.0.0/0"), ip("10.2.0.252")},      // a default route (rte_lpm holds depths 1-32 only)
       {prefix("192.168.0.0/16"), ip("172.16.0.1")},  // gateway not on-link
       {prefix("2001:db8:5::/48"), ip("2001:db8::fe")}},
      error);
  ASSERT_TRUE(routes) << error;
  EXPECT_EQ(hop_of(*routes, "10.1.0.7"), "10.1.0.7@u0");
  EXPECT_EQ(hop_of(*routes, "10.2.0.9"), "10.2.0.9@u1");
  EXPECT_EQ(hop_of(*routes, "10.9.3.4"), "10.1.0.254@u0");
  EXPECT_EQ(hop_of(*routes, "10.9.8.4"), "10.2.0.254@u1");
  EXPECT_EQ(hop_of(*routes, "8.8.8.8"), "10.2.0.252@u1");
  EXPECT_EQ(hop_of(*routes, "192.168.1.1"), "none");
  EXPECT_EQ(hop_of(*routes, "2001:db8::5"), "2001:db8::5@u1");
  EXPECT_EQ(hop_of(*routes, "2001:db8:5::7"), "2001:db8::fe@u1");
  EXPECT_EQ(hop_of(*routes, "2001:db9::1"), "none");  // no IPv6 default route
  EXPECT_TRUE(routes->on_link(ip("10.2.0.200")));
  EXPECT_FALSE(routes->on_link(ip("10.9.3.4")));
  EXPECT_FALSE(routes->on_link(ip("2001:db8:5::7")));
}

// Of two overlapping subnets, the narrower one's port: for an on-link
// destination as the LPM matches it, and for a gateway.
TEST(HostRoutes, OverlappingSubnetsUseTheNarrowerOnesPort) {
  std::string error;
  auto routes = host::RouteTable::build({{"wide", prefix("10.0.0.1/16")}, {"narrow", prefix("10.0.1.1/24")},
                                         {"wide", prefix("2001:db8::1/32")}},
                                        {{prefix("172.16.0.0/12"), ip("10.0.1.254")}, {prefix("::/0"), ip("2001:db8::fe")}},
                                        error);
  ASSERT_TRUE(routes) << error;
  EXPECT_EQ(hop_of(*routes, "10.0.1.5"), "10.0.1.5@narrow");
  EXPECT_EQ(hop_of(*routes, "10.0.2.5"), "10.0.2.5@wide");
  EXPECT_EQ(hop_of(*routes, "172.20.0.1"), "10.0.1.254@narrow");
  EXPECT_EQ(hop_of(*routes, "2001:db9::1"), "2001:db8::fe@wide");  // the IPv6 default route
}

TEST(HostRoutes, AFamilyWithoutAddressesHasNoRoutes) {
  std::string error;
  auto routes = host::RouteTable::build({{"u0", prefix("10.1.0.1/24")}}, {{prefix("2001:db8::/32"), ip("2001:db8::1")}},
                                        error);
  ASSERT_TRUE(routes) << error;
  EXPECT_EQ(hop_of(*routes, "2001:db8::9"), "none");
  EXPECT_EQ(hop_of(*routes, "10.1.0.2"), "10.1.0.2@u0");
  auto empty = host::RouteTable::build({}, {}, error);
  ASSERT_TRUE(empty) << error;
  EXPECT_EQ(hop_of(*empty, "10.1.0.2"), "none");
}

}  // namespace
