// A whole PTP instance (ordinary or boundary clock) as pure logic: PtpNode
// (data sets, BMCA, port states) plus the timestamped message exchanges of
// each port, the slave synchronizer and management answers. The DPDK glue
// feeds it decoded messages with their receive base readings, sends what
// it asks for, and reports transmit base readings back; the simulator does
// the same over a modelled link. Base readings are the free-running base
// (TSC or NIC clock) in ns; the clock maps them to PTP time.
//
// Per port, by state:
//   MASTER        Sync every 2^logSyncInterval (two-step: a Follow_Up with
//                 the transmit time once the glue reports it; one-step: the
//                 glue writes the origin timestamp as it sends), Announce
//                 (PtpNode), Delay_Resp to each Delay_Req.
//   SLAVE/UNCAL.  Sync (+ Follow_Up) from the parent feeds the synchronizer;
//                 a Delay_Req follows a Sync once per 2^logMinDelayReqInterval
//                 (jittered), and its Delay_Resp completes the exchange.
//   any running   P2P ports exchange Pdelay_Req/Resp/Resp_Follow_Up; every
//                 port answers Management GETs of the five data sets.
//   unicast       with unicast_server, Signaling requests are granted
//                 (UnicastServer) and each client gets its own Announce and
//                 Sync (+ Follow_Up) at its granted rates while the port is
//                 MASTER; its unicast Delay_Reqs get unicast Delay_Resps.
// The servo locking moves UNCALIBRATED to SLAVE; a new parent restarts the
// synchronizer; losing the parent puts the clock in holdover.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "ptp/clock.h"
#include "ptp/clock_class.h"
#include "ptp/node.h"
#include "ptp/peer.h"
#include "ptp/synchronizer.h"
#include "ptp/unicast.h"

namespace meridian::ptp {

/// One port's timestamp corrections: each port has its own PHY, cabling
/// and timestamp point.
struct PortCorrections {
  int64_t ingress_latency_ns = 0;  // receive timestamps are this late
  int64_t egress_latency_ns = 0;   // transmit timestamps are this early
  /// delayAsymmetry (§16.8): how much longer master-to-slave is than the
  /// mean path delay on this port's link, ns. Applied while it is the
  /// slave port.
  int64_t delay_asymmetry_ns = 0;
};

struct InstanceConfig {
  NodeConfig node;
  /// Its delay_asymmetry_ns adds to the slave port's own.
  SynchronizerConfig sync = SynchronizerConfig::defaults_for(false);
  bool two_step = true;
  /// By port number - 1; a port beyond the vector has none.
  std::vector<PortCorrections> corrections;
  HoldoverPolicy holdover;
  uint16_t peer_delay_window = 16; // Pdelay exchanges in the link-delay median
  /// A grandmaster-capable clock with a time reference of its own (the
  /// host clock, GNSS): its class follows set_reference(). Otherwise the
  /// clock is a boundary/ordinary clock whose class follows its slave port.
  bool has_reference = false;
  /// Grant unicast negotiation requests (§16.1) on master ports.
  bool unicast_server = false;
  UnicastPolicy unicast;
  /// Unicast client (§16.1, G.8275.2): the masters each port asks for
  /// Announce, Sync and Delay_Resp, by port number - 1 (none: the port
  /// takes multicast). Its Delay_Reqs then go unicast to the parent. The
  /// rates asked are the port's own intervals; the policy's duration and
  /// query interval apply.
  std::vector<std::vector<PeerAddress>> unicast_masters;
  UnicastRequestPolicy unicast_request;
};

struct TxRequest {
  uint16_t port = 1;
  Message message;
  PeerAddress to;
  bool event = false;          // UDP 319; the glue timestamps it
  uint64_t cookie = 0;         // nonzero: report the transmit base with tx_done()
  /// One-step: call PtpInstance::stamp_one_step() with the transmit base
  /// just before encoding (a Sync's originTimestamp, a Pdelay_Resp's
  /// turnaround time).
  bool one_step = false;
  int64_t request_receipt_ns = 0;  // one-step Pdelay_Resp: t2
};

#define MERIDIAN_PTP_RX_DROPS(X)                                                   \
  X(kOtherDomain, "other_domain", "domainNumber is not this instance's")           \
  X(kPortNotRunning, "port_not_running", "port initializing, faulty or disabled")  \
  X(kNotFromParent, "not_from_parent", "Sync/Follow_Up/Delay_Resp from a port that is not our parent") \
  X(kNotSlave, "not_slave", "Sync or Delay_Resp while not SLAVE/UNCALIBRATED")     \
  X(kNotMaster, "not_master", "Delay_Req while not MASTER")                       \
  X(kUnmatched, "unmatched", "Follow_Up, Delay_Resp or Pdelay reply without its request") \
  X(kNotForUs, "not_for_us", "Management or Delay_Resp addressed to another port") \
  X(kUnsupported, "unsupported", "message kind this instance does not handle")      \
  X(kNotUnicast, "not_unicast", "multicast Announce/Sync/Follow_Up/Delay_Resp on a port that negotiates unicast") \
  X(kWrongDelayMechanism, "wrong_delay_mechanism", "peer delay message on an end-to-end port")  \
  X(kImplausibleDelay, "implausible_delay", "peer delay exchange giving a link delay outside (-1 ms, 1 s)") \
  X(kTimestampRange, "timestamp_range", "a timestamp past the year 2255 (seconds > 9e9): no int64 ns")

enum class RxDrop : uint8_t {
#define MERIDIAN_PTP_RXD_ENUM(e, n, d) e,
  MERIDIAN_PTP_RX_DROPS(MERIDIAN_PTP_RXD_ENUM)
#undef MERIDIAN_PTP_RXD_ENUM
  kCount
};
const char* rx_drop_name(RxDrop d);

struct PortCounters {
  std::array<uint64_t, 16> rx{};  // by messageType
  std::array<uint64_t, 16> tx{};
  std::array<uint64_t, static_cast<size_t>(RxDrop::kCount)> drops{};
};

class PtpInstance {
 public:
  PtpInstance(const InstanceConfig& config, PtpClock& clock);

  void start(int64_t base_now);
  /// A message received on `port` with its receive base reading.
  void receive(uint16_t port, const Message& m, int64_t rx_base, const PeerAddress& from, int64_t base_now);
  /// Timers: Announce, Sync, Delay_Req, Pdelay_Req, timeouts, holdover.
  void tick(int64_t base_now);
  /// The frame of a TxRequest with this cookie left at base `tx_base`.
  void tx_done(uint64_t cookie, int64_t tx_base, int64_t base_now);
  /// What to send, in order (cleared by the call).
  std::vector<TxRequest> take_outgoing();
  /// Writes what only the send time knows into a one-step message: a Sync's
  /// originTimestamp, or a Pdelay_Resp's turnaround (correctionField +=
  /// t3 - t2, requestReceiptTimestamp zero; §11.4.3).
  void stamp_one_step(TxRequest& tx, int64_t tx_base) const;

  const PtpNode& node() const { return node_; }
  PtpNode& node() { return node_; }
  const ClockSynchronizer& synchronizer() const { return sync_; }
  const PortCounters& counters(uint16_t port) const { return ports_.at(port - 1).counters; }
  /// A grandmaster's own time reference (the host clock, read only; GNSS):
  /// our clock minus the reference, measured at base `base`. It steers the
  /// clock through its own servo whenever no port is a slave, and its lock
  /// decides the grandmaster's class (6 locked).
  void reference_sample(int64_t offset_ns, int64_t base, double interval_s);
  /// The reference went away: holdover (7, then 140/248 out of spec).
  void reference_lost(int64_t base_now);
  /// Whether the reference steers the clock now, and the servo doing it.
  TimeSource reference_state() const { return reference_; }
  const Servo& reference_servo() const { return reference_servo_; }
  /// The last reference sample: our clock minus the reference, ns.
  int64_t reference_offset_ns() const { return reference_offset_ns_; }
  /// The clockClass this instance announces now (role, lock, holdover).
  uint8_t clock_class() const { return node_.defaults().quality.clock_class; }
  bool in_holdover() const { return in_holdover_; }
  /// Unicast clients holding a live grant.
  size_t unicast_clients(int64_t base_now) const { return unicast_.active_clients(base_now); }
  const UnicastServer& unicast_server() const { return unicast_; }
  /// The port's unicast client negotiation; null when it has no masters.
  const UnicastRequester* unicast_requester(uint16_t port) const {
    return port >= 1 && port <= ports_.size() ? ports_[port - 1].requester.get() : nullptr;
  }
  int64_t peer_delay_ns(uint16_t port) const { return ports_.at(port - 1).peer_delay; }

 private:
  struct PendingSync {
    bool valid = false;
    uint16_t sequence = 0;
    int64_t rx_base = 0;
    int64_t correction_ns = 0;
    int8_t log_interval = 0;
  };
  struct PendingFollowUp {
    bool valid = false;
    uint16_t sequence = 0;
    int64_t origin_ns = 0;
    int64_t correction_ns = 0;
  };
  struct PendingDelay {
    bool sent = false, stamped = false;
    uint16_t sequence = 0;
    int64_t t3 = 0, base_t3 = 0;
  };
  struct PendingPdelay {
    bool sent = false, stamped = false, have_resp = false;
    uint16_t sequence = 0;
    int64_t t1 = 0, t2 = 0, t4 = 0, resp_correction_ns = 0;
    PortIdentity responder;
  };
  struct Port {
    int64_t next_sync = 0;
    uint16_t sync_sequence = 0;
    int64_t next_delay_req = 0;
    uint16_t delay_sequence = 0;
    int64_t next_pdelay = 0;
    uint16_t pdelay_sequence = 0;
    PendingSync sync;
    PendingFollowUp follow_up;
    PendingDelay delay;
    PendingPdelay pdelay;
    std::vector<int64_t> link_delays;  // ring of recent peer delays
    size_t link_next = 0;
    size_t link_filled = 0;  // stored so far, up to the ring's size
    int64_t peer_delay = 0;
    // Pdelay_Resp sent two-step, waiting for its transmit time.
    std::vector<std::pair<uint64_t, Message>> pdelay_followups;
    PortCounters counters;
    // Unicast client: its negotiation, and the port identity each master's
    // Announces carry (to find the BMCA's parent in the table).
    std::unique_ptr<UnicastRequester> requester;
    std::vector<PortIdentity> master_identity;
  };
  /// Unicast client: select the parent's entry (or none), then send what
  /// the negotiation has due.
  void negotiate(uint16_t port, int64_t base_now);
  /// Where this port's Delay_Reqs go: the selected unicast master, or the
  /// multicast group.
  PeerAddress delay_req_destination(const Port& p) const;

  TxRequest& send(uint16_t port, Message m, bool event, const PeerAddress& to, uint64_t cookie = 0,
                  bool one_step = false);
  Header header_for(uint16_t port, MessageType type, uint16_t sequence, int8_t log_interval) const;
  void drop(uint16_t port, RxDrop reason) { ++ports_[port - 1].counters.drops[static_cast<size_t>(reason)]; }
  bool from_parent(const Message& m) const;
  void on_sync(uint16_t port, const Message& m, int64_t rx_base, int64_t base_now);
  void on_follow_up(uint16_t port, const Message& m, int64_t base_now);
  void complete_sync(uint16_t port, int64_t origin_ns, int64_t correction_ns, int64_t base_now);
  void on_delay_req(uint16_t port, const Message& m, int64_t rx_base, const PeerAddress& from);
  void on_delay_resp(uint16_t port, const Message& m);
  void on_pdelay_req(uint16_t port, const Message& m, int64_t rx_base, const PeerAddress& from);
  void on_pdelay_resp(uint16_t port, const Message& m, int64_t rx_base);
  void on_pdelay_resp_follow_up(uint16_t port, const Message& m);
  void complete_pdelay(uint16_t port, int64_t t3, int64_t fup_correction_ns);
  void on_management(uint16_t port, const Message& m, const PeerAddress& from);
  void on_signaling(uint16_t port, const Message& m, const PeerAddress& from, int64_t base_now);
  void serve_unicast(uint32_t client, UnicastKind kind, int64_t base_now);
  void follow_state(int64_t base_now);
  int64_t interval_ns(int8_t log) const;
  int64_t jitter(int64_t interval);
  const PortCorrections& corrections(uint16_t port) const;
  int64_t rx_time(uint16_t port, int64_t rx_base) const {
    return clock_.time_at(rx_base - corrections(port).ingress_latency_ns);
  }

  InstanceConfig config_;
  PtpClock& clock_;
  PtpNode node_;
  ClockSynchronizer sync_;
  std::vector<Port> ports_;
  std::vector<TxRequest> out_;
  uint64_t parent_changes_seen_ = 0;
  bool had_parent_ = false;
  bool in_holdover_ = false;
  int64_t holdover_since_ = 0;
  bool was_locked_ = false;
  TimeSource reference_ = TimeSource::kFreeRunning;
  Servo reference_servo_;
  int64_t reference_offset_ns_ = 0;
  UnicastServer unicast_;
  uint16_t signaling_sequence_ = 0;
  void update_clock_class(int64_t base_now);
  uint64_t rng_ = 0x853c49e6748fea9bull;
  uint64_t next_cookie_ = 1;
};

}  // namespace meridian::ptp
