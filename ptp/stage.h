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
#include <string>
#include <vector>

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
/// Residence runs from the receive timestamp to the stage. On a
/// kernel-backed ingress port (net_af_packet, net_tap) the receive
/// timestamp is the kernel's (netif_rx, through a KernelTimestampTap shared
/// by the workers and opened on first use); otherwise, and for PTP inside
/// VXLAN, which the tap's filter does not pass, the poll round's TSC. The
/// time from the stage to the wire (the rest of the pipeline, tx_burst,
/// the kernel's send path) and any QoS queueing on a shaped egress port are
/// not in it.
class PtpTransparentStage final : public dataplane::Stage {
 public:
  struct alignas(64) Counters {       // one cache line per worker
    uint64_t corrected = 0;             // event messages corrected in place
    uint64_t followups_corrected = 0;
    uint64_t followups_unmatched = 0;   // no parked Sync residence (lost, or too old)
    uint64_t kernel_ingress = 0;        // residences from the kernel's receive stamp
    uint64_t tsc_ingress = 0;           // residences from the poll round's TSC
  };
  /// `kernel_interfaces[port id]`: the port's Linux interface, "" if none.
  PtpTransparentStage(unsigned workers, uint64_t tsc_hz, std::vector<std::string> kernel_interfaces = {});
  ~PtpTransparentStage() override;
  const char* name() const override { return "ptp-tc"; }
  void process(dataplane::PacketBatch& batch, const dataplane::StageContext& ctx) const override;
  /// Sums over the workers (read by the control lcore).
  Counters totals() const;

 private:
  /// What a two-step Sync leaves for its Follow_Up.
  struct Parked {
    int64_t tsc_residence = 0;  // poll round to stage, ns
    uint64_t fingerprint = 0;   // of the Sync as received
    uint64_t stage_tsc = 0;
    uint16_t rx_port = 0;
  };
  struct Slot {
    std::atomic<uint64_t> key{0};
    std::atomic<int64_t> tsc_residence{0};
    std::atomic<uint64_t> fingerprint{0};
    std::atomic<uint64_t> stage_tsc{0};
    std::atomic<uint16_t> rx_port{0};
  };
  struct IngressTap;
  static constexpr size_t kSlots = 4096;
  void park(uint64_t key, const Parked& p) const;
  bool take(uint64_t key, Parked& p) const;
  /// Residence in ns from the kernel's receive stamp of the frame with
  /// `fingerprint` on `rx_port` to `stage_tsc`; TSC residence when the port
  /// has no tap or the stamp is not found.
  int64_t residence(const Parked& p, Counters& c) const;

  uint64_t tsc_hz_;
  std::unique_ptr<Slot[]> slots_;
  std::vector<std::unique_ptr<IngressTap>> taps_;  // by port id
  std::unique_ptr<Counters[]> counters_;
  unsigned workers_;
};

}  // namespace meridian::ptp
