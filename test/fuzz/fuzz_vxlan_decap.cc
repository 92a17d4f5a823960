// libFuzzer: the underlay receive path on arbitrary frames. classify_underlay,
// then by status parse_arp / parse_nd / inner_flow_hash / inner_dscp, must
// never read past the buffer and must only report pointers inside it.
// Properties: a decapsulated frame re-encapsulates to the same VNI and inner
// frame; an accepted NS yields an NA that parses back. The first input byte
// also selects an in-place build (build_arp / build_na) over a copy of the
// input, with arguments aliasing that buffer, which must parse back to the
// values the arguments held before the build.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "net/icmp.h"
#include "vxlan/wire.h"

using namespace meridian::vxlan;

namespace {

#define FUZZ_CHECK(cond) \
  do {                   \
    if (!(cond)) std::abort(); \
  } while (0)

bool inside(const uint8_t* p, size_t n, const uint8_t* base, size_t len) {
  return p >= base && p + n <= base + len;
}

void check_vxlan(const uint8_t* data, size_t size, const OuterView& v) {
  FUZZ_CHECK(v.inner_offset + kEthHeader <= size);
  FUZZ_CHECK(v.vni < (1u << 24));
  const size_t ip_len = v.ipv6 ? 16 : 4;
  FUZZ_CHECK(inside(v.src_ip, ip_len, data, size) && inside(v.dst_ip, ip_len, data, size));
  const uint8_t* inner = data + v.inner_offset;
  const size_t inner_len = size - v.inner_offset;
  const uint32_t hash = inner_flow_hash(inner, inner_len);
  FUZZ_CHECK(inner_flow_hash(inner, inner_len) == hash);
  const uint8_t dscp = inner_dscp(inner, inner_len);
  FUZZ_CHECK(dscp < 64);
  const uint16_t sport = source_port(hash, 49152, 65535);
  FUZZ_CHECK(sport >= 49152);

  // Re-encapsulate towards the sender and classify again.
  if (inner_len + kOuterV6 > 65535) return;
  OuterTemplate t;
  OuterParams p{.dst_mac = data + 6, .src_mac = data, .src_ip = v.dst_ip, .dst_ip = v.src_ip, .ipv6 = v.ipv6};
  build_outer_template(t, p);
  std::vector<uint8_t> out(t.length + inner_len);
  write_outer(out.data(), t, v.vni, sport, dscp, static_cast<uint16_t>(inner_len));
  std::memcpy(out.data() + t.length, inner, inner_len);
  if (v.ipv6) finish_udp6_checksum(out.data());
  OuterView back;
  FUZZ_CHECK(classify_underlay(out.data(), out.size(), kDefaultVxlanPort, back) == UnderlayStatus::kVxlan);
  FUZZ_CHECK(back.vni == v.vni && back.ipv6 == v.ipv6 && back.inner_offset == t.length);
  FUZZ_CHECK(std::memcmp(back.src_ip, v.dst_ip, ip_len) == 0);
  FUZZ_CHECK(inner_dscp(out.data(), out.size()) == dscp);
}

void check_nd(const uint8_t* data, size_t size) {
  const uint8_t* ip = data + kEthHeader;
  const size_t len = size - kEthHeader;
  NdView nd;
  if (!parse_nd(ip, len, nd)) return;
  FUZZ_CHECK(nd.type == kNdNeighborSolicit || nd.type == kNdNeighborAdvert);
  FUZZ_CHECK(inside(nd.src_ip, 16, ip, len) && inside(nd.dst_ip, 16, ip, len) && inside(nd.target, 16, ip, len));
  FUZZ_CHECK(nd.target[0] != 0xff);
  if (nd.link_addr) FUZZ_CHECK(inside(nd.link_addr, 6, ip, len));
  if (nd.type != kNdNeighborSolicit) return;
  // Answer it as the responder would, and read the answer back.
  static const uint8_t kOurMac[6] = {0x02, 0, 0, 0, 0x01, 0x01};
  uint8_t na[kNdFrame];
  FUZZ_CHECK(build_na(na, nd.link_addr ? nd.link_addr : data + 6, kOurMac, nd.target, nd.src_ip, true) == kNdFrame);
  OuterView ov;
  FUZZ_CHECK(classify_underlay(na, sizeof na, kDefaultVxlanPort, ov) == UnderlayStatus::kNeighborDiscovery);
  NdView back;
  FUZZ_CHECK(parse_nd(na + kEthHeader, sizeof na - kEthHeader, back));
  FUZZ_CHECK(back.type == kNdNeighborAdvert && back.solicited && back.override_flag);
  FUZZ_CHECK(std::memcmp(back.target, nd.target, 16) == 0 && std::memcmp(back.link_addr, kOurMac, 6) == 0);
}

/// An offset for an `n`-byte argument inside a `size`-byte buffer, from one input byte.
size_t arg_offset(const uint8_t* data, size_t i, size_t size, size_t n) { return data[i] % (size - n + 1); }

void build_in_place(const uint8_t* data, size_t size) {
  const uint8_t sel = data[0];
  std::vector<uint8_t> buf(data, data + size);
  uint8_t* b = buf.data();
  if ((sel & 1) == 0 && size >= kArpFrame) {
    // A reply over the request when it parses, otherwise arguments anywhere in the buffer.
    const uint8_t *eth_dst, *smac, *sip, *tmac, *tip;
    ArpView req;
    if ((sel & 2) && parse_arp(b + kEthHeader, size - kEthHeader, req)) {
      eth_dst = req.sender_mac, smac = b + 6, sip = req.target_ip, tmac = req.sender_mac, tip = req.sender_ip;
    } else {
      eth_dst = b + arg_offset(data, 1, size, 6), smac = b + arg_offset(data, 2, size, 6);
      sip = b + arg_offset(data, 3, size, 4), tmac = b + arg_offset(data, 4, size, 6);
      tip = b + arg_offset(data, 5, size, 4);
    }
    uint8_t want_dst[6], want_smac[6], want_sip[4], want_tmac[6], want_tip[4];
    std::memcpy(want_dst, eth_dst, 6);
    std::memcpy(want_smac, smac, 6);
    std::memcpy(want_sip, sip, 4);
    std::memcpy(want_tmac, tmac, 6);
    std::memcpy(want_tip, tip, 4);
    const uint16_t op = (sel & 4) ? kArpReply : kArpRequest;
    FUZZ_CHECK(build_arp(b, op, eth_dst, smac, sip, tmac, tip) == kArpFrame);
    FUZZ_CHECK(std::memcmp(b, want_dst, 6) == 0 && std::memcmp(b + 6, want_smac, 6) == 0);
    ArpView v;
    FUZZ_CHECK(parse_arp(b + kEthHeader, kArpFrame - kEthHeader, v));
    FUZZ_CHECK(v.op == op);
    FUZZ_CHECK(std::memcmp(v.sender_mac, want_smac, 6) == 0 && std::memcmp(v.sender_ip, want_sip, 4) == 0);
    FUZZ_CHECK(std::memcmp(v.target_mac, want_tmac, 6) == 0 && std::memcmp(v.target_ip, want_tip, 4) == 0);
    OuterView ov;
    FUZZ_CHECK(classify_underlay(b, kArpFrame, kDefaultVxlanPort, ov) == UnderlayStatus::kArp);
  } else if ((sel & 1) == 1 && size >= kNdFrame) {
    const uint8_t *eth_dst, *tmac, *target, *dst_ip;
    NdView ns;
    if ((sel & 2) && parse_nd(b + kEthHeader, size - kEthHeader, ns) && ns.type == kNdNeighborSolicit &&
        ns.link_addr) {
      eth_dst = ns.link_addr, tmac = b, target = ns.target, dst_ip = ns.src_ip;
    } else {
      eth_dst = b + arg_offset(data, 1, size, 6), tmac = b + arg_offset(data, 2, size, 6);
      target = b + arg_offset(data, 3, size, 16), dst_ip = b + arg_offset(data, 4, size, 16);
    }
    uint8_t want_dst[6], want_tmac[6], want_target[16], want_dip[16];
    std::memcpy(want_dst, eth_dst, 6);
    std::memcpy(want_tmac, tmac, 6);
    std::memcpy(want_target, target, 16);
    std::memcpy(want_dip, dst_ip, 16);
    const bool solicited = sel & 4;
    FUZZ_CHECK(build_na(b, eth_dst, tmac, target, dst_ip, solicited) == kNdFrame);
    FUZZ_CHECK(std::memcmp(b, want_dst, 6) == 0 && std::memcmp(b + 6, want_tmac, 6) == 0);
    NdView v;
    const bool ok = parse_nd(b + kEthHeader, kNdFrame - kEthHeader, v);
    FUZZ_CHECK(ok == (want_target[0] != 0xff));  // only a multicast target is refused
    if (ok) {
      FUZZ_CHECK(v.type == kNdNeighborAdvert && v.solicited == solicited && v.override_flag);
      FUZZ_CHECK(std::memcmp(v.target, want_target, 16) == 0 && std::memcmp(v.src_ip, want_target, 16) == 0);
      FUZZ_CHECK(std::memcmp(v.dst_ip, want_dip, 16) == 0 && std::memcmp(v.link_addr, want_tmac, 6) == 0);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  OuterView v;
  const UnderlayStatus s = classify_underlay(data, size, kDefaultVxlanPort, v);
  FUZZ_CHECK(underlay_status_name(s)[0] != '?');
  switch (s) {
    case UnderlayStatus::kVxlan:
      check_vxlan(data, size, v);
      break;
    case UnderlayStatus::kArp: {
      ArpView arp;
      if (parse_arp(data + kEthHeader, size - kEthHeader, arp)) {
        FUZZ_CHECK(arp.op == kArpRequest || arp.op == kArpReply);
        FUZZ_CHECK(inside(arp.target_ip, 4, data, size));
      }
      break;
    }
    case UnderlayStatus::kNeighborDiscovery:
      FUZZ_CHECK(v.ipv6 && inside(v.src_ip, 16, data, size));
      check_nd(data, size);
      break;
    default:
      break;
  }
  // Any input as an inner frame.
  (void)inner_flow_hash(data, size);
  FUZZ_CHECK(inner_dscp(data, size) < 64);
  FUZZ_CHECK(inner_ecn(data, size) < 4);
  {
    // ICMP "too big": bounded, and a reply is itself never answered.
    std::vector<uint8_t> reply(meridian::net::kTooBigMax);
    const size_t n = meridian::net::build_too_big(reply.data(), data, size, 1450);
    FUZZ_CHECK(n <= meridian::net::kTooBigMax);
    if (n) {
      std::vector<uint8_t> again(meridian::net::kTooBigMax);
      FUZZ_CHECK(meridian::net::build_too_big(again.data(), reply.data(), n, 1450) == 0);
    }
    // CE propagation keeps the length and never touches non-IP frames' bytes.
    std::vector<uint8_t> copy(data, data + size);
    (void)ecn_decapsulate(3, copy.data(), copy.size());
  }
  if (size >= 1) build_in_place(data, size);
  return 0;
}
