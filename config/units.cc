#include "config/units.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <utility>

namespace meridian::config {
namespace {

/// Splits "12.5mbit" into 12.5 and "mbit"; the number may be fractional.
std::optional<std::pair<long double, std::string>> split(const std::string& text) {
  size_t i = 0;
  bool digits = false, dot = false;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || (text[i] == '.' && !dot))) {
    digits |= text[i] != '.';
    dot |= text[i] == '.';
    ++i;
  }
  if (!digits || i > 24) return std::nullopt;
  std::string unit = text.substr(i);
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char c) { return std::tolower(c); });
  return std::pair{std::stold(text.substr(0, i)), unit};
}

std::optional<uint64_t> scale(long double value, long double multiplier) {
  const long double v = value * multiplier;
  if (!(v >= 0) || v >= 1.8e19L) return std::nullopt;
  const long double rounded = std::roundl(v);
  // Fractions must come out whole ("1.5kbit" is fine, "1.5bit" is not).
  if (std::fabs(v - rounded) > 1e-6L * std::max<long double>(1, v)) return std::nullopt;
  return static_cast<uint64_t>(rounded);
}

struct Unit {
  const char* name;
  long double multiplier;
};

}  // namespace

std::optional<uint64_t> parse_rate(const std::string& text) {
  static constexpr Unit kUnits[] = {
      {"", 1},          {"bit", 1},           {"kbit", 1e3},         {"mbit", 1e6},       {"gbit", 1e9},
      {"tbit", 1e12},   {"kibit", 1024.0L},   {"mibit", 1048576.0L}, {"gibit", 1073741824.0L},
      {"bps", 8},       {"kbps", 8e3},        {"mbps", 8e6},         {"gbps", 8e9},       {"tbps", 8e12},
      {"kibps", 8192.0L}, {"mibps", 8388608.0L}, {"gibps", 8589934592.0L}};
  auto parts = split(text);
  if (!parts) return std::nullopt;
  for (const auto& u : kUnits) {
    if (parts->second == u.name) return scale(parts->first, u.multiplier);
  }
  return std::nullopt;
}

std::optional<uint64_t> parse_size(const std::string& text) {
  static constexpr Unit kUnits[] = {{"", 1},           {"b", 1},           {"k", 1024},
                                    {"kb", 1024},      {"m", 1048576},     {"mb", 1048576},
                                    {"g", 1073741824}, {"gb", 1073741824}, {"kbit", 128},
                                    {"mbit", 131072},  {"gbit", 134217728}};
  auto parts = split(text);
  if (!parts) return std::nullopt;
  for (const auto& u : kUnits) {
    if (parts->second == u.name) return scale(parts->first, u.multiplier);
  }
  return std::nullopt;
}

std::string format_rate(uint64_t bps) {
  static constexpr std::pair<uint64_t, const char*> kUnits[] = {
      {1'000'000'000'000ULL, "tbit"}, {1'000'000'000ULL, "gbit"}, {1'000'000ULL, "mbit"}, {1'000ULL, "kbit"}};
  for (const auto& [m, name] : kUnits) {
    if (bps && bps % m == 0) return std::to_string(bps / m) + name;
  }
  return std::to_string(bps) + "bit";
}

std::string format_size(uint64_t bytes) {
  static constexpr std::pair<uint64_t, const char*> kUnits[] = {
      {1073741824ULL, "gb"}, {1048576ULL, "mb"}, {1024ULL, "kb"}};
  for (const auto& [m, name] : kUnits) {
    if (bytes && bytes % m == 0) return std::to_string(bytes / m) + name;
  }
  return std::to_string(bytes) + "b";
}

}  // namespace meridian::config
