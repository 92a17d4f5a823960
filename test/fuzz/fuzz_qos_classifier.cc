// libFuzzer: the QoS key reader (outer headers and a VXLAN inner frame) and
// the per-leaf rewrites must stay inside the buffer, and a rewrite must
// never change anything but the outer traffic class and IPv4 checksum.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "qos/classifier.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace meridian::qos;
  if (size < 1) return 0;
  const uint8_t dscp = data[0] & 63;
  std::vector<uint8_t> frame(data + 1, data + size);  // exact size: ASan sees any overrun
  PacketKeys keys;
  read_packet_keys(frame.data(), frame.size(), 3, 4789, keys);
  if (keys.outer.ip_version && keys.l3_offset + 20u > frame.size()) std::abort();
  if (keys.has_vni && keys.vni > 0xffffff) std::abort();
  // Match against a rule using every field, then rewrite.
  RuleSpec rule;
  rule.dscp_mask = ~uint64_t{0};
  rule.vni = keys.vni;
  rule.outer.src_ports = RangeMatch{0, 65535};
  rule.inner = FlowMatchSpec{};
  rule.inner->dst = PrefixMatch{6, 17, {0x20, 0x01, 0x0d, 0xb8}};
  Classifier classifier({rule}, 7);
  (void)classifier.classify(keys);
  const std::vector<uint8_t> before = frame;
  rewrite_dscp(frame.data(), frame.size(), keys, dscp);
  mark_ce(frame.data(), frame.size(), keys);
  for (size_t i = 0; i < frame.size(); ++i) {
    const size_t off = i - keys.l3_offset;
    const bool allowed = keys.outer.ip_version && i >= keys.l3_offset &&
                         (keys.outer.ip_version == 4 ? (off == 1 || off == 10 || off == 11) : off <= 1);
    if (frame[i] != before[i] && !allowed) std::abort();
  }
  return 0;
}
