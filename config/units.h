// Rates and sizes written the way operators write them for `tc`:
//   rates: "30gbit", "500mbit", "64kbit", "10mbps" (bytes/s), bare numbers are bit/s.
//          Decimal multipliers: kbit = 1000 bit/s, kbps = 1000 bytes/s = 8000 bit/s;
//          binary ones on request: kibit = 1024 bit/s, mibps = 1048576 bytes/s.
//   sizes: "1500b", "10kb", "2mb", "64kbit"; bare numbers are bytes.
//          Binary multipliers, as tc: kb = k = 1024 bytes, mb = m = 1048576 bytes,
//          kbit = 1024 bits = 128 bytes.
// Units are case-insensitive; no space between number and unit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace meridian::config {

/// Bits per second, or nothing for a malformed text, an unknown unit or overflow.
std::optional<uint64_t> parse_rate(const std::string& text);
/// Bytes, or nothing.
std::optional<uint64_t> parse_size(const std::string& text);

/// The shortest exact form: "30gbit", "1500kbit", "12345bit".
std::string format_rate(uint64_t bits_per_second);
/// "64kb", "1mb", "1500b".
std::string format_size(uint64_t bytes);

}  // namespace meridian::config
