// libFuzzer: the frame header parser must never read past the buffer and
// must report an offset only inside it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "net/packet_view.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace meridian;
  net::PacketView v;
  const net::ParseStatus s = net::parse_packet(data, size, v);
  if (s == net::ParseStatus::kOk) {
    if (v.l3_offset > size || v.l4_offset > size) std::abort();
    if (v.l4_offset && v.l4_offset + 8u > size) std::abort();
  }
  return 0;
}
