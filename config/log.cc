#include "config/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <random>

namespace meridian::log {
namespace {

std::atomic<Level> g_level{Level::kInfo};
std::atomic<int> g_fd{2};
std::mutex g_write_mutex;
thread_local std::string t_trace_id;

const char* level_name(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

std::string timestamp() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const auto secs = time_point_cast<seconds>(now);
  const auto micros = duration_cast<microseconds>(now - secs).count();
  std::time_t t = system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long>(micros));
  return buf;
}

}  // namespace

bool parse_level(const std::string& text, Level& out) {
  if (text == "debug") out = Level::kDebug;
  else if (text == "info") out = Level::kInfo;
  else if (text == "warn" || text == "warning") out = Level::kWarn;
  else if (text == "error") out = Level::kError;
  else return false;
  return true;
}

void set_level(Level level) { g_level.store(level); }
Level level() { return g_level.load(); }
void set_fd(int fd) { g_fd.store(fd); }
void set_trace_id(std::string id) { t_trace_id = std::move(id); }
const std::string& trace_id() { return t_trace_id; }

std::string new_trace_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

void write(Level lvl, const char* module, const std::string& msg, const nlohmann::json& fields) {
  if (lvl < g_level.load(std::memory_order_relaxed)) return;
  nlohmann::json line = {{"ts", timestamp()},
                         {"level", level_name(lvl)},
                         {"module", module},
                         {"msg", msg},
                         {"trace_id", t_trace_id}};
  if (fields.is_object()) {
    for (const auto& [k, v] : fields.items()) {
      if (!line.contains(k)) line[k] = v;
    }
  }
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::lock_guard lock(g_write_mutex);
  const int fd = g_fd.load();
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
}

}  // namespace meridian::log
