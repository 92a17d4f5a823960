// Every packet the data path does not transmit is counted under exactly one
// of these reasons. Declared once here; enum, names and help text all come
// from this list (the VPP error-counter pattern).
#pragma once

#include <cstddef>
#include <cstdint>

namespace meridian::dataplane {

// X(enumerator, metric/API name, description)
#define MERIDIAN_DROP_REASONS(X)                                                          \
  X(kRuntFrame, "runt_frame", "frame shorter than an Ethernet header")                    \
  X(kNoForwarding, "no_forwarding", "ingress port has no forwarding entry")               \
  X(kNoDecision, "no_decision", "no pipeline stage decided the packet's fate")            \
  X(kTxFull, "tx_full", "egress queue still full after the bounded retries")              \
  X(kPuntRingFull, "punt_ring_full", "punt ring to the control lcore was full")           \
  X(kControlTxFull, "control_tx_full", "control-plane transmit queue was full")           \
  X(kNoControlQueue, "no_control_queue", "port has no spare TX queue for the control lcore") \
  X(kPuntUnhandled, "punt_unhandled", "punted frame had no control-plane handler")          \
  X(kNoBridgeDomain, "no_bridge_domain", "access frame on a port/VLAN with no bridge domain") \
  X(kNotLocalAddress, "not_local_address", "underlay packet not addressed to this VTEP")      \
  X(kNotVxlan, "not_vxlan", "underlay frame that is neither VXLAN to our UDP port nor ARP/ND") \
  X(kVxlanMalformed, "vxlan_malformed", "truncated or invalid outer headers, or a fragment") \
  X(kVxlanNoIFlag, "vxlan_no_i_flag", "VXLAN header without the I (valid VNI) flag")         \
  X(kUdpChecksum, "udp_checksum", "IPv6 outer UDP checksum zero or wrong")                   \
  X(kVxlanUnknownVni, "vxlan_unknown_vni", "VXLAN VNI with no bridge domain")                \
  X(kVxlanInnerVlan, "vxlan_inner_vlan", "decapsulated frame carries a VLAN tag (RFC 7348 6.1)") \
  X(kEcnNotCapable, "ecn_ce_not_ect", "outer CE over a not-ECN-capable inner packet (RFC 6040)") \
  X(kUnderlayUnresolved, "underlay_unresolved", "remote VTEP's next hop not resolved (yet)") \
  X(kMtuExceeded, "mtu_exceeded", "frame would exceed the egress MTU (never fragmented)")    \
  X(kSameInterface, "same_interface", "destination MAC is on the ingress attachment")        \
  X(kSplitHorizon, "split_horizon", "overlay frame for a remote VTEP (never re-encapsulated)") \
  X(kNoFloodTarget, "no_flood_target", "broadcast/unknown frame with nowhere else to go")    \
  X(kReplicaNoBuffer, "replica_no_buffer", "no buffer for a head-end replica")               \
  X(kQosTailDrop, "qos_tail_drop", "QoS leaf queue at its packet/byte limit, or the tree's buffer pool full") \
  X(kQosHandoffFull, "qos_handoff_full", "ring to the worker owning the QoS port was full")

enum class DropReason : uint8_t {
#define MERIDIAN_DROP_ENUM(e, name, help) e,
  MERIDIAN_DROP_REASONS(MERIDIAN_DROP_ENUM)
#undef MERIDIAN_DROP_ENUM
};

inline constexpr size_t kDropReasonCount = 0
#define MERIDIAN_DROP_COUNT(e, name, help) +1
    MERIDIAN_DROP_REASONS(MERIDIAN_DROP_COUNT)
#undef MERIDIAN_DROP_COUNT
    ;

inline constexpr const char* kDropReasonNames[kDropReasonCount] = {
#define MERIDIAN_DROP_NAME(e, name, help) name,
    MERIDIAN_DROP_REASONS(MERIDIAN_DROP_NAME)
#undef MERIDIAN_DROP_NAME
};

inline constexpr const char* kDropReasonHelp[kDropReasonCount] = {
#define MERIDIAN_DROP_HELP(e, name, help) help,
    MERIDIAN_DROP_REASONS(MERIDIAN_DROP_HELP)
#undef MERIDIAN_DROP_HELP
};

constexpr const char* drop_reason_name(DropReason r) { return kDropReasonNames[static_cast<size_t>(r)]; }

}  // namespace meridian::dataplane
