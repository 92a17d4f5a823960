// Addresses as the config document and the API write them: MAC
// "02:00:00:00:00:01", IPv4 "10.0.0.1", IPv6 "fd00::1", prefixes "10.0.0.0/24".
// Pure value types with parsing and formatting (inet_pton/ntop), shared by
// every module that names an address.
#pragma once

#include <array>
#include <bit>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

namespace meridian::config {

struct MacAddress {
  std::array<uint8_t, 6> bytes{};
  auto operator<=>(const MacAddress&) const = default;
  bool is_multicast() const { return bytes[0] & 1; }
  bool is_zero() const { return bytes == std::array<uint8_t, 6>{}; }
};

/// 8 bytes from `p` as a big-endian number: byte strings compare as these words.
inline uint64_t be_word(const uint8_t* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  if constexpr (std::endian::native == std::endian::little) w = __builtin_bswap64(w);
  return w;
}

/// IPv4 lives in the first 4 bytes; `family` is 4 or 6.
struct IpAddress {
  uint8_t family = 4;
  std::array<uint8_t, 16> bytes{};
  /// By family, then bytes in order; compared as two big-endian words (maps
  /// keyed by address compare often: no call into memcmp per comparison).
  std::strong_ordering operator<=>(const IpAddress& o) const {
    if (family != o.family) return family <=> o.family;
    for (size_t i = 0; i < 16; i += 8) {
      const uint64_t a = be_word(bytes.data() + i), b = be_word(o.bytes.data() + i);
      if (a != b) return a <=> b;
    }
    return std::strong_ordering::equal;
  }
  bool operator==(const IpAddress&) const = default;
  size_t size() const { return family == 4 ? 4 : 16; }
  bool is_v4() const { return family == 4; }
  bool is_multicast() const { return family == 4 ? (bytes[0] & 0xf0) == 0xe0 : bytes[0] == 0xff; }
  bool is_unspecified() const { return bytes == std::array<uint8_t, 16>{}; }
  static IpAddress v4(const uint8_t* p);
  static IpAddress v6(const uint8_t* p);
};

struct IpPrefix {
  IpAddress address;
  uint8_t length = 0;
  auto operator<=>(const IpPrefix&) const = default;
  /// True when `ip` (same family) falls inside the prefix.
  bool contains(const IpAddress& ip) const;
  /// The prefix with host bits cleared.
  IpPrefix network() const;
};

std::optional<MacAddress> parse_mac(const std::string& text);
std::optional<IpAddress> parse_ip(const std::string& text);
/// "addr/len"; `host_bits_allowed` = false rejects "10.0.0.1/24".
std::optional<IpPrefix> parse_prefix(const std::string& text, bool host_bits_allowed);

std::string to_string(const MacAddress& mac);
std::string to_string(const IpAddress& ip);
std::string to_string(const IpPrefix& prefix);

}  // namespace meridian::config
