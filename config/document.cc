#include "document.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

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

nlohmann::json yaml_to_json(const YAML::Node& node, int depth) {
  if (depth > 64) throw std::runtime_error("nesting deeper than 64 levels");
  switch (node.Type()) {
    case YAML::NodeType::Sequence: {
      auto out = nlohmann::json::array();
      for (const auto& item : node) out.push_back(yaml_to_json(item, depth + 1));
      return out;
    }
    case YAML::NodeType::Map: {
      auto out = nlohmann::json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = yaml_to_json(kv.second, depth + 1);
      return out;
    }
    case YAML::NodeType::Scalar:
      return yaml_scalar(node);
    default:
      return nullptr;
  }
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::optional<nlohmann::json> parse_json_text(const std::string& text, std::string& error) {
  // The parser itself is iterative, but merge_patch, copies and destruction
  // recurse per level: refuse absurd nesting before it can exhaust the stack.
  constexpr int kMaxDepth = 64;
  bool too_deep = false;
  auto limit_depth = [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (depth > kMaxDepth) too_deep = true;
    return !too_deep;
  };
  try {
    nlohmann::json doc = nlohmann::json::parse(text, limit_depth);
    if (too_deep) {
      error = "nesting deeper than " + std::to_string(kMaxDepth) + " levels";
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

std::optional<nlohmann::json> parse_yaml_text(const std::string& text, std::string& error) {
  try {
    return yaml_to_json(YAML::Load(text), 0);
  } catch (const std::exception& e) {
    error = std::string("YAML error: ") + e.what();
    return std::nullopt;
  }
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<nlohmann::json> load_document_file(const std::string& path, std::string& error) {
  auto text = read_file(path);
  if (!text) {
    error = path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::optional<nlohmann::json> doc = (ends_with(path, ".yaml") || ends_with(path, ".yml"))
                                          ? parse_yaml_text(*text, error)
                                          : parse_json_text(*text, error);
  if (!doc) error = path + ": " + error;
  return doc;
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
