// Config validation: a table of bad documents, each answered with the
// JSON-pointer path of the offending field; all errors collected at once.
#include <gtest/gtest.h>

#include "config/model.h"

using meridian::config::parse_config;
using nlohmann::json;

namespace {

json good() {
  return json::parse(R"({
    "dataplane": {"lcores": [0, 1], "main_lcore": 0},
    "ports": [{"name": "a", "devargs": "net_ring0"}, {"name": "b", "devargs": "net_ring1"},
              {"name": "c", "devargs": "0000:3b:00.0"}],
    "xconnect": [{"a": "a", "b": "b"}],
    "punt": {"ethertypes": ["0x88cc", 35063]}
  })");
}

struct BadCase {
  const char* name;
  const char* merge_patch;  // applied to good()
  const char* path;
  const char* reason_contains;
};

const BadCase kBad[] = {
    {"wrong type root section", R"({"ports": {}})", "/ports", "expected array"},
    {"wrong type integer", R"({"dataplane": {"memory_mb": "lots"}})", "/dataplane/memory_mb", "expected integer"},
    {"wrong type bool", R"({"ports": [{"name":"a","devargs":"x","promiscuous":"yes"}]})", "/ports/0/promiscuous", "expected boolean"},
    {"negative integer", R"({"dataplane": {"burst_size": -1}})", "/dataplane/burst_size", "between 1 and 64"},
    {"float for integer", R"({"dataplane": {"burst_size": 1.5}})", "/dataplane/burst_size", "expected integer"},
    {"missing devargs", R"({"ports": [{"name":"a"}]})", "/ports/0/devargs", "required"},
    {"missing name", R"({"ports": [{"devargs":"net_null0"}]})", "/ports/0/name", "required"},
    {"unknown key root", R"({"colour": "blue"})", "/colour", "unknown field"},
    {"unknown key nested", R"({"ports": [{"name":"a","devargs":"x","speed":1}]})", "/ports/0/speed", "unknown field"},
    {"mtu too big", R"({"ports": [{"name":"a","devargs":"x","mtu":65000}]})", "/ports/0/mtu", "between 68 and 9600"},
    {"mtu too small", R"({"ports": [{"name":"a","devargs":"x","mtu":10}]})", "/ports/0/mtu", "between"},
    {"descriptors not power of two", R"({"ports": [{"name":"a","devargs":"x","rx_descriptors":1000}]})", "/ports/0/rx_descriptors", "power of two"},
    {"duplicate port names", R"({"ports": [{"name":"a","devargs":"x"},{"name":"a","devargs":"y"}], "xconnect": []})", "/ports/1/name", "duplicate port name"},
    {"duplicate devices", R"({"ports": [{"name":"a","devargs":"net_x0,iface=a"},{"name":"b","devargs":"net_x0,iface=b"}]})", "/ports/1/devargs", "already used"},
    {"bad port name", R"({"ports": [{"name":"a b","devargs":"x"}], "xconnect": []})", "/ports/0/name", "letters"},
    {"devargs with space", R"({"ports": [{"name":"a","devargs":"net x"}], "xconnect": []})", "/ports/0/devargs", "without spaces"},
    {"empty devargs", R"({"ports": [{"name":"a","devargs":""}], "xconnect": []})", "/ports/0/devargs", "must not be empty"},
    {"xconnect unknown port", R"({"xconnect": [{"a":"a","b":"zz"}]})", "/xconnect/0/b", "unknown port"},
    {"xconnect to itself", R"({"xconnect": [{"a":"a","b":"a"}]})", "/xconnect/0/b", "must differ"},
    {"port in two xconnects", R"({"xconnect": [{"a":"a","b":"b"},{"a":"a","b":"c"}]})", "/xconnect/1/a", "already cross-connected"},
    {"main lcore not listed", R"({"dataplane": {"main_lcore": 5}})", "/dataplane/main_lcore", "one of the listed"},
    {"no worker lcore", R"({"dataplane": {"lcores": [0]}})", "/dataplane/lcores", "at least one worker"},
    {"duplicate lcore", R"({"dataplane": {"lcores": [0, 1, 1]}})", "/dataplane/lcores", "duplicate"},
    {"lcore out of range", R"({"dataplane": {"lcores": [0, 500]}})", "/dataplane/lcores/1", "lcore id"},
    {"hugepages enum", R"({"dataplane": {"hugepages": "maybe"}})", "/dataplane/hugepages", "one of"},
    {"punt ring not power of two", R"({"dataplane": {"punt_ring_size": 1000}})", "/dataplane/punt_ring_size", "power of two"},
    {"ethertype below 0x600", R"({"punt": {"ethertypes": [100]}})", "/punt/ethertypes/0", "EtherType"},
    {"ethertype garbage", R"({"punt": {"ethertypes": ["0xzz"]}})", "/punt/ethertypes/0", "EtherType"},
    {"ethertype duplicate", R"({"punt": {"ethertypes": ["0x88cc", 35020]}})", "/punt/ethertypes/1", "duplicate"},
    {"bad file prefix", R"({"dataplane": {"file_prefix": "../etc"}})", "/dataplane/file_prefix", "letters"},
    {"port not an object", R"({"ports": [42]})", "/ports/0", "expected object"},
    {"short pci address", R"({"ports": [{"name":"a","devargs":"3b:00.0"}], "xconnect": []})", "/ports/0/devargs", "full PCI address"},
    {"eal arg with space", R"({"dataplane": {"eal_args": ["--foo bar"]}})", "/dataplane/eal_args/0", "printable"},
};

class BadConfig : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfig, RejectedWithPath) {
  const BadCase& c = GetParam();
  json doc = good();
  doc.merge_patch(json::parse(c.merge_patch));
  auto r = parse_config(doc);
  EXPECT_FALSE(r.config.has_value());
  bool found = false;
  std::string all;
  for (const auto& e : r.errors) {
    all += e.path + ": " + e.reason + "\n";
    if (e.path == c.path && e.reason.find(c.reason_contains) != std::string::npos) found = true;
  }
  EXPECT_TRUE(found) << "expected " << c.path << " ~ '" << c.reason_contains << "', got:\n" << all;
}

INSTANTIATE_TEST_SUITE_P(Table, BadConfig, ::testing::ValuesIn(kBad),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (auto& ch : n) if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

TEST(ConfigValidation, GoodDocumentParses) {
  auto r = parse_config(good());
  ASSERT_TRUE(r.config) << r.errors.size();
  EXPECT_EQ(r.config->ports.size(), 3u);
  EXPECT_TRUE(r.config->is_pci(r.config->ports[2]));
  EXPECT_FALSE(r.config->is_pci(r.config->ports[0]));
  EXPECT_EQ(r.config->punt.ethertypes, (std::vector<uint16_t>{0x88cc, 0x88f7}));
}

TEST(ConfigValidation, CollectsEveryErrorNotJustTheFirst) {
  json doc = json::parse(R"({
    "dataplane": {"memory_mb": "x", "burst_size": 0, "bogus": 1},
    "ports": [{"name": "a"}, {"devargs": "y", "mtu": 1}],
    "xconnect": [{"a": "a", "b": "nope"}]
  })");
  auto r = parse_config(doc);
  ASSERT_FALSE(r.config);
  std::set<std::string> paths;
  for (const auto& e : r.errors) paths.insert(e.path);
  for (const char* p : {"/dataplane/memory_mb", "/dataplane/burst_size", "/dataplane/bogus",
                        "/ports/0/devargs", "/ports/1/name", "/ports/1/mtu", "/xconnect/0/b"}) {
    EXPECT_TRUE(paths.count(p)) << p;
  }
}

TEST(ConfigValidation, RootMustBeObject) {
  for (const char* text : {"[]", "42", "\"x\"", "null"}) {
    auto r = parse_config(json::parse(text));
    ASSERT_FALSE(r.config);
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].path, "");
  }
}

TEST(ConfigValidation, KeysWithSlashAndTildeAreEscapedInPaths) {
  auto r = parse_config(json::parse(R"({"a/b~c": 1})"));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].path, "/a~1b~0c");
}

TEST(ConfigValidation, TooManyPortsRejected) {
  json doc = json::object();
  doc["ports"] = json::array();
  for (int i = 0; i < 40; ++i) doc["ports"].push_back({{"name", "p" + std::to_string(i)}, {"devargs", "net_null" + std::to_string(i)}});
  auto r = parse_config(doc);
  ASSERT_FALSE(r.config);
  EXPECT_EQ(r.errors[0].path, "/ports");
}

TEST(ConfigValidation, EmptyDocumentGivesDefaults) {
  auto r = parse_config(json::object());
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->dataplane.lcores, (std::vector<unsigned>{0, 1}));
  EXPECT_EQ(r.config->dataplane.burst_size, 32u);
}

}  // namespace
