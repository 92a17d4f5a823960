// The PTP punt stage: on ports that run PTP, frames carrying PTP (EtherType
// 0x88F7, or UDP to port 319/320) go to the control lcore with the poll
// round's TSC in the mbuf's Rx timestamp field, read before rx_burst and
// so as close to reception as software gets. ARP requests and IPv6
// neighbour solicitations for the port's PTP address go up too, so unicast
// peers can resolve it. Everything else passes on.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>

#include "packet_view.h"
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
  static bool neighbor_solicitation(std::span<const uint8_t> frame, const dataplane::PacketView& view, uint8_t family,
                                    const uint8_t* address);

 private:
  RxTimestampField field_;
};

}  // namespace meridian::ptp

namespace meridian::ptp {

/// The end-to-end transparent clock on the forwarding path: every PTP event
/// message a worker forwards (Sync, Delay_Req; also inside VXLAN) gains its
/// residence time in the correctionField. For a two-step Sync the residence
/// goes into its Follow_Up instead: the Sync's is parked in a table shared
/// by the workers (Sync and Follow_Up travel on different UDP ports and may
/// land on different workers) and added when the Follow_Up passes.
/// Residence runs from the poll round's TSC (the receive timestamp) to the
/// stage; the few hundred ns left until tx_burst, and any QoS queueing on a
/// shaped egress port, are not in it.
class PtpTransparentStage final : public dataplane::Stage {
 public:
  struct alignas(64) Counters {       // one cache line per worker
    uint64_t corrected = 0;             // event messages corrected in place
    uint64_t followups_corrected = 0;
    uint64_t followups_unmatched = 0;   // no parked Sync residence (lost, or too old)
  };
  PtpTransparentStage(unsigned workers, uint64_t tsc_hz);
  const char* name() const override { return "ptp-tc"; }
  void process(dataplane::PacketBatch& batch, const dataplane::StageContext& ctx) const override;
  /// Sums over the workers (read by the control lcore).
  Counters totals() const;

 private:
  struct Slot {
    std::atomic<uint64_t> key{0};
    std::atomic<int64_t> residence{0};
  };
  static constexpr size_t kSlots = 4096;
  void park(uint64_t key, int64_t residence) const;
  bool take(uint64_t key, int64_t& residence) const;

  uint64_t tsc_hz_;
  std::unique_ptr<Slot[]> slots_;
  std::unique_ptr<Counters[]> counters_;
  unsigned workers_;
};

}  // namespace meridian::ptp
