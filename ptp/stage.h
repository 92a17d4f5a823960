// The PTP punt stage: on ports that run PTP, frames carrying PTP (EtherType
// 0x88F7, or UDP to port 319/320) go to the control lcore with the poll
// round's TSC in the mbuf's Rx timestamp field, read before rx_burst and
// so as close to reception as software gets. ARP for the port's PTP
// address, IPv6 neighbour solicitations for it and advertisements sent to
// it go up too: unicast peers resolve the address, and the port resolves
// its unicast masters. Everything else passes on.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dataplane/counter_set.h"
#include "dataplane/pipeline.h"
#include "net/packet_view.h"
#include "ptp/kernel_stamps.h"
#include "ptp/transparent.h"

namespace meridian::ptp {

/// The mbuf dynamic field and flag that carry a software Rx timestamp
/// (DPDK's standard rte_mbuf_timestamp_t field); registered once per process.
struct RxTimestampField {
  int offset = -1;
  uint64_t flag = 0;
};
/// Registers (or finds) the field; false when DPDK has no room for it.
bool register_rx_timestamp(RxTimestampField& field);

/// What PTP's stages read from a table version (ForwardingTables::get).
struct PtpTables {
  /// Ports that run PTP: their PTP frames go to the control lcore.
  std::array<bool, dataplane::kMaxPorts> port{};
  bool enabled = false;
  /// The PTP port's own address (family 4 or 6; 0: none), whose ARP and
  /// neighbour solicitations the PTP service answers.
  std::array<uint8_t, dataplane::kMaxPorts> address_family{};
  std::array<std::array<uint8_t, 16>, dataplane::kMaxPorts> address{};
  /// End-to-end transparent clock on forwarded PTP (and PTP inside the overlay).
  bool tc_enabled = false;

  static bool ptp_on(const dataplane::ForwardingTables& t) {
    const PtpTables* p = t.get<PtpTables>();
    return p && p->enabled;
  }
  static bool tc_on(const dataplane::ForwardingTables& t) {
    const PtpTables* p = t.get<PtpTables>();
    return p && p->tc_enabled;
  }
};

class PtpPuntStage final : public dataplane::Stage {
 public:
  explicit PtpPuntStage(RxTimestampField field) : field_(field) {}
  const char* name() const override { return "ptp-punt"; }
  void process(dataplane::PacketBatch& batch, const dataplane::StageContext& ctx) const override;
  bool active(const dataplane::ForwardingTables& tables) const override { return PtpTables::ptp_on(tables); }
  static bool neighbor_message(std::span<const uint8_t> frame, const net::PacketView& view, uint8_t family,
                               const uint8_t* address);

 private:
  RxTimestampField field_;
};

}  // namespace meridian::ptp

namespace meridian::ptp {

/// The end-to-end transparent clock on the forwarding path: every PTP event
/// message a worker forwards (Sync, Delay_Req; also inside VXLAN) gains its
/// residence time. A one-step Sync carries it in its own correctionField,
/// written as it passes the stage. Two-step, as a two-step TC may (1588-2019
/// §10.2.2.3, §11.5.3): a two-step Sync's residence goes into its Follow_Up
/// and a Delay_Req's into the Delay_Resp that answers it. Both are parked in
/// a table shared by the workers (the pairs travel on different UDP ports
/// and may land on different workers) and added when the second message
/// passes, by which time the first has left: its residence can end at its
/// real departure, not at the stage.
/// On kernel-backed ports (net_af_packet, net_tap) both ends are the
/// kernel's own software stamps, as a linuxptp peer's: a KernelTimestampTap
/// per port (shared by the workers, opened on first use) gives the receive
/// stamp (netif_rx) on the ingress port. The send stamp is the driver's
/// (skb_tx_timestamp), the one a linuxptp peer takes: a two-step event
/// message forwarded out of a net_af_packet port leaves through a stamping
/// socket of its own (PtpTransparentEgressStage), not the worker's TX
/// queue, and its stamp joins its parked residence. Otherwise (net_tap, a
/// shaped port, a send that failed) the packet tap's outgoing copy stands
/// in: stamped
/// in dev_queue_xmit before the driver, 1-3 us early on veth here, and
/// seen only with qdisc_bypass=0 in the port's devargs. Without a tap the
/// residence starts at the poll round's TSC and ends at the stage, which
/// misses the kernel's receive and send paths (tens of microseconds on
/// veth). PTP inside VXLAN, which the taps' filter does not pass, takes the
/// TSC. QoS queueing on a shaped egress port is not in it.
class PtpTransparentStage final : public dataplane::Stage {
 public:
  // X(field, JSON name, Prometheus family, label, family help): one block per worker.
#define MERIDIAN_PTP_TC_COUNTERS(X)                                                                             \
  X(corrected, "corrected", "meridian_ptp_tc_corrected_total", "kind=event",                                   \
    "Forwarded PTP messages the transparent clock corrected, by kind")                                         \
  X(followups_corrected, "follow_ups_corrected", "meridian_ptp_tc_corrected_total", "kind=follow_up", "")      \
  X(delay_resps_corrected, "delay_resps_corrected", "meridian_ptp_tc_corrected_total", "kind=delay_resp", "")  \
  X(followups_unmatched, "follow_ups_unmatched", "meridian_ptp_tc_follow_up_unmatched_total", "",              \
    "Forwarded Follow_Ups whose Sync residence was not found")                                                 \
  X(delay_resps_unmatched, "delay_resps_unmatched", "meridian_ptp_tc_delay_resp_unmatched_total", "",          \
    "Forwarded Delay_Resps whose Delay_Req residence was not found (the request took another path)")           \
  X(kernel_ingress, "kernel_ingress", "meridian_ptp_tc_ingress_stamps_total", "source=kernel",                 \
    "Transparent-clock residences by receive timestamp: the kernel's, or the poll round's TSC")                \
  X(tsc_ingress, "tsc_ingress", "meridian_ptp_tc_ingress_stamps_total", "source=tsc", "")                      \
  X(driver_egress, "driver_egress", "meridian_ptp_tc_egress_stamps_total", "source=driver",                    \
    "Transparent-clock residences by departure: the driver's stamp of the TC's own send, the packet "          \
    "tap's send stamp, or the stage")                                                                          \
  X(kernel_egress, "kernel_egress", "meridian_ptp_tc_egress_stamps_total", "source=kernel", "")                \
  X(stage_egress, "stage_egress", "meridian_ptp_tc_egress_stamps_total", "source=stage", "")                   \
  X(egress_sent, "egress_sent", "meridian_ptp_tc_egress_sends_total", "result=sent",                           \
    "Forwarded two-step event messages bound for a net_af_packet port, by what the transparent clock's "       \
    "stamping socket did: sent, or left to the worker's TX queue (failed, unavailable, kept_in_order)")        \
  X(egress_send_failed, "egress_send_failed", "meridian_ptp_tc_egress_sends_total", "result=failed", "")       \
  X(egress_unavailable, "egress_unavailable", "meridian_ptp_tc_egress_sends_total", "result=unavailable", "")  \
  X(egress_kept_in_order, "egress_kept_in_order", "meridian_ptp_tc_egress_sends_total", "result=kept_in_order", "")
  MERIDIAN_DEFINE_COUNTER_SET(Counters, MERIDIAN_PTP_TC_COUNTERS)
  /// A port's Linux side: `interface` "" if none; `sends` when frames
  /// written to it reach the wire (net_af_packet; not net_tap, whose
  /// interface writes towards DPDK).
  struct KernelPort {
    std::string interface;
    bool sends = false;
  };
  /// `kernel_ports[port id]`.
  PtpTransparentStage(unsigned workers, uint64_t tsc_hz, std::vector<KernelPort> kernel_ports = {});
  ~PtpTransparentStage() override;
  const char* name() const override { return "ptp-tc"; }
  /// Its egress stage answers alike: the marks this stage resets each
  /// burst are read there.
  bool active(const dataplane::ForwardingTables& tables) const override { return PtpTables::tc_on(tables); }
  void process(dataplane::PacketBatch& batch, const dataplane::StageContext& ctx) const override;
  /// Sums over the workers (read by the control lcore).
  Counters::Totals totals() const { return dataplane::sum_counters<Counters>({counters_.get(), workers_}); }
  /// After `port`'s device was re-created on a returned interface: its tap
  /// and stamping socket, bound to the deleted interface, are opened again
  /// on next use.
  void reopen_port(uint16_t port) const;

 private:
  friend class PtpTransparentEgressStage;
  /// What a two-step Sync leaves for its Follow_Up, a Delay_Req for its
  /// Delay_Resp.
  struct Parked {
    int64_t tsc_residence = 0;  // poll round to stage, ns
    uint64_t fingerprint = 0;   // of the event message's frame as received
    uint64_t stage_tsc = 0;
    uint16_t rx_port = 0;
    int64_t departed_ns = 0;    // the driver's send stamp, once the egress stage sent it; 0 until then
  };
  struct Slot {
    std::atomic<uint64_t> key{0};
    std::atomic<int64_t> tsc_residence{0};
    std::atomic<uint64_t> fingerprint{0};
    std::atomic<uint64_t> stage_tsc{0};
    std::atomic<uint16_t> rx_port{0};
    std::atomic<int64_t> departed_ns{0};
  };
  /// Per worker, from this stage to the egress stage, for the current
  /// batch (bit i: batch index i): the parked two-step event messages and
  /// their keys, and every PTP frame (whose order the egress stage keeps).
  /// `deferred`: Follow_Ups / Delay_Resps whose event message is parked in
  /// the same burst and has not left yet; the egress stage corrects them
  /// once it has (a host that stalls the worker for tens of microseconds
  /// hands over a Sync and its Follow_Up together).
  struct alignas(64) Marks {
    uint64_t parked = 0;
    uint64_t ptp = 0;
    uint64_t deferred = 0;
    uint64_t keys[dataplane::kMaxBurst] = {};
  };
  static_assert(dataplane::kMaxBurst <= 64, "Marks::batch holds one bit per burst slot");
  struct PortTap;
  static constexpr size_t kSlots = 4096;
  void park(uint64_t key, const Parked& p) const;
  bool take(uint64_t key, Parked& p) const;
  /// Adds the driver's send stamp to the message parked under `key`, unless
  /// its Follow_Up / Delay_Resp took it first or another message replaced it.
  void depart(uint64_t key, int64_t departed_ns) const;
  /// The kernel's stamp of the frame with `fingerprint` in direction `dir`
  /// on `port`, when the port has a tap and it saw the frame.
  std::optional<int64_t> kernel_stamp(uint16_t port, StampDirection dir, uint64_t fingerprint) const;
  /// Residence in ns: from the kernel's receive stamp on `rx_port` (else the
  /// poll round) to the kernel's send stamp on another port (else
  /// `stage_tsc`). `departed`: the message has left (two-step), so a send
  /// stamp may exist.
  int64_t residence(const Parked& p, bool departed, Counters& c) const;
  /// A Follow_Up / Delay_Resp: the residence of the event parked under
  /// `key` goes into `frame`'s correctionField (counted), or it is unmatched.
  void correct_second(std::span<uint8_t> frame, const TcFrame& f, uint64_t key, uint64_t now, Counters& c) const;
  /// The PTP message of packet i, from the batch's metadata (the overlay's
  /// inner frame read only for overlay packets).
  static bool locate_in_batch(dataplane::PacketBatch& b, uint16_t i, TcFrame& f);

  uint64_t tsc_hz_;
  std::unique_ptr<Slot[]> slots_;
  std::vector<std::unique_ptr<PortTap>> taps_;  // by port id: receive and send stamps
  std::unique_ptr<Counters[]> counters_;
  std::unique_ptr<Marks[]> marks_;
  unsigned workers_;
};

/// The transparent clock's second half, after the forwarding stages: a
/// two-step event message (Sync, Delay_Req) that PtpTransparentStage parked
/// and a forwarding stage sent to a net_af_packet port leaves through that
/// port's stamping socket right here, and the driver's send stamp joins its
/// parked residence. Not when the port is shaped (the shaper keeps its
/// order and its rate), and not behind an earlier PTP frame of the same
/// burst to the same port (a Follow_Up must not fall behind the next Sync):
/// those stay with the worker. Everything else passes untouched. A
/// stage that locks and makes a syscall, for the few PTP event frames only.
class PtpTransparentEgressStage final : public dataplane::Stage {
 public:
  explicit PtpTransparentEgressStage(const PtpTransparentStage& tc) : tc_(tc) {}
  const char* name() const override { return "ptp-tc-egress"; }
  bool active(const dataplane::ForwardingTables& tables) const override { return tc_.active(tables); }
  void process(dataplane::PacketBatch& batch, const dataplane::StageContext& ctx) const override;
  /// True when a PTP frame (bit j of `ptp`) before batch index `i` is
  /// forwarded to the same port as `i`: `i` must then not overtake it.
  static bool behind_earlier_ptp(const dataplane::PacketBatch& b, uint64_t ptp, uint16_t i);

 private:
  /// Sends batch packet `i` through its egress port's stamping socket;
  /// on success the packet is consumed and the stamp joins `key`'s entry.
  void send_stamped(dataplane::PacketBatch& b, uint16_t i, uint64_t key, const dataplane::StageContext& ctx,
                    PtpTransparentStage::Counters& c) const;

  const PtpTransparentStage& tc_;
};

}  // namespace meridian::ptp
