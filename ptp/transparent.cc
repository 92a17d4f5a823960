#include "ptp/transparent.h"

#include <cstring>

#include "net/checksum.h"
#include "ptp/transport.h"

namespace meridian::ptp {
namespace {

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

bool fill(std::span<const uint8_t> frame, const PtpLocation& loc, TcFrame& out) {
  MessageType type;
  uint16_t flags;
  uint8_t domain;
  if (!peek(frame.subspan(loc.offset, loc.length), type, flags, domain) || loc.length < kHeaderSize) return false;
  const uint8_t* h = frame.data() + loc.offset;
  out.ptp_offset = loc.offset;
  out.type = type;
  out.flags = flags;
  out.domain = domain;
  out.sequence = be16(h + 30);
  std::memcpy(out.source.clock.data(), h + 20, 8);
  out.source.port = be16(h + 28);
  if (type == MessageType::kDelayResp) {
    if (loc.length < kHeaderSize + 20) return false;  // receiveTimestamp, requestingPortIdentity
    std::memcpy(out.requesting.clock.data(), h + kHeaderSize + 10, 8);
    out.requesting.port = be16(h + kHeaderSize + 18);
  }
  return true;
}

}  // namespace

bool tc_locate(std::span<const uint8_t> frame, const net::PacketMeta& meta, TcFrame& out) {
  out = TcFrame{};
  PtpLocation loc;
  if (meta.has(net::kMetaPtp) && locate(frame, meta.outer, meta.status, loc)) {
    if (!fill(frame, loc, out)) return false;
    if (loc.transport != Transport::kL2) out.checksums[out.checksum_count++] = static_cast<uint16_t>(loc.udp_offset + 6);
    return true;
  }
  // VXLAN: the inner frame starts after the outer UDP and VXLAN headers.
  if (!meta.has(net::kMetaOverlay) || !meta.has(net::kMetaInnerParsed)) return false;
  const size_t inner = meta.inner_offset;
  if (inner >= frame.size()) return false;
  if (!locate(frame.subspan(inner), meta.inner, meta.inner_status, loc)) return false;
  loc.offset = static_cast<uint16_t>(loc.offset + inner);
  if (loc.transport != Transport::kL2) loc.udp_offset = static_cast<uint16_t>(loc.udp_offset + inner);
  if (!fill(frame, loc, out)) return false;
  if (loc.transport != Transport::kL2) out.checksums[out.checksum_count++] = static_cast<uint16_t>(loc.udp_offset + 6);
  out.checksums[out.checksum_count++] = static_cast<uint16_t>(meta.outer.l4_offset + 6);  // the outer UDP checksum
  out.in_vxlan = true;
  return true;
}

bool tc_locate(std::span<const uint8_t> frame, uint16_t vxlan_port, TcFrame& out) {
  net::PacketMeta meta;
  net::parse_meta(frame.data(), frame.size(), vxlan_port, meta);
  net::parse_inner(frame.data(), frame.size(), meta);
  return tc_locate(frame, meta, out);
}

void tc_add_correction(std::span<uint8_t> frame, const TcFrame& f, int64_t scaled_ns) {
  uint8_t* field = frame.data() + f.ptp_offset + 8;
  uint8_t before[8];
  std::memcpy(before, field, 8);
  add_correction(frame.subspan(f.ptp_offset), scaled_ns);
  // Inner checksum first: the outer one covers the correctionField and the
  // inner checksum field both. Every changed span sits at an even offset
  // from each UDP header, so its bytes are whole 16-bit checksum words.
  uint8_t changed_before[2][2] = {};
  for (uint8_t i = 0; i < f.checksum_count; ++i) {
    uint8_t* c = frame.data() + f.checksums[i];
    const uint16_t old = be16(c);
    changed_before[i][0] = c[0];
    changed_before[i][1] = c[1];
    if (old == 0) continue;  // IPv4 UDP without checksum (VXLAN's outer, usually)
    uint16_t updated = net::checksum_replace(old, {before, 8}, {field, 8});
    for (uint8_t j = 0; j < i; ++j) {
      updated = net::checksum_replace(updated, {changed_before[j], 2}, {frame.data() + f.checksums[j], 2});
    }
    if (updated == 0) updated = 0xffff;
    c[0] = static_cast<uint8_t>(updated >> 8);
    c[1] = static_cast<uint8_t>(updated);
  }
}

uint64_t tc_key(const TcFrame& f) {
  const bool delay = f.type == MessageType::kDelayReq || f.type == MessageType::kDelayResp;
  const PortIdentity& id = f.type == MessageType::kDelayResp ? f.requesting : f.source;
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint8_t b) { h = (h ^ b) * 1099511628211ull; };
  mix(delay ? 1 : 0);  // a Sync and a Delay_Req of one sequence number never meet
  for (uint8_t b : id.clock) mix(b);
  mix(static_cast<uint8_t>(id.port >> 8));
  mix(static_cast<uint8_t>(id.port));
  mix(static_cast<uint8_t>(f.sequence >> 8));
  mix(static_cast<uint8_t>(f.sequence));
  mix(f.domain);
  return h | 1;  // never zero: zero marks an empty slot
}

}  // namespace meridian::ptp
