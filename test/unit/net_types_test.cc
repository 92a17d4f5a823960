// Address value types: parsing, formatting and prefix arithmetic.
#include <gtest/gtest.h>

#include <string>

#include "config/net_types.h"

using namespace meridian::config;

namespace {

IpAddress ip(const std::string& text) {
  auto a = parse_ip(text);
  EXPECT_TRUE(a) << text;
  return a.value_or(IpAddress{});
}

IpPrefix prefix(const std::string& text) {
  auto p = parse_prefix(text, false);
  EXPECT_TRUE(p) << text;
  return p.value_or(IpPrefix{});
}

}  // namespace

TEST(NetTypes, ParseMac) {
  auto m = parse_mac("02:00:00:00:01:0a");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->bytes, (std::array<uint8_t, 6>{0x02, 0, 0, 0, 0x01, 0x0a}));
  EXPECT_EQ(to_string(*m), "02:00:00:00:01:0a");
  EXPECT_FALSE(m->is_multicast());
  EXPECT_FALSE(m->is_zero());

  auto upper = parse_mac("33:33:FF:AB:CD:EF");
  ASSERT_TRUE(upper);
  EXPECT_TRUE(upper->is_multicast());
  EXPECT_EQ(to_string(*upper), "33:33:ff:ab:cd:ef");
  EXPECT_TRUE(parse_mac("00:00:00:00:00:00")->is_zero());

  for (const char* bad : {"", "02:00:00:00:01", "02:00:00:00:01:0a:", "02:00:00:00:01:0a ", "02-00-00-00-01-0a",
                          "02:00:00:00:01:0g", "02:00:00:00:1:0a", "0200.0000.010a", "02:00:00:00:01:0a0"}) {
    EXPECT_FALSE(parse_mac(bad)) << bad;
  }
}

TEST(NetTypes, ParseIp) {
  IpAddress a = ip("10.1.0.2");
  EXPECT_TRUE(a.is_v4());
  EXPECT_EQ(a.size(), 4u);
  EXPECT_EQ(a.bytes[0], 10);
  EXPECT_EQ(a.bytes[3], 2);
  EXPECT_EQ(a.bytes[4], 0);
  EXPECT_EQ(to_string(a), "10.1.0.2");
  const uint8_t raw4[4] = {10, 1, 0, 2};
  EXPECT_EQ(IpAddress::v4(raw4), a);

  IpAddress b = ip("fd01::2");
  EXPECT_FALSE(b.is_v4());
  EXPECT_EQ(b.size(), 16u);
  EXPECT_EQ(b.bytes[0], 0xfd);
  EXPECT_EQ(b.bytes[15], 2);
  EXPECT_EQ(to_string(b), "fd01::2");
  EXPECT_EQ(IpAddress::v6(b.bytes.data()), b);
  EXPECT_NE(a, b);

  EXPECT_TRUE(ip("224.0.0.5").is_multicast());
  EXPECT_TRUE(ip("ff02::1:ff00:2").is_multicast());
  EXPECT_FALSE(ip("fd01::1").is_multicast());
  EXPECT_TRUE(ip("::").is_unspecified());
  EXPECT_TRUE(ip("0.0.0.0").is_unspecified());
  EXPECT_EQ(ip("::ffff:10.0.0.1").family, 6);

  for (const char* bad : {"", "10.0.0", "10.0.0.256", "10.0.0.1/32", " 10.0.0.1", "fd01:::1", "fd01::g",
                          "localhost", "10.0.0.1.2"}) {
    EXPECT_FALSE(parse_ip(bad)) << bad;
  }
  EXPECT_FALSE(parse_ip(std::string(46, '1')));
}

TEST(NetTypes, ParsePrefix) {
  IpPrefix p = prefix("10.1.0.0/16");
  EXPECT_EQ(p.address, ip("10.1.0.0"));
  EXPECT_EQ(p.length, 16);
  EXPECT_EQ(to_string(p), "10.1.0.0/16");
  EXPECT_EQ(prefix("0.0.0.0/0").length, 0);
  EXPECT_EQ(prefix("10.1.0.1/32").length, 32);
  EXPECT_EQ(prefix("fd01::/64").length, 64);
  EXPECT_EQ(prefix("fd01::1/128").length, 128);
  EXPECT_EQ(to_string(prefix("fd01::/48")), "fd01::/48");

  // Host bits: rejected unless allowed, and then kept.
  EXPECT_FALSE(parse_prefix("10.1.0.1/16", false));
  EXPECT_FALSE(parse_prefix("fd01::1/64", false));
  auto host = parse_prefix("10.1.0.1/16", true);
  ASSERT_TRUE(host);
  EXPECT_EQ(host->address, ip("10.1.0.1"));
  EXPECT_EQ(host->length, 16);

  for (const char* bad : {"", "10.1.0.0", "10.1.0.0/", "/16", "10.1.0.0/33", "fd01::/129", "10.1.0.0/1a",
                          "10.1.0.0/-1", "10.1.0.0/+8", "10.1.0.0/ 8", "10.1.0.0/8 ", "10.1.0.0/16/8",
                          "10.1.0.0/00016", "10.1.0/16", "nope/8"}) {
    EXPECT_FALSE(parse_prefix(bad, true)) << bad;
  }
}

TEST(NetTypes, NetworkClearsHostBits) {
  IpPrefix p{ip("10.1.2.3"), 20};
  EXPECT_EQ(p.network(), prefix("10.1.0.0/20"));
  EXPECT_EQ((IpPrefix{ip("10.1.2.3"), 0}).network(), prefix("0.0.0.0/0"));
  EXPECT_EQ((IpPrefix{ip("10.1.2.3"), 32}).network().address, ip("10.1.2.3"));
  EXPECT_EQ((IpPrefix{ip("10.1.2.255"), 25}).network().address, ip("10.1.2.128"));
  EXPECT_EQ((IpPrefix{ip("fd01:1:2:3:4:5:6:7"), 36}).network(), prefix("fd01:1::/36"));
  EXPECT_EQ((IpPrefix{ip("fd01::ffff"), 113}).network().address, ip("fd01::8000"));
}

TEST(NetTypes, Contains) {
  const IpPrefix p = prefix("10.1.0.0/24");
  EXPECT_TRUE(p.contains(ip("10.1.0.0")));
  EXPECT_TRUE(p.contains(ip("10.1.0.255")));
  EXPECT_FALSE(p.contains(ip("10.1.1.0")));
  EXPECT_FALSE(p.contains(ip("11.1.0.1")));
  EXPECT_FALSE(p.contains(ip("::a01:1")));  // other family, same low bytes

  const IpPrefix odd = prefix("10.1.0.0/25");
  EXPECT_TRUE(odd.contains(ip("10.1.0.127")));
  EXPECT_FALSE(odd.contains(ip("10.1.0.128")));

  EXPECT_TRUE(prefix("0.0.0.0/0").contains(ip("203.0.113.9")));
  EXPECT_FALSE(prefix("0.0.0.0/0").contains(ip("fd01::1")));
  EXPECT_TRUE(prefix("::/0").contains(ip("fd01::1")));
  EXPECT_TRUE(prefix("10.1.0.1/32").contains(ip("10.1.0.1")));
  EXPECT_FALSE(prefix("10.1.0.1/32").contains(ip("10.1.0.2")));

  const IpPrefix v6 = prefix("fd01::/64");
  EXPECT_TRUE(v6.contains(ip("fd01::1234:5678")));
  EXPECT_FALSE(v6.contains(ip("fd01:0:0:1::1")));
  EXPECT_FALSE(v6.contains(ip("10.1.0.1")));

  // A prefix parsed with host bits still matches its whole network.
  auto host = parse_prefix("10.1.0.77/24", true);
  ASSERT_TRUE(host);
  EXPECT_TRUE(host->contains(ip("10.1.0.1")));
}
