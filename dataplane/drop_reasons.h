// Every packet the data path does not transmit is counted under exactly one
// of these reasons. Declared once here; enum, names and help text all come
// from this list (the VPP error-counter pattern).
#pragma once

#include <cstddef>
#include <cstdint>

namespace meridian::dataplane {

/// Where a reason is counted, which says which frames it accounts for:
/// - kIngress: on the port the frame arrived on; its fate there. Per port,
///   rx_packets = forwarded + punted + the drops counted at ingress.
/// - kEgress: on the port a frame was sent to (by a worker, after it was
///   counted as forwarded at its ingress, or by the control lcore).
/// - kAfterPunt: on the ingress port, for a frame already counted as punted.
enum class DropStage : uint8_t { kIngress, kEgress, kAfterPunt };

// X(enumerator, metric/API name, stage, description)
#define MERIDIAN_DROP_REASONS(X)                                                          \
  X(kRuntFrame, "runt_frame", kIngress, "frame shorter than an Ethernet header")          \
  X(kNoForwarding, "no_forwarding", kIngress, "ingress port has no forwarding entry")     \
  X(kNoDecision, "no_decision", kIngress, "no pipeline stage decided the packet's fate")  \
  X(kTxFull, "tx_full", kEgress, "egress queue still full after the bounded retries")     \
  X(kPuntRingFull, "punt_ring_full", kIngress, "punt ring to the control lcore was full") \
  X(kControlTxFull, "control_tx_full", kEgress, "control-plane transmit queue was full")  \
  X(kNoControlQueue, "no_control_queue", kEgress, "port has no spare TX queue for the control lcore") \
  X(kPuntUnhandled, "punt_unhandled", kAfterPunt, "punted frame had no control-plane handler") \
  X(kPortDown, "port_down", kEgress, "egress port's interface is gone or the port is being recovered") \
  X(kNoBridgeDomain, "no_bridge_domain", kIngress, "access frame on a port/VLAN with no bridge domain") \
  X(kAccessTagStack, "access_tag_stack", kIngress, "access frame with stacked VLAN tags (802.1ad, QinQ): not bridged") \
  X(kNotLocalAddress, "not_local_address", kIngress, "underlay packet not addressed to this VTEP") \
  X(kNotVxlan, "not_vxlan", kIngress, "underlay frame that is neither VXLAN to our UDP port nor ARP/ND") \
  X(kVxlanMalformed, "vxlan_malformed", kIngress, "truncated or invalid outer headers, or a fragment") \
  X(kVxlanNoIFlag, "vxlan_no_i_flag", kIngress, "VXLAN header without the I (valid VNI) flag") \
  X(kUdpChecksum, "udp_checksum", kIngress, "IPv6 outer UDP checksum zero or wrong")      \
  X(kVxlanUnknownVni, "vxlan_unknown_vni", kIngress, "VXLAN VNI with no bridge domain")   \
  X(kVxlanUnknownVtep, "vxlan_unknown_vtep", kIngress,                                    \
    "VXLAN from a source VTEP on neither the flood list nor a static FDB entry (remote_vtep_learning off)") \
  X(kVxlanInnerVlan, "vxlan_inner_vlan", kIngress, "decapsulated frame carries a VLAN tag (RFC 7348 6.1)") \
  X(kEcnNotCapable, "ecn_ce_not_ect", kIngress, "outer CE over a not-ECN-capable inner packet (RFC 6040)") \
  X(kUnderlayUnresolved, "underlay_unresolved", kIngress, "remote VTEP's next hop not resolved (yet)") \
  X(kMtuExceeded, "mtu_exceeded", kIngress, "frame would exceed the egress MTU (never fragmented)") \
  X(kSameInterface, "same_interface", kIngress, "destination MAC is on the ingress attachment") \
  X(kSplitHorizon, "split_horizon", kIngress, "overlay frame for a remote VTEP (never re-encapsulated)") \
  X(kNoFloodTarget, "no_flood_target", kIngress, "broadcast/unknown frame with nowhere else to go") \
  X(kReplicaNoBuffer, "replica_no_buffer", kIngress, "no buffer for a head-end replica")  \
  X(kQosTailDrop, "qos_tail_drop", kEgress, "QoS leaf queue at its packet/byte limit, or the tree's buffer pool full") \
  X(kQosHandoffFull, "qos_handoff_full", kEgress, "ring to the worker owning the QoS port was full")

enum class DropReason : uint8_t {
#define MERIDIAN_DROP_ENUM(e, name, stage, help) e,
  MERIDIAN_DROP_REASONS(MERIDIAN_DROP_ENUM)
#undef MERIDIAN_DROP_ENUM
};

inline constexpr size_t kDropReasonCount = 0
#define MERIDIAN_DROP_COUNT(e, name, stage, help) +1
    MERIDIAN_DROP_REASONS(MERIDIAN_DROP_COUNT)
#undef MERIDIAN_DROP_COUNT
    ;

inline constexpr const char* kDropReasonNames[kDropReasonCount] = {
#define MERIDIAN_DROP_NAME(e, name, stage, help) name,
    MERIDIAN_DROP_REASONS(MERIDIAN_DROP_NAME)
#undef MERIDIAN_DROP_NAME
};

inline constexpr const char* kDropReasonHelp[kDropReasonCount] = {
#define MERIDIAN_DROP_HELP(e, name, stage, help) help,
    MERIDIAN_DROP_REASONS(MERIDIAN_DROP_HELP)
#undef MERIDIAN_DROP_HELP
};

inline constexpr DropStage kDropReasonStage[kDropReasonCount] = {
#define MERIDIAN_DROP_STAGE(e, name, stage, help) DropStage::stage,
    MERIDIAN_DROP_REASONS(MERIDIAN_DROP_STAGE)
#undef MERIDIAN_DROP_STAGE
};

constexpr const char* drop_stage_name(DropStage s) {
  return s == DropStage::kIngress ? "ingress" : s == DropStage::kEgress ? "egress" : "after_punt";
}

constexpr const char* drop_reason_name(DropReason r) { return kDropReasonNames[static_cast<size_t>(r)]; }

}  // namespace meridian::dataplane
