// Reading config documents from text and files, and persisting them safely.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/field_error.h"

namespace meridian::config {

/// Parses JSON text. On failure returns nullopt and sets `error` to
/// "parse error at byte N: ..." (no exception escapes). Duplicate keys and
/// nesting deeper than 64 levels are refused; `error_path`, when given,
/// receives the JSON pointer of such a refusal.
std::optional<nlohmann::json> parse_json_text(const std::string& text, std::string& error,
                                              std::string* error_path = nullptr);

/// Parses YAML text into the equivalent JSON value (plain scalars typed as
/// YAML 1.2 core schema: null, bool, int incl. 0x.., float, else string).
/// Refused with a path: duplicate keys, non-scalar keys, strings that are not
/// UTF-8, nesting deeper than 64, and documents that expand (through
/// aliases) to more than 1,048,576 values.
std::optional<nlohmann::json> parse_yaml_text(const std::string& text, std::string& error,
                                              std::string* error_path = nullptr);

/// Config files larger than this are refused before parsing.
inline constexpr size_t kMaxDocumentFileBytes = 16u << 20;

/// Loads a config file: YAML when it ends in .yaml/.yml, JSON otherwise.
std::optional<nlohmann::json> load_document_file(const std::string& path, std::string& error);

/// Writes `contents` to `path` atomically: temp file in the same directory,
/// fsync, rename over `path`, fsync the directory. Returns "" or an error.
std::string write_file_atomically(const std::string& path, const std::string& contents);

/// Serialises JSON for output (responses, files, the CLI). Bytes that are not
/// UTF-8 (from a request path, say) become U+FFFD instead of throwing.
std::string to_text(const nlohmann::json& value, int indent = 2);

/// Removes temp files that write_file_atomically(path) left behind when the
/// process died mid-write (`<path>.tmp.XXXXXX`). Returns the names removed.
/// Only for start-up, when no write of ours is in flight.
std::vector<std::string> remove_stale_temp_files(const std::string& path);

/// Reads a whole file; nullopt when it cannot be opened.
std::optional<std::string> read_file(const std::string& path);

}  // namespace meridian::config
