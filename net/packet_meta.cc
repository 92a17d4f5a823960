#include "net/packet_meta.h"

namespace meridian::net {

void parse_inner(const uint8_t* data, size_t len, PacketMeta& m) {
  if (!m.has(kMetaOverlay) || m.has(kMetaInnerParsed)) return;
  m.inner_status = parse_packet(data + m.inner_offset, len - m.inner_offset, m.inner);
  m.flags |= kMetaInnerParsed;
}

}  // namespace meridian::net
