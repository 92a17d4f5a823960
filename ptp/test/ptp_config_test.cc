// The "ptp" config section: defaults, round trip, profiles, and a table of
// invalid sections each rejected at its JSON pointer.
#include <gtest/gtest.h>

#include <functional>

#include "config/model.h"
#include "ptp/model.h"
#include "ptp/profile.h"

namespace meridian::config {
namespace {

using json = nlohmann::json;

json base() {
  return json::parse(R"({
    "ports": [
      {"name": "p0", "devargs": "net_null0"},
      {"name": "p1", "devargs": "net_null1"}
    ],
    "ptp": {
      "profile": "smpte_2059_2",
      "priority1": 100,
      "clock_identity": "02:00:00:ff:fe:00:00:01",
      "reference": "system",
      "ports": [
        {"port": "p0", "transport": "udp_ipv4", "address": "10.0.0.1", "log_sync_interval": -4},
        {"port": "p1", "transport": "l2", "delay_mechanism": "p2p", "local_priority": 10, "timestamping": "tsc"}
      ]
    }
  })");
}

TEST(PtpConfig, ValidSectionParsesAndRoundTrips) {
  const auto r = parse_config(base());
  ASSERT_TRUE(r.errors.empty()) << to_json(r.errors).dump();
  const PtpConfig& p = ptp_section(*r.config);
  EXPECT_TRUE(p.enabled());
  EXPECT_EQ(p.profile, "smpte_2059_2");
  EXPECT_FALSE(p.domain);  // the profile's (127)
  EXPECT_EQ(p.priority1, 100u);
  ASSERT_TRUE(p.clock_identity);
  EXPECT_EQ((*p.clock_identity)[7], 1);
  ASSERT_EQ(p.ports.size(), 2u);
  EXPECT_EQ(*p.ports[0].log_sync_interval, -4);
  EXPECT_EQ(*p.ports[1].delay_mechanism, "p2p");
  EXPECT_EQ(p.ports[0].timestamping, "auto");
  EXPECT_EQ(p.ports[1].timestamping, "tsc");
  EXPECT_TRUE(p.ports[0].unicast_masters.empty());
  EXPECT_EQ(p.unicast_request_duration_s, 300u);
  EXPECT_EQ(p.host_clock_export, "off");  // off unless asked for
  const auto again = parse_config(to_json(*r.config));
  ASSERT_TRUE(again.errors.empty()) << to_json(again.errors).dump();
  EXPECT_EQ(ptp_section(*again.config), p);
}

// G.8275.2: every port a unicast client with its master table (or the
// instance a unicast master), round-tripped with the request settings.
TEST(PtpConfig, G8275_2WithUnicastMastersParsesAndRoundTrips) {
  json doc = base();
  auto& ptp = doc["ptp"];
  ptp["profile"] = "g8275_2";
  ptp["reference"] = "none";
  ptp["slave_only"] = true;
  ptp["ports"].erase(1);
  ptp["ports"][0]["unicast_masters"] = {"10.0.0.2", "10.0.0.3"};
  ptp["unicast_request_duration_s"] = 60;
  ptp["unicast_log_query_interval"] = 1;
  const auto r = parse_config(doc);
  ASSERT_TRUE(r.errors.empty()) << to_json(r.errors).dump();
  const PtpConfig& p = ptp_section(*r.config);
  ASSERT_EQ(p.ports[0].unicast_masters.size(), 2u);
  EXPECT_EQ(to_string(p.ports[0].unicast_masters[1]), "10.0.0.3");
  EXPECT_EQ(p.unicast_request_duration_s, 60u);
  EXPECT_EQ(p.unicast_log_query_interval, 1);
  const auto again = parse_config(to_json(*r.config));
  ASSERT_TRUE(again.errors.empty()) << to_json(again.errors).dump();
  EXPECT_EQ(ptp_section(*again.config), p);
  // A unicast master (unicast_listen) needs no table.
  ptp["ports"][0].erase("unicast_masters");
  ptp["slave_only"] = false;
  ptp["unicast_listen"] = true;
  EXPECT_TRUE(parse_config(doc).errors.empty());
  // Over IPv6: IPv6 masters (resolved by neighbour discovery); an IPv4 one
  // on that port is named.
  ptp["unicast_listen"] = false;
  ptp["slave_only"] = true;
  ptp["ports"][0] = {{"port", "p0"}, {"transport", "udp_ipv6"}, {"address", "fd00::1"},
                     {"unicast_masters", {"fd00::2", "fd00::3"}}};
  const auto v6 = parse_config(doc);
  ASSERT_TRUE(v6.errors.empty()) << to_json(v6.errors).dump();
  EXPECT_EQ(to_string(ptp_section(*v6.config).ports[0].unicast_masters[1]), "fd00::3");
  ptp["ports"][0]["unicast_masters"] = {"fd00::2", "10.0.0.2"};
  const auto mixed = parse_config(doc);
  ASSERT_EQ(mixed.errors.size(), 1u);
  EXPECT_EQ(mixed.errors[0].path, "/ptp/ports/0/unicast_masters/1");
  EXPECT_NE(mixed.errors[0].reason.find("IPv6 address for transport udp_ipv6"), std::string::npos) << mixed.errors[0].reason;
}

TEST(PtpConfig, IdleSleepWithPtpIsWarnedAbout) {
  json doc = base();
  EXPECT_TRUE(parse_config(doc).warnings.empty());
  doc["dataplane"] = {{"idle_sleep_us", 20}};
  const auto r = parse_config(doc);
  ASSERT_TRUE(r.errors.empty());
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(r.warnings[0].path, "/dataplane/idle_sleep_us");
}

TEST(PtpConfig, AbsentSectionIsOff) {
  json doc = base();
  doc.erase("ptp");
  const auto r = parse_config(doc);
  ASSERT_TRUE(r.errors.empty());
  EXPECT_FALSE(ptp_section(*r.config).enabled());
}

TEST(PtpConfig, HostClockExportParsesAndRoundTrips) {
  json doc = base();
  doc["ptp"]["reference"] = "none";
  doc["ptp"]["host_clock_export"] = "ntp_shm";
  doc["ptp"]["ntp_shm_unit"] = 7;
  const auto r = parse_config(doc);
  ASSERT_TRUE(r.errors.empty()) << to_json(r.errors).dump();
  EXPECT_EQ(ptp_section(*r.config).host_clock_export, "ntp_shm");
  EXPECT_EQ(ptp_section(*r.config).ntp_shm_unit, 7u);
  const auto again = parse_config(to_json(*r.config));
  ASSERT_TRUE(again.errors.empty()) << to_json(again.errors).dump();
  EXPECT_EQ(ptp_section(*again.config), ptp_section(*r.config));
}

TEST(PtpConfig, InvalidSectionsAreRejectedWithPaths) {
  struct Case {
    const char* name;
    std::function<void(json&)> change;
    const char* path;
  };
  const Case cases[] = {
      {"unknown profile", [](json& p) { p["profile"] = "ieee802_1as"; }, "/ptp/profile"},
      {"domain range", [](json& p) { p["domain"] = 256; }, "/ptp/domain"},
      {"priority type", [](json& p) { p["priority1"] = "high"; }, "/ptp/priority1"},
      {"bad identity", [](json& p) { p["clock_identity"] = "02:00:00:ff:fe:00:00"; }, "/ptp/clock_identity"},
      {"unknown reference", [](json& p) { p["reference"] = "gps"; }, "/ptp/reference"},
      {"unknown servo", [](json& p) { p["servo"] = "pid"; }, "/ptp/servo"},
      {"unknown filter", [](json& p) { p["filter"] = "mean"; }, "/ptp/filter"},
      {"unknown field", [](json& p) { p["priority3"] = 1; }, "/ptp/priority3"},
      {"unknown port", [](json& p) { p["ports"][0]["port"] = "p9"; }, "/ptp/ports/0/port"},
      {"port twice", [](json& p) { p["ports"][1]["port"] = "p0"; }, "/ptp/ports/1/port"},
      {"missing port", [](json& p) { p["ports"][0].erase("port"); }, "/ptp/ports/0/port"},
      {"unknown transport", [](json& p) { p["ports"][0]["transport"] = "udp"; }, "/ptp/ports/0/transport"},
      {"udp without address", [](json& p) { p["ports"][0].erase("address"); }, "/ptp/ports/0/address"},
      {"wrong family", [](json& p) { p["ports"][0]["address"] = "fd00::1"; }, "/ptp/ports/0/address"},
      {"multicast address", [](json& p) { p["ports"][0]["address"] = "224.0.1.129"; }, "/ptp/ports/0/address"},
      {"sync interval range", [](json& p) { p["ports"][0]["log_sync_interval"] = -8; }, "/ptp/ports/0/log_sync_interval"},
      {"announce interval type", [](json& p) { p["ports"][0]["log_announce_interval"] = 0.5; },
       "/ptp/ports/0/log_announce_interval"},
      {"receipt timeout range", [](json& p) { p["ports"][0]["announce_receipt_timeout"] = 1; },
       "/ptp/ports/0/announce_receipt_timeout"},
      {"unknown delay mechanism", [](json& p) { p["ports"][1]["delay_mechanism"] = "auto"; },
       "/ptp/ports/1/delay_mechanism"},
      {"latency range", [](json& p) { p["ports"][0]["ingress_latency_ns"] = 2'000'000; },
       "/ptp/ports/0/ingress_latency_ns"},
      {"unknown timestamping", [](json& p) { p["ports"][0]["timestamping"] = "nic"; },
       "/ptp/ports/0/timestamping"},
      {"g8275.1 over udp", [](json& p) { p["profile"] = "g8275_1"; }, "/ptp/ports/0/transport"},
      {"g8275.2 needs unicast", [](json& p) { p["profile"] = "g8275_2"; }, "/ptp/ports/0/unicast_masters"},
      {"unicast master not an address", [](json& p) { p["ports"][0]["unicast_masters"] = {"10.0.0.2", "ptp-gm"}; },
       "/ptp/ports/0/unicast_masters/1"},
      {"unicast master is us", [](json& p) { p["ports"][0]["unicast_masters"] = {"10.0.0.1"}; },
       "/ptp/ports/0/unicast_masters/0"},
      {"ipv6 master on a udp_ipv4 port", [](json& p) { p["ports"][0]["unicast_masters"] = {"fd00::2"}; },
       "/ptp/ports/0/unicast_masters/0"},
      {"unicast masters over l2", [](json& p) { p["ports"][1]["unicast_masters"] = {"10.0.0.2"}; },
       "/ptp/ports/1/unicast_masters"},
      {"request duration range", [](json& p) { p["unicast_request_duration_s"] = 5; }, "/ptp/unicast_request_duration_s"},
      {"slave-only with reference", [](json& p) { p["slave_only"] = true; }, "/ptp/reference"},
      {"unknown host export", [](json& p) { p["host_clock_export"] = "adjtimex"; }, "/ptp/host_clock_export"},
      {"export of the host's own time", [](json& p) { p["host_clock_export"] = "ntp_shm"; }, "/ptp/host_clock_export"},
      {"shm unit range", [](json& p) { p["ntp_shm_unit"] = 256; }, "/ptp/ntp_shm_unit"},
  };
  for (const auto& c : cases) {
    json doc = base();
    c.change(doc["ptp"]);
    const auto r = parse_config(doc);
    ASSERT_FALSE(r.errors.empty()) << c.name;
    bool found = false;
    for (const auto& e : r.errors) found = found || e.path == c.path;
    EXPECT_TRUE(found) << c.name << ": " << to_json(r.errors).dump();
    EXPECT_FALSE(r.config) << c.name;
  }
}

TEST(PtpConfig, EveryProfileNameHasItsDefaults) {
  for (const auto& name : ptp_profile_names()) {
    const auto p = ptp::find_profile(name);
    ASSERT_TRUE(p) << name;
  }
  EXPECT_EQ(ptp::find_profile("smpte_2059_2")->domain, 127);
  EXPECT_EQ(ptp::find_profile("smpte_2059_2")->log_sync_interval, -3);
  EXPECT_EQ(ptp::find_profile("smpte_2059_2")->log_announce_interval, -2);
  EXPECT_EQ(ptp::find_profile("g8275_1")->domain, 24);
  EXPECT_EQ(ptp::find_profile("g8275_1")->bmca, ptp::BmcaKind::kTelecom);
  EXPECT_TRUE(ptp::find_profile("g8275_1")->peer_delay_address);
  EXPECT_EQ(ptp::find_profile("g8275_2")->domain, 44);
  EXPECT_EQ(ptp::find_profile("default_p2p")->delay_mechanism, ptp::DelayMechanism::kP2P);
  EXPECT_FALSE(ptp::find_profile("ieee802_1as"));
}

}  // namespace
}  // namespace meridian::config
