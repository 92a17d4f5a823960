// The PTP instance on the control lcore: Meridian's clock over the TSC,
// the protocol engine (PtpInstance) and the frames in and out.
// - In: the PTP punt stage hands over frames with their Rx TSC; they are
//   checked (port, transport, addressed to us), decoded and fed in, each
//   failure counted under a reason.
// - Out: messages become frames (L2, UDPv4, UDPv6; multicast or unicast
//   replies) sent through the engine's egress path (dataplane/egress.h):
//   event messages at once on the port's control TX queue, general ones
//   through the port's QoS tree when it has one.
// - Timestamps, per port, the best the port has ("auto"): the NIC's
//   hardware stamps where the PMD has a PTP clock (nic_clock.h); on a
//   kernel-backed port (net_af_packet, net_tap) the kernel's own software
//   stamps of the event frames (kernel_stamps.h); otherwise, or when a
//   stamp is missing, the Rx poll round's TSC and the TSC read just before
//   the send.
// - Base: the clock free-runs over the NIC clock of the first port with
//   hardware stamps, else over the TSC; other clocks' stamps are converted
//   through fresh cross-timestamps (timebase.h).
// - Time: the clock starts from the host clock's reading on the PTP
//   timescale (CLOCK_REALTIME + UTC offset, read, never written). With
//   reference "system" the grandmaster keeps steering to that reading.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "config/field_error.h"
#include "config/metrics.h"
#include "dataplane/counters.h"
#include "dataplane/egress.h"
#include "host/presence.h"
#include "ptp/drop_reasons.h"
#include "ptp/host_export.h"
#include "ptp/instance.h"
#include "ptp/kernel_stamps.h"
#include "ptp/model.h"
#include "ptp/nic_clock.h"
#include "ptp/stage.h"
#include "ptp/timebase.h"
#include "ptp/transport.h"

namespace meridian::ptp {

struct PtpPortBinding {
  std::string name;
  uint16_t port_id = 0;
  std::array<uint8_t, 6> mac{};
  /// The kernel interface behind the port (net_af_packet, net_tap), "" if none.
  std::string linux_interface;
  /// net_af_packet: the PMD's packet socket of the queue the service sends
  /// on, whose kernel Tx timestamps it reads; -1 otherwise.
  int kernel_tx_socket = -1;
};

struct PtpServiceIo {
  rte_mempool* pool = nullptr;
  /// The engine's control transmit (dataplane::ControlTransmit): event
  /// messages go kTimestamped, past a shaped port's tree.
  dataplane::ControlTransmit transmit;
  RxTimestampField rx_timestamp;
  uint64_t tsc_hz = 0;  // the engine's calibrated TSC rate: the clock's base runs on it
  /// The control lcore's counter block (the service runs there): its drops
  /// are counted on their ports. Null in tests without an engine.
  dataplane::WorkerCounters* control_counters = nullptr;
  /// host/: answers ARP/ND for the PTP ports' addresses and resolves the
  /// unicast masters. Null in tests without an engine.
  host::Presence* presence = nullptr;
};

/// The free-running base under Meridian's clock: the NIC clock of the
/// first port with hardware stamps, else the TSC (as ns since an origin).
struct ClockBase {
  TscTimebase tsc;
  std::shared_ptr<NicClock> nic;
  int64_t now() const;
  /// A TSC reading (the punt stage's Rx stamp, a send) on the base.
  int64_t from_tsc(uint64_t tsc_reading) const;
  /// A hardware stamp of `clock` on the base: as is when it is the base.
  int64_t from_nic(NicClock& clock, int64_t ns) const;
  bool same_as(const ClockBase& o) const { return nic == o.nic; }
};

class PtpService {
 public:
  /// Builds the instance for `cfg` on `ports` (all of the data plane's
  /// ports; the config names the PTP ones). `previous`, when set, hands over
  /// its clock so time and frequency survive a config change. Returns null
  /// and fills `errors` (JSON-pointer paths) when the config cannot run.
  static std::unique_ptr<PtpService> create(const config::PtpConfig& cfg, const std::vector<PtpPortBinding>& ports,
                                            PtpServiceIo io, const PtpService* previous,
                                            config::FieldErrors& errors);

  /// A punted frame; false when it is not a PTP frame from the punt stage
  /// (the next handler may take it). Takes ownership when true.
  bool handle_punt(rte_mbuf* m);
  /// Registers the ports' addresses and unicast masters with host/ (which
  /// then answers and resolves them) once the service goes live: a service
  /// prepared for a change that is not committed never touches host/.
  void attach_to_host();
  /// Leaves host/ (a service parked while its port's device is re-created
  /// answers and asks nothing; the one that resumes attaches anew).
  void detach_from_host();
  ~PtpService();
  /// Timers, the reference, and sending what is due. Call every few ms.
  void tick();

  nlohmann::json status() const;
  void metrics(config::MetricsWriter& out) const;
  /// Data-plane ports (ids) that run PTP.
  std::vector<uint16_t> port_ids() const;

 private:
  struct Port {
    PtpPortBinding binding;
    config::PtpPortConfig config;
    Transport transport = Transport::kUdpIpv4;
    bool peer_delay_address = false;  // G.8275.1: every message to 01:80:C2:00:00:0E
    /// The NIC's PTP clock when the port uses hardware stamps; else why
    /// not (the PMD has none, or another source was asked for).
    std::shared_ptr<NicClock> nic;
    std::string hardware_note;
    struct {
      uint64_t rx_used = 0, rx_missed = 0, tx_used = 0, tx_missed = 0;
    } hardware;
    /// Kernel software stamps for event frames (timestamping kernel/auto on
    /// a kernel-backed port); null: the TSC estimates.
    std::unique_ptr<KernelTimestampTap> tap;
    std::string tsc_reason;  // why "auto" settled for the TSC
    std::string tx_socket_error;  // why the PMD's socket gives no Tx stamps
  };
  PtpService() = default;
  int64_t base_now() const;
  /// A CLOCK_REALTIME reading (a kernel stamp) on the clock's base.
  int64_t base_from_realtime(int64_t stamp_ns) const;
  void flush();
  void transmit(TxRequest& tx);
  bool addressed_to_us(const Port& p, std::span<const uint8_t> frame, const net::PacketView& view,
                       const PtpLocation& loc) const;
  void sample_reference();
  /// On the port, under the shared reasons, and in the service's own view.
  void count_drop(uint16_t port_id, Drop reason);
  /// The service's own view of its frame drops, by the names it has always
  /// used: the reasons without "ptp_", decode errors by name, tx_full.
  std::vector<std::pair<std::string, uint64_t>> frame_drops() const;
  nlohmann::json frame_drops_json() const;
  bool is_unicast_master(const Port& p, const uint8_t* ip) const;
  /// The MAC for a unicast destination: the frame's own, or a unicast
  /// master's as host/ resolved it (it keeps asking); false while unknown.
  bool resolve(const Port& p, PeerAddress& to) const;
  /// Our clock minus the host clock on our timescale, now.
  int64_t host_clock_error_ns() const;
  /// The grandmaster's own reference ("none" without one): its state, last
  /// offset and the servo that steers the clock to it.
  nlohmann::json reference_json() const;
  /// Our clock in UTC and CLOCK_REALTIME at one instant.
  std::pair<int64_t, int64_t> utc_and_host_ns() const;
  /// host_clock_export: a sample a second to the time daemon while the
  /// servo is locked; none while it is not (the daemon sees the refclock
  /// go quiet, not a bad time).
  void export_to_host();
  std::unique_ptr<NtpShmExport> host_export_;
  int64_t next_export_ = 0;
  uint64_t export_skipped_ = 0;  // seconds with no sample: not locked

  config::PtpConfig config_;
  PtpServiceIo io_;
  ClockBase base_;
  std::string base_name_;  // "tsc" or "nic:<port>", for status
  std::unique_ptr<PtpClock> clock_;
  std::unique_ptr<PtpInstance> instance_;
  std::vector<Port> ports_;
  std::array<int, 256> port_number_{};  // port id -> 1-based PTP port, 0 = none
  int64_t utc_offset_ns_ = 0;
  int64_t next_reference_ = 0;
  std::array<uint64_t, reason_count(Drop{})> drops_{};
  std::array<uint64_t, kDecodeErrorCount> decode_errors_{};  // the breakdown of Drop::kMalformed
  uint64_t tx_full_ = 0;  // the port counts these as control_tx_full
  host::Presence::ClientId host_client_ = 0;
};

}  // namespace meridian::ptp
