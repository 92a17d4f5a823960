// Transactional apply: generations, If-Match, dry run, restart-only
// rejections, persistence, and "a rejected config changes nothing".
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "config/document.h"
#include "config/manager.h"

using namespace meridian::config;
using nlohmann::json;

namespace {

Config base() {
  auto r = parse_config(json::parse(R"({
    "ports": [{"name": "a", "devargs": "net_ring0"}, {"name": "b", "devargs": "net_ring1"}],
    "xconnect": [{"a": "a", "b": "b"}]})"));
  return *r.config;
}

/// Records what the manager asked for; can be told to refuse.
struct RecordingBackend : ApplyBackend {
  FieldErrors live_errors, prepare_errors;
  int prepared = 0, committed = 0;
  Config last;
  FieldErrors check_live_change(const Config&, const Config&) override { return live_errors; }
  std::function<void()> prepare(const Config&, const Config& next, FieldErrors& errors) override {
    ++prepared;
    errors = prepare_errors;
    if (!errors.empty()) return nullptr;
    return [this, next] {
      ++committed;
      last = next;
    };
  }
};

class ManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/meridian-mgr-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/running.json";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_, path_;
};

TEST_F(ManagerTest, AppliedChangeBumpsGenerationPersistsAndCommits) {
  ConfigManager m(base(), path_, 1);
  RecordingBackend be;
  m.set_backend(&be);
  auto out = m.merge_patch(json::parse(R"({"punt": {"ethertypes": ["0x88cc"]}})"), false, std::nullopt);
  EXPECT_EQ(out.http_status, 200);
  EXPECT_TRUE(out.changed);
  EXPECT_EQ(out.generation, 2u);
  EXPECT_EQ(m.generation(), 2u);
  EXPECT_EQ(be.committed, 1);
  EXPECT_EQ(be.last.punt.ethertypes, std::vector<uint16_t>{0x88cc});
  std::string err;
  auto on_disk = load_document_file(path_, err);
  ASSERT_TRUE(on_disk);
  EXPECT_EQ(*on_disk, m.document());
  EXPECT_EQ(ConfigManager::load_generation(path_), 2u);
  ASSERT_EQ(out.diff.size(), 1u);
  EXPECT_EQ(out.diff[0]["path"], "/punt/ethertypes/-");  // RFC 6902 append
}

TEST_F(ManagerTest, DryRunReturnsDiffAndChangesNothing) {
  ConfigManager m(base(), path_, 7);
  RecordingBackend be;
  m.set_backend(&be);
  auto out = m.merge_patch(json::parse(R"({"xconnect": []})"), true, std::nullopt);
  EXPECT_EQ(out.http_status, 200);
  EXPECT_TRUE(out.dry_run);
  EXPECT_TRUE(out.changed);
  EXPECT_EQ(out.generation, 7u);
  EXPECT_EQ(m.generation(), 7u);
  EXPECT_EQ(be.prepared, 0);
  EXPECT_EQ(m.running(), base());
  EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST_F(ManagerTest, IfMatchMismatchIs412AndNothingChanges) {
  ConfigManager m(base(), path_, 3);
  auto out = m.merge_patch(json::parse(R"({"xconnect": []})"), false, 2);
  EXPECT_EQ(out.http_status, 412);
  EXPECT_EQ(m.generation(), 3u);
  EXPECT_EQ(m.running(), base());
  auto ok = m.merge_patch(json::parse(R"({"xconnect": []})"), false, 3);
  EXPECT_EQ(ok.http_status, 200);
  EXPECT_EQ(m.generation(), 4u);
}

TEST_F(ManagerTest, InvalidConfigIs422WithPathsAndNothingChanges) {
  ConfigManager m(base(), path_, 1);
  RecordingBackend be;
  m.set_backend(&be);
  json doc = m.document();
  doc["ports"][1]["mtu"] = 1;
  doc["xconnect"][0]["b"] = "zz";
  auto out = m.replace(doc, false, std::nullopt);
  EXPECT_EQ(out.http_status, 422);
  ASSERT_EQ(out.details.size(), 2u);
  EXPECT_EQ(out.details[0].path, "/ports/1/mtu");
  EXPECT_EQ(out.details[1].path, "/xconnect/0/b");
  EXPECT_EQ(m.generation(), 1u);
  EXPECT_EQ(be.prepared, 0);
  EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST_F(ManagerTest, RestartOnlyChangeIs409) {
  ConfigManager m(base(), path_, 1);
  RecordingBackend be;
  be.live_errors = {{"/ports/0/devargs", "cannot change while running"}};
  m.set_backend(&be);
  json doc = m.document();
  doc["ports"][0]["devargs"] = "net_ring9";
  auto out = m.replace(doc, false, std::nullopt);
  EXPECT_EQ(out.http_status, 409);
  EXPECT_EQ(out.details[0].path, "/ports/0/devargs");
  EXPECT_EQ(m.generation(), 1u);
}

TEST_F(ManagerTest, DryRunShowsRestartOnlyChangesInsteadOfRefusing) {
  ConfigManager m(base(), path_, 1);
  RecordingBackend be;
  be.live_errors = {{"/ports/0/devargs", "cannot change while running"}};
  m.set_backend(&be);
  json doc = m.document();
  doc["ports"][0]["devargs"] = "net_ring9";
  auto out = m.replace(doc, true, std::nullopt);
  EXPECT_EQ(out.http_status, 200);
  EXPECT_TRUE(out.changed);
  ASSERT_EQ(out.restart_required.size(), 1u);
  EXPECT_EQ(out.to_json()["restart_required"][0]["path"], "/ports/0/devargs");
  EXPECT_EQ(m.generation(), 1u);
}

TEST_F(ManagerTest, BackendRefusalIs422AndNothingCommitted) {
  ConfigManager m(base(), path_, 1);
  RecordingBackend be;
  be.prepare_errors = {{"/xconnect/0", "port is not running"}};
  m.set_backend(&be);
  auto out = m.merge_patch(json::parse(R"({"punt": {"ethertypes": [35020]}})"), false, std::nullopt);
  EXPECT_EQ(out.http_status, 422);
  EXPECT_EQ(be.committed, 0);
  EXPECT_EQ(m.generation(), 1u);
}

TEST_F(ManagerTest, PersistFailureIs500AndNothingCommitted) {
  ConfigManager m(base(), "/nonexistent-dir/running.json", 1);
  RecordingBackend be;
  m.set_backend(&be);
  auto out = m.merge_patch(json::parse(R"({"xconnect": []})"), false, std::nullopt);
  EXPECT_EQ(out.http_status, 500);
  EXPECT_EQ(be.committed, 0);
  EXPECT_EQ(m.generation(), 1u);
  EXPECT_EQ(m.running(), base());
}

TEST_F(ManagerTest, UnchangedDocumentKeepsGeneration) {
  ConfigManager m(base(), path_, 5);
  RecordingBackend be;
  m.set_backend(&be);
  auto out = m.replace(m.document(), false, std::nullopt);
  EXPECT_EQ(out.http_status, 200);
  EXPECT_FALSE(out.changed);
  EXPECT_EQ(m.generation(), 5u);
  EXPECT_EQ(be.prepared, 0);
}

TEST(IfMatch, Parsing) {
  bool valid;
  EXPECT_EQ(parse_if_match("\"12\"", valid), 12u);
  EXPECT_TRUE(valid);
  EXPECT_EQ(parse_if_match("W/\"3\"", valid), 3u);
  EXPECT_EQ(parse_if_match(" 4 ", valid), 4u);
  EXPECT_FALSE(parse_if_match("*", valid));
  EXPECT_TRUE(valid);
  EXPECT_FALSE(parse_if_match("\"abc\"", valid));
  EXPECT_FALSE(valid);
  EXPECT_FALSE(parse_if_match("99999999999999999999999", valid));
  EXPECT_FALSE(valid);
}

}  // namespace
