// Transactional config apply: validate everything, check what can change
// live, build the new state, persist, then commit in one step. A rejected
// change leaves the running config, its generation and the data path alone.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "config/field_error.h"
#include "config/model.h"

namespace meridian::config {

/// Implemented by whoever owns the running state (the data plane in meridiand).
class ApplyBackend {
 public:
  virtual ~ApplyBackend() = default;
  /// Errors for changes that need a restart (e.g. a port's devargs).
  virtual FieldErrors check_live_change(const Config& running, const Config& next) = 0;
  /// Builds everything `next` needs without touching running state and returns
  /// the commit step, which must not fail. On error fills `errors` instead.
  virtual std::function<void()> prepare(const Config& running, const Config& next,
                                        FieldErrors& errors) = 0;
};

struct ApplyOutcome {
  int http_status = 200;
  std::string error;        // empty on success
  FieldErrors details;
  nlohmann::json diff = nlohmann::json::array();  // RFC 6902 patch running -> requested
  uint64_t generation = 0;  // generation after the call
  bool dry_run = false;
  bool changed = false;
  FieldErrors restart_required;  // dry run only: paths a real apply would refuse (409)
  FieldErrors warnings;          // accepted, but the operator should know (e.g. over-subscribed QoS)

  nlohmann::json to_json() const;
};

/// Parses an If-Match header value ("\"7\"", "7", "W/\"7\"" or "*").
/// Returns nullopt for "*" or empty (no precondition); `valid` false if garbage.
std::optional<uint64_t> parse_if_match(const std::string& header, bool& valid);

class ConfigManager {
 public:
  /// `persist_path` empty disables persistence (tests). The generation is kept
  /// beside the file as `<persist_path>.generation`.
  ConfigManager(Config initial, std::string persist_path, uint64_t generation = 1);

  void set_backend(ApplyBackend* backend) { backend_ = backend; }

  ApplyOutcome replace(const nlohmann::json& document, bool dry_run,
                       std::optional<uint64_t> if_match);
  ApplyOutcome merge_patch(const nlohmann::json& patch, bool dry_run,
                           std::optional<uint64_t> if_match);

  const Config& running() const { return running_; }
  nlohmann::json document() const { return to_json(running_); }
  uint64_t generation() const { return generation_; }

  /// Writes the running config and generation to disk (done on every apply).
  std::string persist() const;
  /// Reads `<path>.generation`, 1 when absent or unreadable.
  static uint64_t load_generation(const std::string& persist_path);

 private:
  ApplyOutcome apply(const nlohmann::json& document, bool dry_run,
                     std::optional<uint64_t> if_match);

  Config running_;
  std::string persist_path_;
  uint64_t generation_;
  ApplyBackend* backend_ = nullptr;
};

}  // namespace meridian::config
