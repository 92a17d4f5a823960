// Validation and apply errors that name the offending field by JSON pointer.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace meridian::config {

/// One problem with one field: `path` is an RFC 6901 JSON pointer into the
/// config document (e.g. "/ports/1/devargs"), `reason` is for humans.
struct FieldError {
  std::string path;
  std::string reason;
  bool operator==(const FieldError&) const = default;
};

using FieldErrors = std::vector<FieldError>;

/// Appends an escaped reference token to a JSON pointer ("~" -> "~0", "/" -> "~1").
std::string pointer_append(const std::string& base, const std::string& token);
inline std::string pointer_append(const std::string& base, size_t index) {
  return base + "/" + std::to_string(index);
}

/// `[{"path": ..., "reason": ...}, ...]`, the `details` member of error bodies.
nlohmann::json to_json(const FieldErrors& errors);

}  // namespace meridian::config
