// JSON round trip: the normalised document re-parses to the same Config,
// and YAML files mean the same as their JSON twins.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "config/document.h"
#include "config/model.h"

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

// ---- hostile documents (hardening issue): each refused with its path -----------

TEST(HostileDocuments, DuplicateKeysAreRefusedAtTheirPathInJsonAndYaml) {
  std::string error, path;
  EXPECT_FALSE(parse_json_text(R"({"vxlan": {"bridge_domains": [{"vni": 1}, {"vni": 2, "vni": 3}]}})", error, &path));
  EXPECT_EQ(path, "/vxlan/bridge_domains/1/vni");
  EXPECT_NE(error.find("duplicate key 'vni'"), std::string::npos);
  path.clear();
  EXPECT_FALSE(parse_yaml_text("vxlan:\n  bridge_domains:\n    - vni: 1\n    - vni: 2\n      vni: 3\n", error, &path));
  EXPECT_EQ(path, "/vxlan/bridge_domains/1/vni");
  EXPECT_NE(error.find("duplicate key"), std::string::npos);
  // Same keys in different objects are fine.
  EXPECT_TRUE(parse_json_text(R"({"a": {"x": 1}, "b": {"x": 1}, "c": [{"x": 1}, {"x": 2}]})", error));
}

TEST(HostileDocuments, AYamlAliasBombIsRefusedNotExpanded) {
  // "Billion laughs": nine levels of nine aliases each, 9^9 leaves.
  std::string yaml = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i <= 9; ++i) {
    yaml += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 9; ++k) yaml += std::string(k ? ", " : "") + "*a" + std::to_string(i - 1);
    yaml += "]\n";
  }
  std::string error, path;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(parse_yaml_text(yaml, error, &path));
  EXPECT_NE(error.find("expands to more than"), std::string::npos) << error;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  // A few aliases are ordinary YAML.
  EXPECT_TRUE(parse_yaml_text("base: &b {mtu: 9000}\nother: *b\n", error));
}

TEST(HostileDocuments, BytesThatAreNotUtf8AreRefusedInYaml) {
  std::string error, path;
  EXPECT_FALSE(parse_yaml_text("ports:\n  - name: \"a\xff\"\n", error, &path));
  EXPECT_EQ(path, "/ports/0/name");
  EXPECT_FALSE(parse_yaml_text("\xc3\x28: 1\n", error, &path));
  EXPECT_NE(error.find("UTF-8"), std::string::npos);
  // JSON text is checked by the parser itself.
  EXPECT_FALSE(parse_json_text("{\"a\": \"\xff\"}", error));
  // Whatever reaches an output is written, never thrown over.
  EXPECT_EQ(to_text(json("a\xff"), -1), "\"a\xef\xbf\xbd\"");
}

TEST(HostileDocuments, DeepNestingIsRefusedInBoth) {
  std::string error, path;
  EXPECT_FALSE(parse_json_text(std::string(100, '[') + std::string(100, ']'), error, &path));
  EXPECT_NE(error.find("nesting"), std::string::npos);
  EXPECT_FALSE(parse_yaml_text(std::string(100, '[') + std::string(100, ']'), error, &path));
  EXPECT_NE(error.find("nesting"), std::string::npos);
}

TEST(HostileDocuments, OversizeFilesAreRefusedBeforeParsing) {
  char dir[] = "/tmp/meridian-big-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir));
  const std::string path = std::string(dir) + "/big.yaml";
  {
    std::ofstream f(path);
    f << "x: \"" << std::string(kMaxDocumentFileBytes, 'a') << "\"\n";
  }
  std::string error;
  EXPECT_FALSE(load_document_file(path, error));
  EXPECT_NE(error.find("limited to"), std::string::npos) << error;
  std::filesystem::remove_all(dir);
}

TEST(HostileDocuments, TempFilesOfAnInterruptedWriteAreRemoved) {
  char dir[] = "/tmp/meridian-tmp-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir));
  const std::string path = std::string(dir) + "/meridian.json";
  for (const char* name : {"/meridian.json.tmp.a1B2c3", "/meridian.json.generation.tmp.Zz9876",
                           "/meridian.json.tmp.toolong7", "/other.json.tmp.a1B2c3", "/meridian.json"}) {
    std::ofstream(std::string(dir) + name) << "x";
  }
  EXPECT_EQ(remove_stale_temp_files(path).size(), 1u);
  EXPECT_EQ(remove_stale_temp_files(path + ".generation").size(), 1u);
  EXPECT_TRUE(std::filesystem::exists(path));
  EXPECT_TRUE(std::filesystem::exists(std::string(dir) + "/meridian.json.tmp.toolong7"));
  EXPECT_TRUE(std::filesystem::exists(std::string(dir) + "/other.json.tmp.a1B2c3"));
  std::filesystem::remove_all(dir);
}
