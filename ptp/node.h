// One PTP instance (an ordinary or boundary clock) as pure logic: its data
// sets, a foreign master table and a port state machine per port, the state
// decision over all ports, and the Announce messages its master ports send.
// Time is the caller's (PTP nanoseconds); messages go in and out as decoded
// Message structs, so the simulator and the DPDK port drive the same code.
//
// Port states follow IEEE 1588-2019 §9.2.5 (Figure 30) as ptp4l runs them:
//   INITIALIZING -> LISTENING on start;
//   any state, on the decision:  M1/M2 -> MASTER at once, M3 -> PRE_MASTER
//     for (stepsRemoved + 1) announce intervals, then MASTER; P1/P2 ->
//     PASSIVE; S1 -> UNCALIBRATED (new parent) or stays SLAVE (same parent);
//   UNCALIBRATED -> SLAVE when the servo locks (set_synchronized);
//   LISTENING/UNCALIBRATED/SLAVE/PASSIVE, no Announce from a qualified
//     master for announceReceiptTimeout intervals -> MASTER (slave-only
//     clocks: LISTENING).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "ptp/bmca.h"
#include "ptp/message.h"

namespace meridian::ptp {

enum class DelayMechanism : uint8_t { kE2E = 1, kP2P = 2, kDisabled = 0xfe };

struct NodePortConfig {
  int8_t log_announce_interval = 1;
  uint8_t announce_receipt_timeout = 3;
  int8_t log_sync_interval = 0;
  int8_t log_min_delay_req_interval = 0;
  DelayMechanism delay_mechanism = DelayMechanism::kE2E;
  uint8_t local_priority = 128;  // G.8275.x
  bool master_only = false;      // G.8275.x notSlave: never a slave on this port
};

struct NodeConfig {
  DefaultDataSet defaults;       // identity, priorities, quality, domain, slave_only (forces class and priority1 255)
  TimePropertiesDataSet time_properties;  // what this clock announces as grandmaster
  BmcaKind bmca = BmcaKind::kDefault;
  uint8_t local_priority = 128;  // G.8275.x defaultDS.localPriority
  uint32_t foreign_master_threshold = 2;
  std::vector<NodePortConfig> ports{1};
  uint8_t major_sdo_id = 0;
  uint16_t announce_flags = 0;   // profile flags carried in every Announce
};

struct StateChange {
  int64_t time_ns;
  uint16_t port;  // 1-based portNumber
  PortState from, to;
  Decision decision;
};

struct OutgoingMessage {
  uint16_t port;  // 1-based portNumber
  Message message;
};

class PtpNode {
 public:
  explicit PtpNode(const NodeConfig& config);

  /// INITIALIZING -> LISTENING on every port; timers start at `now_ns`.
  void start(int64_t now_ns);
  /// An Announce received on `port` (1-based). Other domains are ignored.
  void on_announce(uint16_t port, const Message& announce, int64_t now_ns);
  /// Runs the timers; returns the Announces due on master ports.
  std::vector<OutgoingMessage> tick(int64_t now_ns);
  /// The slave port's servo locked (UNCALIBRATED -> SLAVE) or lost lock
  /// (SLAVE -> UNCALIBRATED).
  void set_synchronized(bool locked, int64_t now_ns);

  /// Changes priorities or quality at run time (management SET, config,
  /// holdover classes) and re-runs the state decision.
  void set_defaults(const DefaultDataSet& d, int64_t now_ns);

  PortState state(uint16_t port) const { return ports_.at(port - 1).state; }
  /// The port in SLAVE or UNCALIBRATED, if any (1-based).
  std::optional<uint16_t> slave_port() const;
  const DefaultDataSet& defaults() const { return config_.defaults; }
  const CurrentDataSet& current() const { return current_; }
  const ParentDataSet& parent() const { return parent_; }
  const TimePropertiesDataSet& time_properties() const { return time_properties_; }
  PortDataSet port_data_set(uint16_t port) const;
  /// The newest state changes, oldest first (at least the last kHistoryKept).
  const std::vector<StateChange>& history() const { return history_; }
  static constexpr size_t kHistoryKept = 256;
  /// Bumped whenever the slave port's parent changes (the servo restarts).
  uint64_t parent_changes() const { return parent_changes_; }
  const ForeignMasters& foreign_masters(uint16_t port) const { return ports_.at(port - 1).foreign; }
  /// An Announce as `port` sends it now (parent data set, stepsRemoved,
  /// time properties); sequenceId and originTimestamp are the caller's.
  Message announce_template(uint16_t port) const;

 private:
  struct Port {
    NodePortConfig config;
    PortState state = PortState::kInitializing;
    ForeignMasters foreign;
    int64_t announce_deadline = 0;      // receipt timeout
    int64_t qualification_deadline = 0; // PRE_MASTER -> MASTER
    int64_t next_announce = 0;
    uint16_t announce_sequence = 0;
    Decision last_decision = Decision::kNone;
  };
  int64_t announce_interval_ns(const Port& p) const;
  int64_t receipt_timeout_ns(const Port& p) const;
  void run_state_decision(int64_t now_ns);
  void apply(uint16_t port, Decision d, const ForeignMasters::Record* ebest, int64_t now_ns);
  void set_state(uint16_t port, PortState s, Decision d, int64_t now_ns);
  void become_grandmaster();
  Message make_announce(uint16_t port, int64_t now_ns);

  NodeConfig config_;
  std::vector<Port> ports_;
  CurrentDataSet current_;
  ParentDataSet parent_;
  TimePropertiesDataSet time_properties_;
  std::vector<StateChange> history_;
  uint64_t parent_changes_ = 0;
};

}  // namespace meridian::ptp
