#include "config/document.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace meridian::config {
namespace {

nlohmann::json yaml_scalar(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return s;  // quoted: always a string
  static const std::regex kNull("^(~|null|Null|NULL|)$");
  static const std::regex kTrue("^(true|True|TRUE)$");
  static const std::regex kFalse("^(false|False|FALSE)$");
  static const std::regex kInt("^[-+]?[0-9]+$");
  static const std::regex kHex("^0x[0-9a-fA-F]+$");
  static const std::regex kFloat("^[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?$");
  if (std::regex_match(s, kNull)) return nullptr;
  if (std::regex_match(s, kTrue)) return true;
  if (std::regex_match(s, kFalse)) return false;
  try {
    if (std::regex_match(s, kInt)) {
      if (s[0] == '-') return std::stoll(s);
      return std::stoull(s);
    }
    if (std::regex_match(s, kHex)) return std::stoull(s, nullptr, 16);
    if (std::regex_match(s, kFloat)) return std::stod(s);
  } catch (const std::exception&) {
    // out of range: keep the text, validation will name the field
  }
  return s;
}

/// Bounds for documents: nesting (merge_patch, copies and destruction
/// recurse per level), and for YAML the expanded size, since an alias may
/// repeat a whole subtree (a "billion laughs" document expands 9^9 times).
constexpr int kMaxDepth = 64;
constexpr size_t kMaxYamlNodes = 1 << 20;

bool valid_utf8(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();  // strict: throws type_error.316 on a bad byte
    return true;
  } catch (const nlohmann::json::type_error&) {
    return false;
  }
}

/// A refusal with the JSON pointer of where it happened.
struct DocumentError : std::runtime_error {
  DocumentError(std::string p, const std::string& what) : std::runtime_error(what), path(std::move(p)) {}
  std::string path;
};

/// Converts a YAML tree to JSON, refusing what JSON would refuse or hide:
/// duplicate keys, bytes that are not UTF-8, and runaway expansion.
struct YamlConverter {
  /// A first pass that only counts, so an alias bomb is refused before any
  /// value is built.
  static void check_size(const YAML::Node& root) {
    size_t nodes = 0;
    std::vector<std::pair<YAML::Node, int>> todo{{root, 0}};
    while (!todo.empty()) {
      auto [node, depth] = std::move(todo.back());
      todo.pop_back();
      if (depth > kMaxDepth) throw DocumentError("", "nesting deeper than " + std::to_string(kMaxDepth) + " levels");
      if (++nodes > kMaxYamlNodes) {
        throw DocumentError("", "the document expands to more than " + std::to_string(kMaxYamlNodes) +
                                    " values (YAML aliases repeating a subtree?)");
      }
      if (node.IsSequence()) {
        for (const auto& item : node) todo.emplace_back(item, depth + 1);
      } else if (node.IsMap()) {
        for (const auto& kv : node) todo.emplace_back(kv.second, depth + 1);
      }
    }
  }

  nlohmann::json convert(const YAML::Node& node, const std::string& path, int depth) {
    if (depth > kMaxDepth) throw DocumentError(path, "nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    switch (node.Type()) {
      case YAML::NodeType::Sequence: {
        auto out = nlohmann::json::array();
        for (const auto& item : node) out.push_back(convert(item, pointer_append(path, out.size()), depth + 1));
        return out;
      }
      case YAML::NodeType::Map: {
        auto out = nlohmann::json::object();
        for (const auto& kv : node) {
          if (!kv.first.IsScalar()) throw DocumentError(path, "a key that is not a scalar");
          const std::string key = kv.first.as<std::string>();
          const std::string at = pointer_append(path, key);
          if (!valid_utf8(key)) throw DocumentError(at, "key is not valid UTF-8");
          if (out.contains(key)) throw DocumentError(at, "duplicate key '" + key + "'");
          out[key] = convert(kv.second, at, depth + 1);
        }
        return out;
      }
      case YAML::NodeType::Scalar:
        if (!valid_utf8(node.Scalar())) throw DocumentError(path, "not valid UTF-8");
        return yaml_scalar(node);
      default:
        return nullptr;
    }
  }
};

/// Follows the JSON parser's events to know where it is (for error paths),
/// refusing duplicate keys and absurd nesting as it goes.
class JsonGuard {
 public:
  bool operator()(int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    // After a refusal the parser stops reporting inside discarded values:
    // keep discarding, and stop tracking.
    if (!error_.empty()) return false;
    if (depth > kMaxDepth) return fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    switch (event) {
      case E::object_start:
      case E::array_start:
        stack_.push_back(Level{event == E::object_start, {}, "", 0});
        break;
      case E::key: {
        Level& top = stack_.back();
        top.key = parsed.get<std::string>();
        if (!top.keys.insert(top.key).second) return fail("duplicate key '" + top.key + "'");
        break;
      }
      case E::object_end:
      case E::array_end:
        stack_.pop_back();
        next_element();
        break;
      case E::value:
        next_element();
        break;
    }
    return true;
  }
  const std::string& error() const { return error_; }
  const std::string& error_path() const { return error_path_; }

 private:
  struct Level {
    bool object;
    std::set<std::string> keys;
    std::string key;  // the member being read
    size_t index;     // the element being read
  };
  void next_element() {
    if (!stack_.empty() && !stack_.back().object) ++stack_.back().index;
  }
  std::string path() const {
    std::string p;
    for (const auto& l : stack_) p = l.object ? pointer_append(p, l.key) : pointer_append(p, l.index);
    return p;
  }
  bool fail(std::string why) {
    if (error_.empty()) {
      error_ = std::move(why);
      error_path_ = path();
    }
    return false;
  }
  std::vector<Level> stack_;
  std::string error_, error_path_;
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::optional<nlohmann::json> parse_json_text(const std::string& text, std::string& error, std::string* error_path) {
  JsonGuard guard;
  auto callback = [&guard](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    return guard(depth, event, parsed);
  };
  try {
    nlohmann::json doc = nlohmann::json::parse(text, callback);
    if (!guard.error().empty()) {
      error = guard.error();
      if (error_path) *error_path = guard.error_path();
      return std::nullopt;
    }
    return doc;
  } catch (const nlohmann::json::parse_error& e) {
    error = "parse error at byte " + std::to_string(e.byte) + ": " + e.what();
  } catch (const nlohmann::json::exception& e) {  // e.g. a number out of range
    error = e.what();
  }
  return std::nullopt;
}

std::optional<nlohmann::json> parse_yaml_text(const std::string& text, std::string& error, std::string* error_path) {
  try {
    const YAML::Node root = YAML::Load(text);
    YamlConverter::check_size(root);
    return YamlConverter{}.convert(root, "", 0);
  } catch (const DocumentError& e) {
    error = e.what();
    if (error_path) *error_path = e.path;
  } catch (const std::exception& e) {
    error = std::string("YAML error: ") + e.what();
  }
  return std::nullopt;
}

std::string to_text(const nlohmann::json& value, int indent) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<nlohmann::json> load_document_file(const std::string& path, std::string& error) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxDocumentFileBytes) {
    error = path + ": " + std::to_string(size) + " bytes; config files are limited to " +
            std::to_string(kMaxDocumentFileBytes) + " bytes";
    return std::nullopt;
  }
  auto text = read_file(path);
  if (!text) {
    error = path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::string at;
  std::optional<nlohmann::json> doc = (ends_with(path, ".yaml") || ends_with(path, ".yml"))
                                          ? parse_yaml_text(*text, error, &at)
                                          : parse_json_text(*text, error, &at);
  if (!doc) error = path + ": " + (at.empty() ? "" : at + ": ") + error;
  return doc;
}


std::vector<std::string> remove_stale_temp_files(const std::string& path) {
  namespace fs = std::filesystem;
  std::vector<std::string> removed;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string prefix = target.filename().string() + ".tmp.";
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    // mkstemp's six characters after the prefix, and a regular file.
    if (name.size() != prefix.size() + 6 || name.compare(0, prefix.size(), prefix) != 0) continue;
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    std::error_code rm_ec;
    if (fs::remove(it->path(), rm_ec)) removed.push_back(it->path().string());
  }
  return removed;
}

std::string write_file_atomically(const std::string& path, const std::string& contents) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string tmp = path + ".tmp.XXXXXX";
  int fd = mkstemp(tmp.data());
  if (fd < 0) return "create temp file for " + path + ": " + std::strerror(errno);
  auto fail = [&](const char* what) {
    std::string err = std::string(what) + " " + tmp + ": " + std::strerror(errno);
    ::close(fd);
    ::unlink(tmp.c_str());
    return err;
  };
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("write");
    }
    done += static_cast<size_t>(n);
  }
  if (::fchmod(fd, 0644) != 0) return fail("chmod");
  if (::fsync(fd) != 0) return fail("fsync");
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return "close " + tmp + ": " + std::strerror(errno);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string err = "rename " + tmp + " to " + path + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return err;
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);  // make the rename itself durable
    ::close(dfd);
  }
  return "";
}

}  // namespace meridian::config
