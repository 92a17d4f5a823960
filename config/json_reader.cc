#include "config/json_reader.h"

namespace meridian::config {

std::string pointer_append(const std::string& base, const std::string& token) {
  std::string out = base + "/";
  for (char c : token) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

nlohmann::json to_json(const FieldErrors& errors) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : errors) out.push_back({{"path", e.path}, {"reason", e.reason}});
  return out;
}

std::string expected(const char* what, const nlohmann::json& got) {
  return std::string("expected ") + what + ", got " + got.type_name();
}

ObjectReader::ObjectReader(const nlohmann::json& value, std::string path, FieldErrors& errors)
    : value_(value), path_(std::move(path)), errors_(errors), is_object_(value.is_object()) {
  if (!is_object_) error(path_, expected("object", value));
}

ObjectReader::~ObjectReader() {
  if (!is_object_) return;
  for (const auto& [key, _] : value_.items()) {
    if (!seen_.count(key)) error(field_path(key), "unknown field");
  }
}

const nlohmann::json* ObjectReader::find(const std::string& key, bool required) {
  if (!is_object_) return nullptr;
  seen_.insert(key);
  auto it = value_.find(key);
  if (it == value_.end()) {
    if (required) error(field_path(key), "required");
    return nullptr;
  }
  return &*it;
}

bool ObjectReader::read_uint(const std::string& key, unsigned& out, uint64_t min, uint64_t max,
                             bool required) {
  const auto* v = find(key, required);
  if (!v) return false;
  if (!v->is_number_integer()) {
    error(field_path(key), expected("integer", *v));
    return false;
  }
  if (v->is_number_integer() && !v->is_number_unsigned() && v->get<int64_t>() < 0) {
    error(field_path(key), "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return false;
  }
  uint64_t n = v->get<uint64_t>();
  if (n < min || n > max) {
    error(field_path(key), "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return false;
  }
  out = static_cast<unsigned>(n);
  return true;
}

bool ObjectReader::read_bool(const std::string& key, bool& out, bool required) {
  const auto* v = find(key, required);
  if (!v) return false;
  if (!v->is_boolean()) {
    error(field_path(key), expected("boolean", *v));
    return false;
  }
  out = v->get<bool>();
  return true;
}

bool ObjectReader::read_string(const std::string& key, std::string& out, bool required,
                               size_t max_len) {
  const auto* v = find(key, required);
  if (!v) return false;
  if (!v->is_string()) {
    error(field_path(key), expected("string", *v));
    return false;
  }
  const auto& s = v->get_ref<const std::string&>();
  if (s.empty()) {
    error(field_path(key), "must not be empty");
    return false;
  }
  if (s.size() > max_len) {
    error(field_path(key), "longer than " + std::to_string(max_len) + " characters");
    return false;
  }
  out = s;
  return true;
}

bool ObjectReader::read_array(
    const std::string& key,
    const std::function<void(const nlohmann::json&, const std::string&)>& each, bool required,
    size_t max_items) {
  const auto* v = find(key, required);
  if (!v) return false;
  if (!v->is_array()) {
    error(field_path(key), expected("array", *v));
    return false;
  }
  if (v->size() > max_items) {
    error(field_path(key), "more than " + std::to_string(max_items) + " items");
    return false;
  }
  for (size_t i = 0; i < v->size(); ++i) each((*v)[i], pointer_append(field_path(key), i));
  return true;
}

bool ObjectReader::read_raw(
    const std::string& key,
    const std::function<void(const nlohmann::json&, const std::string&)>& fn, bool required) {
  const auto* v = find(key, required);
  if (!v) return false;
  fn(*v, field_path(key));
  return true;
}

}  // namespace meridian::config
