// Reading config documents from text and files, and persisting them safely.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "field_error.h"

namespace meridian::config {

/// Parses JSON text. On failure returns nullopt and sets `error` to
/// "parse error at byte N: ..." (no exception escapes).
std::optional<nlohmann::json> parse_json_text(const std::string& text, std::string& error);

/// Parses YAML text into the equivalent JSON value (plain scalars typed as
/// YAML 1.2 core schema: null, bool, int incl. 0x.., float, else string).
std::optional<nlohmann::json> parse_yaml_text(const std::string& text, std::string& error);

/// Loads a config file: YAML when it ends in .yaml/.yml, JSON otherwise.
std::optional<nlohmann::json> load_document_file(const std::string& path, std::string& error);

/// Writes `contents` to `path` atomically: temp file in the same directory,
/// fsync, rename over `path`, fsync the directory. Returns "" or an error.
std::string write_file_atomically(const std::string& path, const std::string& contents);

/// Reads a whole file; nullopt when it cannot be opened.
std::optional<std::string> read_file(const std::string& path);

}  // namespace meridian::config
