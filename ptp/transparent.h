// End-to-end transparent clock (IEEE 1588-2019 §10.2), the wire part: find
// a PTP message in a forwarded frame (over L2, UDP, or inside VXLAN) and add
// a residence time to its correctionField in place, keeping every enclosing
// UDP checksum valid (RFC 1624 incremental update). Pure: byte buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "net/packet_meta.h"
#include "ptp/message.h"

namespace meridian::ptp {

struct TcFrame {
  uint16_t ptp_offset = 0;         // of the PTP header in the frame
  uint16_t checksums[2] = {0, 0};  // offsets of UDP checksum fields to keep valid (inner first)
  uint8_t checksum_count = 0;
  MessageType type = MessageType::kSync;
  uint16_t flags = 0;
  uint8_t domain = 0;
  uint16_t sequence = 0;
  PortIdentity source;
  PortIdentity requesting;         // Delay_Resp: the Delay_Req's sender
  bool in_vxlan = false;
};

/// Finds the PTP message of a frame from its metadata: directly (L2 or UDP
/// 319/320) or in the inner frame of an overlay packet, whose inner headers
/// `meta` must hold (net::parse_inner). False when there is none.
bool tc_locate(std::span<const uint8_t> frame, const net::PacketMeta& meta, TcFrame& out);
/// The same on a frame not parsed yet, with `vxlan_port` as the overlay's port.
bool tc_locate(std::span<const uint8_t> frame, uint16_t vxlan_port, TcFrame& out);

/// Adds `scaled_ns` (ns * 2^16) to the message's correctionField and updates
/// the UDP checksums that cover it (a zero IPv4 UDP checksum stays zero).
void tc_add_correction(std::span<uint8_t> frame, const TcFrame& f, int64_t scaled_ns);

/// A key for matching a two-step Sync with its Follow_Up (both keyed by
/// their source), and a Delay_Req with its Delay_Resp (keyed by the
/// Delay_Req's sender: the Delay_Resp's requestingPortIdentity).
uint64_t tc_key(const TcFrame& f);

}  // namespace meridian::ptp
