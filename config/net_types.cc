#include "config/net_types.h"

#include <arpa/inet.h>

#include <cctype>
#include <cstdio>
#include <cstring>

namespace meridian::config {

IpAddress IpAddress::v4(const uint8_t* p) {
  IpAddress a;
  a.family = 4;
  std::memcpy(a.bytes.data(), p, 4);
  return a;
}

IpAddress IpAddress::v6(const uint8_t* p) {
  IpAddress a;
  a.family = 6;
  std::memcpy(a.bytes.data(), p, 16);
  return a;
}

bool IpPrefix::contains(const IpAddress& ip) const {
  if (ip.family != address.family) return false;
  return network() == IpPrefix{ip, length}.network();
}

IpPrefix IpPrefix::network() const {
  IpPrefix n = *this;
  const size_t bits = address.size() * 8;
  for (size_t bit = length; bit < bits; ++bit) n.address.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  for (size_t byte = address.size(); byte < 16; ++byte) n.address.bytes[byte] = 0;
  return n;
}

std::optional<MacAddress> parse_mac(const std::string& text) {
  MacAddress mac;
  unsigned b[6];
  char tail;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool colon = i % 3 == 2;
    if (colon ? text[i] != ':' : !std::isxdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
  }
  if (text.size() != 17 ||
      std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6) {
    return std::nullopt;
  }
  for (int i = 0; i < 6; ++i) mac.bytes[i] = static_cast<uint8_t>(b[i]);
  return mac;
}

std::optional<IpAddress> parse_ip(const std::string& text) {
  IpAddress ip;
  if (text.size() > 45) return std::nullopt;
  if (inet_pton(AF_INET, text.c_str(), ip.bytes.data()) == 1) {
    ip.family = 4;
    return ip;
  }
  if (inet_pton(AF_INET6, text.c_str(), ip.bytes.data()) == 1) {
    ip.family = 6;
    return ip;
  }
  return std::nullopt;
}

std::optional<IpPrefix> parse_prefix(const std::string& text, bool host_bits_allowed) {
  const auto slash = text.find('/');
  if (slash == std::string::npos || slash + 1 >= text.size() || text.size() - slash > 4) return std::nullopt;
  auto ip = parse_ip(text.substr(0, slash));
  if (!ip) return std::nullopt;
  const std::string len_text = text.substr(slash + 1);
  for (char c : len_text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  const unsigned len = static_cast<unsigned>(std::stoul(len_text));
  if (len > ip->size() * 8) return std::nullopt;
  IpPrefix p{*ip, static_cast<uint8_t>(len)};
  if (!host_bits_allowed && p.network() != p) return std::nullopt;
  return p;
}

std::string to_string(const MacAddress& mac) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", mac.bytes[0], mac.bytes[1],
                mac.bytes[2], mac.bytes[3], mac.bytes[4], mac.bytes[5]);
  return buf;
}

std::string to_string(const IpAddress& ip) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(ip.family == 4 ? AF_INET : AF_INET6, ip.bytes.data(), buf, sizeof buf);
  return buf;
}

std::string to_string(const IpPrefix& p) { return to_string(p.address) + "/" + std::to_string(p.length); }

}  // namespace meridian::config
