// host/'s punt entry: any frame offered as punted ARP/ND on a port where we
// own an IPv4 and an IPv6 address and want two next hops resolved. It must
// never crash, and whatever it sends must be a whole ARP or ND frame.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "host/presence.h"
#include "net/neighbor.h"

using namespace meridian;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static double now = 0;
  static host::Presence presence(
      [](uint16_t, std::span<const uint8_t> frame) {
        if (frame.size() != net::kArpFrame && frame.size() != net::kNdFrame) std::abort();
        return true;
      },
      [] { return now; });
  static const bool registered = [] {
    const auto c = presence.add_client("fuzz");
    presence.set_port_mac(0, *config::parse_mac("02:00:00:00:00:01"));
    presence.set_addresses(c, {{0, *config::parse_ip("10.1.0.1")}, {0, *config::parse_ip("fd01::1")}});
    presence.want(c, {{*config::parse_ip("10.1.0.2"), 0}, {*config::parse_ip("fd01::2"), 0}});
    return true;
  }();
  (void)registered;
  presence.handle_frame(0, {data, size});
  now += 0.5;
  presence.tick();
  return 0;
}
