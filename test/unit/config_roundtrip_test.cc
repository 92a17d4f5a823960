// JSON round trip: the normalised document re-parses to the same Config,
// and YAML files mean the same as their JSON twins.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "document.h"
#include "model.h"

using namespace meridian::config;
using nlohmann::json;

TEST(ConfigRoundTrip, ParseToJsonParseIsIdentity) {
  json doc = json::parse(R"({
    "dataplane": {"lcores": [2, 3, 5], "main_lcore": 3, "memory_mb": 2048, "hugepages": "on",
                  "file_prefix": "edge1", "mbufs": 65536, "burst_size": 64, "tx_retries": 0,
                  "punt_ring_size": 4096, "idle_sleep_us": 5, "eal_args": ["--in-memory"]},
    "ports": [{"name": "up0", "devargs": "0000:3b:00.0", "rx_queues": 4, "rx_descriptors": 4096,
               "tx_descriptors": 2048, "mtu": 9000, "promiscuous": false, "rss": false},
              {"name": "dn0", "devargs": "net_af_packet0,iface=veth1"}],
    "xconnect": [{"a": "up0", "b": "dn0"}],
    "punt": {"ethertypes": ["0x88cc", "0x88f7"]}
  })");
  auto first = parse_config(doc);
  ASSERT_TRUE(first.config);
  json normalised = to_json(*first.config);
  auto second = parse_config(normalised);
  ASSERT_TRUE(second.config);
  EXPECT_EQ(*first.config, *second.config);
  EXPECT_EQ(to_json(*second.config), normalised);
  EXPECT_EQ(normalised["dataplane"]["hugepages"], "on");
  EXPECT_EQ(normalised["punt"]["ethertypes"][1], "0x88f7");
  EXPECT_EQ(normalised["ports"][1]["mtu"], 1500);  // default filled in
}

TEST(ConfigRoundTrip, DefaultsAreExplicitAfterNormalising) {
  auto r = parse_config(json::object());
  ASSERT_TRUE(r.config);
  json n = to_json(*r.config);
  for (const char* key : {"lcores", "main_lcore", "memory_mb", "hugepages", "file_prefix", "mbufs",
                          "burst_size", "tx_retries", "punt_ring_size", "idle_sleep_us", "eal_args"}) {
    EXPECT_TRUE(n["dataplane"].contains(key)) << key;
  }
}

TEST(ConfigRoundTrip, YamlMatchesJson) {
  const std::string yaml = R"(# edge gateway
dataplane:
  lcores: [0, 1]
  main_lcore: 0
  hugepages: "off"
ports:
  - name: a
    devargs: net_ring0
    promiscuous: false
  - {name: b, devargs: "net_ring1", mtu: 9000}
xconnect:
  - {a: a, b: b}
punt:
  ethertypes: [0x88cc, "0x88f7"]
)";
  std::string error;
  auto doc = parse_yaml_text(yaml, error);
  ASSERT_TRUE(doc) << error;
  auto r = parse_config(*doc);
  ASSERT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors[0].path + " " + r.errors[0].reason);
  EXPECT_FALSE(r.config->ports[0].promiscuous);
  EXPECT_EQ(r.config->ports[1].mtu, 9000u);
  EXPECT_EQ(r.config->dataplane.hugepages, HugepageMode::kOff);
  EXPECT_EQ(r.config->punt.ethertypes, (std::vector<uint16_t>{0x88cc, 0x88f7}));
}

TEST(ConfigRoundTrip, YamlTypeErrorsStillNamePaths) {
  std::string error;
  auto doc = parse_yaml_text("ports:\n  - name: a\n    devargs: x\n    mtu: \"9000\"\n", error);
  ASSERT_TRUE(doc);
  auto r = parse_config(*doc);
  ASSERT_FALSE(r.config);
  EXPECT_EQ(r.errors[0].path, "/ports/0/mtu");
}

TEST(ConfigRoundTrip, MalformedTextIsAnErrorNotACrash) {
  std::string error;
  EXPECT_FALSE(parse_json_text("{\"a\": ", error));
  EXPECT_NE(error.find("parse error at byte"), std::string::npos);
  EXPECT_FALSE(parse_yaml_text("a: [1, 2", error));
  EXPECT_NE(error.find("YAML"), std::string::npos);
}

TEST(ConfigRoundTrip, AtomicWriteReplacesWholeFile) {
  char dir[] = "/tmp/meridian-rt-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir));
  const std::string path = std::string(dir) + "/c.json";
  ASSERT_EQ(write_file_atomically(path, std::string(100000, 'x')), "");
  ASSERT_EQ(write_file_atomically(path, "{}\n"), "");
  EXPECT_EQ(*read_file(path), "{}\n");
  std::string error;
  EXPECT_TRUE(load_document_file(path, error));
  // No temp files left behind.
  int entries = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) (void)e, ++entries;
  EXPECT_EQ(entries, 1);
  EXPECT_NE(write_file_atomically("/nonexistent-dir/x.json", "{}"), "");
  std::filesystem::remove_all(dir);
}
