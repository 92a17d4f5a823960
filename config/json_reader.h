// Reads one JSON object field by field, collecting errors with JSON-pointer
// paths instead of throwing. Every module's config section uses it, so the
// wording of errors is the same everywhere ("required", "unknown field", ...).
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/field_error.h"

namespace meridian::config {

class ObjectReader {
 public:
  /// Reports "expected object" once if `value` is not an object; all reads
  /// then become no-ops that keep the defaults.
  ObjectReader(const nlohmann::json& value, std::string path, FieldErrors& errors);
  /// Reports every key that no read asked for as "unknown field".
  ~ObjectReader();
  ObjectReader(const ObjectReader&) = delete;
  ObjectReader& operator=(const ObjectReader&) = delete;

  bool ok() const { return is_object_; }
  const std::string& path() const { return path_; }
  std::string field_path(const std::string& key) const { return pointer_append(path_, key); }

  /// Each read returns true when the key was present and valid. A missing
  /// optional key keeps `out` as is; a missing required key is "required".
  bool read_uint(const std::string& key, unsigned& out, uint64_t min, uint64_t max,
                 bool required = false);
  bool read_bool(const std::string& key, bool& out, bool required = false);
  bool read_string(const std::string& key, std::string& out, bool required = false,
                   size_t max_len = 256);
  /// Calls `each(element, element_path)` for every element of an array.
  bool read_array(const std::string& key,
                  const std::function<void(const nlohmann::json&, const std::string&)>& each,
                  bool required = false, size_t max_items = 4096);
  /// Gives the raw value to `fn` (for enums and other non-scalar checks).
  bool read_raw(const std::string& key,
                const std::function<void(const nlohmann::json&, const std::string&)>& fn,
                bool required = false);

  void error(const std::string& path, const std::string& reason) {
    errors_.push_back({path, reason});
  }

 private:
  const nlohmann::json* find(const std::string& key, bool required);

  const nlohmann::json& value_;
  std::string path_;
  FieldErrors& errors_;
  bool is_object_;
  std::set<std::string> seen_;
};

/// A string field parsed by `parse` (returning an optional), or "expected <what>".
template <class T, class Parse>
bool read_typed(ObjectReader& r, const std::string& key, T& out, Parse parse, const char* what,
                bool required = false) {
  std::string text;
  if (!r.read_string(key, text, required, 64)) return false;
  auto v = parse(text);
  if (!v) {
    r.error(r.field_path(key), std::string("expected ") + what);
    return false;
  }
  out = *v;
  return true;
}

/// Elements of a string array parsed by `parse`.
template <class T, class Parse>
void read_typed_array(ObjectReader& r, const std::string& key, std::vector<T>& out, Parse parse,
                      const char* what, size_t max_items) {
  out.clear();
  r.read_array(key, [&](const nlohmann::json& v, const std::string& p) {
    std::optional<T> parsed;
    if (v.is_string()) parsed = parse(v.get<std::string>());
    if (!parsed) {
      r.error(p, std::string("expected ") + what);
      return;
    }
    out.push_back(*parsed);
  }, false, max_items);
}

/// "expected integer" etc. for a JSON value's type name.
std::string expected(const char* what, const nlohmann::json& got);

}  // namespace meridian::config
