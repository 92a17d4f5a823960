// JSON-lines logging for the control plane: one object per line with ts,
// level, module, msg and trace_id. Workers never log; they count.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace meridian::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

/// Parses "debug", "info", "warn"/"warning", "error"; false if unknown.
bool parse_level(const std::string& text, Level& out);
void set_level(Level level);
Level level();
/// Where lines go; default stderr. Not thread-safe to change while logging.
void set_fd(int fd);

/// The trace id attached to every line logged on this thread.
void set_trace_id(std::string id);
const std::string& trace_id();
/// 16 random hex digits.
std::string new_trace_id();

/// Clears the trace id when it goes out of scope.
struct TraceScope {
  explicit TraceScope(std::string id) { set_trace_id(std::move(id)); }
  ~TraceScope() { set_trace_id(""); }
};

void write(Level level, const char* module, const std::string& msg,
           const nlohmann::json& fields = nullptr);

inline void debug(const char* m, const std::string& s, const nlohmann::json& f = nullptr) { write(Level::kDebug, m, s, f); }
inline void info(const char* m, const std::string& s, const nlohmann::json& f = nullptr) { write(Level::kInfo, m, s, f); }
inline void warn(const char* m, const std::string& s, const nlohmann::json& f = nullptr) { write(Level::kWarn, m, s, f); }
inline void error(const char* m, const std::string& s, const nlohmann::json& f = nullptr) { write(Level::kError, m, s, f); }

}  // namespace meridian::log
