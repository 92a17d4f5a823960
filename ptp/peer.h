// Where a PTP message came from, and where a reply goes.
#pragma once

#include <array>
#include <cstdint>

namespace meridian::ptp {

/// `unicast` false is the port's multicast group; otherwise the peer's MAC
/// and (UDP transports) IP address, IPv4 in the first 4 bytes.
struct PeerAddress {
  bool unicast = false;
  std::array<uint8_t, 6> mac{};
  std::array<uint8_t, 16> ip{};
  bool operator==(const PeerAddress&) const = default;
};

}  // namespace meridian::ptp
