// libFuzzer: the frame header parser and the packet metadata built on it
// must never read past the buffer and must report offsets only inside it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "net/packet_meta.h"

namespace {

void check_view(const meridian::net::PacketView& v, size_t size) {
  if (v.l3_offset > size || v.l4_offset > size) std::abort();
  if (v.l4_offset && v.l4_offset + 8u > size) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace meridian;
  net::PacketView v;
  if (net::parse_packet(data, size, v) == net::ParseStatus::kOk) check_view(v, size);

  net::PacketMeta m;
  net::parse_meta(data, size, net::kDefaultVxlanPort, m);
  if (m.status == net::ParseStatus::kOk) check_view(m.outer, size);
  if (m.has(net::kMetaOverlay)) {
    if (m.inner_offset > size) std::abort();
    net::parse_inner(data, size, m);
    if (!m.has(net::kMetaInnerParsed)) std::abort();
    if (m.inner_status == net::ParseStatus::kOk) check_view(m.inner, size - m.inner_offset);
  } else if (m.inner_offset != 0) {
    std::abort();
  }
  return 0;
}
