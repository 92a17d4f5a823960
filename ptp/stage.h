// The PTP punt stage: on ports that run PTP, frames carrying PTP (EtherType
// 0x88F7, or UDP to port 319/320) go to the control lcore with the poll
// round's TSC in the mbuf's Rx timestamp field, read before rx_burst and
// so as close to reception as software gets. ARP requests and IPv6
// neighbour solicitations for the port's PTP address go up too, so unicast
// peers can resolve it. Everything else passes on.
#pragma once

#include <cstdint>
#include <span>

#include "pipeline.h"

namespace meridian::ptp {

/// The mbuf dynamic field and flag that carry a software Rx timestamp
/// (DPDK's standard rte_mbuf_timestamp_t field); registered once per process.
struct RxTimestampField {
  int offset = -1;
  uint64_t flag = 0;
};
/// Registers (or finds) the field; false when DPDK has no room for it.
bool register_rx_timestamp(RxTimestampField& field);

class PtpPuntStage final : public dataplane::Stage {
 public:
  explicit PtpPuntStage(RxTimestampField field) : field_(field) {}
  const char* name() const override { return "ptp-punt"; }
  void process(dataplane::PacketBatch& batch, const dataplane::StageContext& ctx) const override;
  static bool neighbor_solicitation(std::span<const uint8_t> frame, uint8_t family, const uint8_t* address);

 private:
  RxTimestampField field_;
};

}  // namespace meridian::ptp
