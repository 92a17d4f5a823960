// VXLAN's drop reasons, in the engine's shared id space (dataplane/drop_reasons.h).
#pragma once

#include "dataplane/drop_reasons.h"

namespace meridian::vxlan {

// X(enumerator, metric/API name, stage, description)
#define MERIDIAN_VXLAN_DROP_REASONS(X)                                                                         \
  X(kNoBridgeDomain, "no_bridge_domain", kIngress, "access frame on a port/VLAN with no bridge domain")        \
  X(kAccessTagStack, "access_tag_stack", kIngress, "access frame with stacked VLAN tags (802.1ad, QinQ): not bridged") \
  X(kNotLocalAddress, "not_local_address", kIngress, "underlay packet not addressed to this VTEP")             \
  X(kNotVxlan, "not_vxlan", kIngress, "underlay frame that is neither VXLAN to our UDP port nor ARP/ND")       \
  X(kVxlanMalformed, "vxlan_malformed", kIngress, "truncated or invalid outer headers, or a fragment")         \
  X(kVxlanNoIFlag, "vxlan_no_i_flag", kIngress, "VXLAN header without the I (valid VNI) flag")                 \
  X(kUdpChecksum, "udp_checksum", kIngress, "IPv6 outer UDP checksum zero or wrong")                           \
  X(kVxlanUnknownVni, "vxlan_unknown_vni", kIngress, "VXLAN VNI with no bridge domain")                        \
  X(kVxlanUnknownVtep, "vxlan_unknown_vtep", kIngress,                                                         \
    "VXLAN from a source VTEP on neither the flood list nor a static FDB entry (remote_vtep_learning off)")    \
  X(kVxlanInnerVlan, "vxlan_inner_vlan", kIngress, "decapsulated frame carries a VLAN tag (RFC 7348 6.1)")     \
  X(kEcnNotCapable, "ecn_ce_not_ect", kIngress, "outer CE over a not-ECN-capable inner packet (RFC 6040)")     \
  X(kUnderlayUnresolved, "underlay_unresolved", kIngress, "remote VTEP's next hop not resolved (yet)")         \
  X(kMtuExceeded, "mtu_exceeded", kIngress, "frame would exceed the egress MTU (never fragmented)")            \
  X(kSameInterface, "same_interface", kIngress, "destination MAC is on the ingress attachment")                \
  X(kSplitHorizon, "split_horizon", kIngress, "overlay frame for a remote VTEP (never re-encapsulated)")       \
  X(kNoFloodTarget, "no_flood_target", kIngress, "broadcast/unknown frame with nowhere else to go")            \
  X(kReplicaNoBuffer, "replica_no_buffer", kIngress, "no buffer for a head-end replica")                      \
  X(kMcastNoReceivers, "mcast_no_receivers", kIngress,                                                         \
    "multicast data in a snooping bridge domain that no attachment or edge asked for")

MERIDIAN_DEFINE_DROP_REASONS(Drop, MERIDIAN_VXLAN_DROP_REASONS)
/// Bridge-domain counters count these by their place in the list.
inline constexpr size_t kDropCount = reason_count(Drop{});

}  // namespace meridian::vxlan
