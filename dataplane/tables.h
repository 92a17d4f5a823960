// The forwarding state workers read: one immutable snapshot per config
// generation, published with a single pointer store (see rcu_publisher.h).
// Later modules add their tables here.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <memory>

#include "dataplane/counters.h"

namespace meridian::vxlan {
struct VxlanTables;
}
namespace meridian::qos {
struct QosPlan;
}

namespace meridian::dataplane {

inline constexpr uint16_t kNoPort = 0xffff;

struct ForwardingTables {
  /// Increments with every publication (not the config generation).
  uint64_t version = 0;
  /// xconnect_peer[p] is the port that frames received on p leave by.
  std::array<uint16_t, kMaxPorts> xconnect_peer;
  /// Frames with these EtherTypes (after VLAN tags) go to the control lcore.
  std::bitset<65536> punt_ethertype;
  /// punt_ethertype.any(), precomputed: scanning 8 KiB per burst is not free.
  bool punt_enabled = false;
  /// Bridge domains, VTEPs and port roles; null when no VXLAN is configured.
  std::shared_ptr<const vxlan::VxlanTables> vxlan;
  /// Per egress port: the compiled HTB tree and classifier, or null (the
  /// port is not shaped; `shaped` below says the same to the engine).
  std::array<std::shared_ptr<const qos::QosPlan>, kMaxPorts> qos;
  /// Ports that run PTP: their PTP frames go to the control lcore.
  std::array<bool, kMaxPorts> ptp_port{};
  bool ptp_enabled = false;
  /// The PTP port's own address (family 4 or 6; 0: none), whose ARP and
  /// neighbour solicitations the PTP service answers.
  std::array<uint8_t, kMaxPorts> ptp_address_family{};
  std::array<std::array<uint8_t, 16>, kMaxPorts> ptp_address{};
  /// End-to-end transparent clock on forwarded PTP (and PTP inside the overlay).
  bool ptp_tc_enabled = false;

  /// The overlay's UDP port (ModuleHost::overlay_udp_port): frames to it
  /// are read as VXLAN in the packet metadata (PacketBatch::meta).
  uint16_t overlay_udp_port = 4789;

  /// The pipeline positions of the stages with work under this version
  /// (Stage::active), in pipeline order: what the workers run.
  std::array<uint8_t, kMaxStages> stages{};
  uint8_t stage_count = 0;

  /// Ports whose sends go through the worker's PortScheduler (QoS shapes
  /// them); any_shaped: any of them set.
  std::array<bool, kMaxPorts> shaped{};
  bool any_shaped = false;

  /// Ports out of the data path (interface gone, device being re-created):
  /// not polled, and what is sent to them is dropped as port_down.
  std::array<bool, kMaxPorts> port_offline{};
  bool any_offline = false;

  bool offline(uint16_t port) const { return any_offline && port < kMaxPorts && port_offline[port]; }

  ForwardingTables() { xconnect_peer.fill(kNoPort); }
};

}  // namespace meridian::dataplane
