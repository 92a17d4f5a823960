// The QoS classifier as pure logic: header keys read from a frame as it
// leaves (outer headers, and the inner frame when it is VXLAN), and ordered
// first-match rules over them. No DPDK and no config types, so the key
// reader is fuzzed and both halves are unit-tested on plain buffers.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "net/packet_meta.h"

namespace meridian::qos {

/// One IP 5-tuple as seen in a header stack. Ports are valid only when
/// `has_ports` (TCP/UDP, not a non-first fragment).
struct FlowKeys {
  uint8_t ip_version = 0;  // 0: not IP
  uint8_t protocol = 0;
  std::array<uint8_t, 16> src{}, dst{};  // IPv4 in the first 4 bytes
  uint16_t src_port = 0, dst_port = 0;
  bool has_ports = false;
};

/// Everything a rule can match, plus where the outer IP header is for the
/// per-leaf rewrites (DSCP remark, ECN CE).
struct PacketKeys {
  uint16_t ingress_port = 0;
  bool tagged = false;
  uint8_t pcp = 0;         // outermost VLAN tag's priority
  uint8_t dscp = 0;        // outer IP
  uint8_t ecn = 0;         // outer IP: 0 not-ECT, 1/2 ECT, 3 CE
  uint16_t l3_offset = 0;  // outer IP header, valid when outer.ip_version != 0
  FlowKeys outer;
  bool has_vni = false;    // UDP to the VXLAN port with the I flag set
  uint32_t vni = 0;
  FlowKeys inner;          // ip_version 0 unless the VXLAN payload is IP
};

/// Reads the keys of `len` bytes of frame (headers beyond `len` are simply
/// not present). Never reads outside the buffer; malformed headers leave
/// the deeper keys unset rather than failing, so such frames fall through
/// to the default class.
void read_packet_keys(const uint8_t* data, size_t len, uint16_t ingress_port, uint16_t vxlan_udp_port,
                      PacketKeys& keys);
/// The same from the frame's metadata (net::parse_meta, with the inner
/// frame read by net::parse_inner when it is an overlay frame).
void read_packet_keys(const uint8_t* data, const net::PacketMeta& meta, uint16_t ingress_port, PacketKeys& keys);

/// A compiled prefix: family and the first `length` bits of `bytes`.
struct PrefixMatch {
  uint8_t ip_version = 4;
  uint8_t length = 0;
  std::array<uint8_t, 16> bytes{};
  bool matches(uint8_t version, const std::array<uint8_t, 16>& addr) const;
};

struct RangeMatch {
  uint16_t first = 0, last = 65535;
};

/// Unset fields match anything; a set field never matches a packet that
/// lacks the header (a port range never matches ICMP, a prefix never
/// matches ARP).
struct FlowMatchSpec {
  std::optional<uint8_t> protocol;
  std::optional<PrefixMatch> src, dst;
  std::optional<RangeMatch> src_ports, dst_ports;
  bool matches(const FlowKeys& f) const;
};

struct RuleSpec {
  uint64_t dscp_mask = 0;   // bit d set: DSCP d matches; 0 = any
  uint8_t pcp_mask = 0;     // bit p set: PCP p matches; 0 = any
  std::optional<uint32_t> vni;
  std::optional<uint16_t> ingress_port;
  FlowMatchSpec outer;
  std::optional<FlowMatchSpec> inner;
  uint32_t leaf = 0;        // scheduler class index
  bool matches(const PacketKeys& k) const;
};

/// Ordered rules, first match wins; the default leaf catches the rest.
class Classifier {
 public:
  Classifier() = default;
  Classifier(std::vector<RuleSpec> rules, uint32_t default_leaf)
      : rules_(std::move(rules)), default_leaf_(default_leaf) {}
  uint32_t classify(const PacketKeys& keys) const {
    for (const RuleSpec& r : rules_) {
      if (r.matches(keys)) return r.leaf;
    }
    return default_leaf_;
  }
  size_t size() const { return rules_.size(); }

 private:
  std::vector<RuleSpec> rules_;
  uint32_t default_leaf_ = 0;
};

/// Per-leaf header rewrites on the outer IP header at `l3` (IPv4 checksum
/// updated incrementally, RFC 1624). Both need the header in `len` bytes.
void rewrite_dscp(uint8_t* frame, size_t len, const PacketKeys& keys, uint8_t dscp);
void mark_ce(uint8_t* frame, size_t len, const PacketKeys& keys);

}  // namespace meridian::qos
