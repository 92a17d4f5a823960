// Prometheus text formatting and JSON-lines logging.
#include <gtest/gtest.h>
#include <unistd.h>

#include "config/log.h"
#include "config/metrics.h"

using namespace meridian;

TEST(Metrics, FamiliesHaveHelpAndTypeOnceAndEscapedLabels) {
  config::MetricsWriter w;
  w.counter("meridian_x_total", "help with \\ backslash\nand newline");
  w.sample({{"port", "a\"b"}}, uint64_t{5});
  w.sample({{"port", "c\\d"}}, uint64_t{6});
  w.gauge("meridian_g", "gauge");
  w.sample({}, 1.5);
  const std::string& t = w.text();
  EXPECT_NE(t.find("# HELP meridian_x_total help with \\\\ backslash\\nand newline\n"), std::string::npos);
  EXPECT_NE(t.find("# TYPE meridian_x_total counter\n"), std::string::npos);
  EXPECT_NE(t.find("meridian_x_total{port=\"a\\\"b\"} 5\n"), std::string::npos);
  EXPECT_NE(t.find("meridian_x_total{port=\"c\\\\d\"} 6\n"), std::string::npos);
  EXPECT_NE(t.find("meridian_g 1.5\n"), std::string::npos);
}

TEST(Metrics, CounterWithoutTotalSuffixOrDuplicateFamilyIsAProgrammingError) {
  config::MetricsWriter w;
  EXPECT_THROW(w.counter("meridian_packets", "x"), std::logic_error);
  w.gauge("meridian_a", "x");
  EXPECT_THROW(w.gauge("meridian_a", "x"), std::logic_error);
}

TEST(Log, WritesOneJsonObjectPerLineWithTraceId) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  log::set_fd(fds[1]);
  log::set_level(log::Level::kInfo);
  {
    log::TraceScope scope("req-42");
    log::info("rest", "hello", {{"path", "/x"}});
  }
  log::debug("rest", "suppressed at info level");
  log::warn("config", "second");
  log::set_fd(2);
  close(fds[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  std::vector<nlohmann::json> lines;
  size_t pos = 0, nl;
  while ((nl = text.find('\n', pos)) != std::string::npos) {
    lines.push_back(nlohmann::json::parse(text.substr(pos, nl - pos)));
    pos = nl + 1;
  }
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["level"], "info");
  EXPECT_EQ(lines[0]["module"], "rest");
  EXPECT_EQ(lines[0]["msg"], "hello");
  EXPECT_EQ(lines[0]["trace_id"], "req-42");
  EXPECT_EQ(lines[0]["path"], "/x");
  EXPECT_TRUE(lines[0]["ts"].get<std::string>().ends_with("Z"));
  EXPECT_EQ(lines[1]["trace_id"], "");
  EXPECT_EQ(lines[1]["level"], "warn");
}

TEST(Log, LevelParsing) {
  log::Level l;
  EXPECT_TRUE(log::parse_level("debug", l));
  EXPECT_EQ(l, log::Level::kDebug);
  EXPECT_TRUE(log::parse_level("warning", l));
  EXPECT_EQ(l, log::Level::kWarn);
  EXPECT_FALSE(log::parse_level("loud", l));
}
