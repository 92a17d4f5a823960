#include "ptp/node.h"

#include <cmath>

#include "ptp/clock.h"

namespace meridian::ptp {
namespace {

constexpr uint32_t kForeignMasterWindowIntervals = 4;  // FOREIGN_MASTER_TIME_WINDOW

bool listens_for_parent(PortState s) {
  return s == PortState::kListening || s == PortState::kUncalibrated || s == PortState::kSlave ||
         s == PortState::kPassive;
}
bool running(PortState s) {
  return s != PortState::kInitializing && s != PortState::kFaulty && s != PortState::kDisabled;
}

}  // namespace

PtpNode::PtpNode(const NodeConfig& config) : config_(config) {
  ports_.resize(config_.ports.size());
  for (size_t i = 0; i < ports_.size(); ++i) ports_[i].config = config_.ports[i];
  config_.defaults.number_ports = static_cast<uint16_t>(ports_.size());
  if (config_.defaults.slave_only) {
    config_.defaults.quality.clock_class = 255;  // §7.6.2.5
    config_.defaults.priority1 = 255;            // §7.6.2.3
  }
  become_grandmaster();
}

int64_t PtpNode::announce_interval_ns(const Port& p) const {
  return log_interval_ns(p.config.log_announce_interval);
}

int64_t PtpNode::receipt_timeout_ns(const Port& p) const {
  return announce_interval_ns(p) * p.config.announce_receipt_timeout;
}

void PtpNode::start(int64_t now_ns) {
  for (uint16_t i = 0; i < ports_.size(); ++i) set_state(static_cast<uint16_t>(i + 1), PortState::kListening, Decision::kNone, now_ns);
}

std::optional<uint16_t> PtpNode::slave_port() const {
  for (uint16_t i = 0; i < ports_.size(); ++i) {
    if (ports_[i].state == PortState::kSlave || ports_[i].state == PortState::kUncalibrated) return i + 1;
  }
  return std::nullopt;
}

void PtpNode::become_grandmaster() {
  const DefaultDataSet& d = config_.defaults;
  current_ = CurrentDataSet{};
  parent_.parent = PortIdentity{d.identity, 0};
  parent_.gm_identity = d.identity;
  parent_.gm_priority1 = d.priority1;
  parent_.gm_priority2 = d.priority2;
  parent_.gm_quality = d.quality;
  time_properties_ = config_.time_properties;
}

void PtpNode::set_state(uint16_t port, PortState s, Decision d, int64_t now_ns) {
  Port& p = ports_[port - 1];
  p.last_decision = d;
  if (p.state == s) return;
  // Peers can make states flip: keep the newest changes, not all of them.
  if (history_.size() >= 2 * kHistoryKept) history_.erase(history_.begin(), history_.begin() + kHistoryKept);
  history_.push_back({now_ns, port, p.state, s, d});
  p.state = s;
  if (s == PortState::kMaster) p.next_announce = now_ns;
  if (listens_for_parent(s)) p.announce_deadline = now_ns + receipt_timeout_ns(p);
}

void PtpNode::on_announce(uint16_t port, const Message& announce, int64_t now_ns) {
  if (port == 0 || port > ports_.size() || announce.header.domain != config_.defaults.domain) return;
  Port& p = ports_[port - 1];
  if (!running(p.state) || p.config.master_only) return;
  const int64_t window = announce_interval_ns(p) * kForeignMasterWindowIntervals;
  if (!p.foreign.add(announce, config_.defaults.identity, now_ns, window)) return;
  // A slave's timer waits for its parent only; other states for anyone.
  const bool slaved = p.state == PortState::kSlave || p.state == PortState::kUncalibrated;
  if (!slaved || announce.header.source == parent_.parent) p.announce_deadline = now_ns + receipt_timeout_ns(p);
  run_state_decision(now_ns);
}

std::vector<OutgoingMessage> PtpNode::tick(int64_t now_ns) {
  bool changed = false;
  for (uint16_t i = 0; i < ports_.size(); ++i) {
    Port& p = ports_[i];
    const auto port = static_cast<uint16_t>(i + 1);
    if (!running(p.state)) continue;
    if (p.foreign.expire(now_ns, receipt_timeout_ns(p))) changed = true;
    if (listens_for_parent(p.state) && now_ns >= p.announce_deadline) {
      // ANNOUNCE_RECEIPT_TIMEOUT_EXPIRES (Figure 30).
      p.announce_deadline = now_ns + receipt_timeout_ns(p);
      set_state(port, config_.defaults.slave_only ? PortState::kListening : PortState::kMaster, Decision::kNone, now_ns);
      changed = true;
    } else if (p.state == PortState::kPreMaster && now_ns >= p.qualification_deadline) {
      set_state(port, PortState::kMaster, p.last_decision, now_ns);
    }
  }
  if (changed) run_state_decision(now_ns);
  std::vector<OutgoingMessage> out;
  for (uint16_t i = 0; i < ports_.size(); ++i) {
    Port& p = ports_[i];
    if (p.state != PortState::kMaster || now_ns < p.next_announce) continue;
    out.push_back({static_cast<uint16_t>(i + 1), make_announce(static_cast<uint16_t>(i + 1), now_ns)});
    p.next_announce += announce_interval_ns(p);
    if (p.next_announce <= now_ns) p.next_announce = now_ns + announce_interval_ns(p);
  }
  return out;
}

void PtpNode::run_state_decision(int64_t now_ns) {
  const ClockIdentity& own = config_.defaults.identity;
  const ComparableDataSet d0 = from_default(config_.defaults, config_.local_priority);
  std::vector<std::optional<ComparableDataSet>> erbest(ports_.size());
  std::vector<const ForeignMasters::Record*> records(ports_.size(), nullptr);
  int ebest = -1;
  for (size_t i = 0; i < ports_.size(); ++i) {
    const Port& p = ports_[i];
    if (!running(p.state) || p.config.master_only) continue;
    const PortIdentity receiver{own, static_cast<uint16_t>(i + 1)};
    const int64_t window = announce_interval_ns(p) * kForeignMasterWindowIntervals;
    records[i] = p.foreign.best(config_.bmca, receiver, p.config.local_priority, config_.foreign_master_threshold,
                                now_ns, window);
    if (!records[i]) continue;
    erbest[i] = from_announce(records[i]->announce, receiver, p.config.local_priority);
    if (ebest < 0 || a_wins(compare(config_.bmca, *erbest[i], *erbest[static_cast<size_t>(ebest)]))) {
      ebest = static_cast<int>(i);
    }
  }
  // Decide every port first, then apply: S1 changes the data sets the
  // others' decisions were taken against.
  std::vector<Decision> decisions(ports_.size(), Decision::kNone);
  for (size_t i = 0; i < ports_.size(); ++i) {
    if (!running(ports_[i].state)) continue;
    DecisionInput in;
    in.kind = config_.bmca;
    in.d0 = d0;
    in.ebest = ebest >= 0 ? &*erbest[static_cast<size_t>(ebest)] : nullptr;
    in.ebest_on_this_port = ebest == static_cast<int>(i);
    in.erbest = erbest[i] ? &*erbest[i] : nullptr;
    in.state = ports_[i].state;
    in.slave_only = config_.defaults.slave_only;
    decisions[i] = decide(in);
  }
  const ForeignMasters::Record* best = ebest >= 0 ? records[static_cast<size_t>(ebest)] : nullptr;
  // S1 first: M3's qualification time depends on the stepsRemoved it sets.
  for (size_t i = 0; i < ports_.size(); ++i) {
    if (decisions[i] == Decision::kS1) apply(static_cast<uint16_t>(i + 1), decisions[i], best, now_ns);
  }
  for (size_t i = 0; i < ports_.size(); ++i) {
    if (decisions[i] != Decision::kS1) apply(static_cast<uint16_t>(i + 1), decisions[i], best, now_ns);
  }
}

void PtpNode::apply(uint16_t port, Decision d, const ForeignMasters::Record* ebest, int64_t now_ns) {
  Port& p = ports_[port - 1];
  switch (d) {
    case Decision::kNone:
      return;
    case Decision::kM1:
    case Decision::kM2:
      become_grandmaster();
      set_state(port, PortState::kMaster, d, now_ns);
      return;
    case Decision::kM3:
      if (p.state != PortState::kMaster && p.state != PortState::kPreMaster) {
        set_state(port, PortState::kPreMaster, d, now_ns);
        p.qualification_deadline = now_ns + announce_interval_ns(p) * (current_.steps_removed + 1);
      }
      return;
    case Decision::kP1:
    case Decision::kP2:
      set_state(port, PortState::kPassive, d, now_ns);
      return;
    case Decision::kListening:
      set_state(port, PortState::kListening, d, now_ns);
      return;
    case Decision::kS1: {
      const Message& a = ebest->announce;
      const bool new_parent = !(parent_.parent == a.header.source) ||
                              (p.state != PortState::kSlave && p.state != PortState::kUncalibrated);
      current_.steps_removed = static_cast<uint16_t>(a.announce.steps_removed + 1);
      parent_.parent = a.header.source;
      parent_.gm_identity = a.announce.gm_identity;
      parent_.gm_priority1 = a.announce.priority1;
      parent_.gm_priority2 = a.announce.priority2;
      parent_.gm_quality = a.announce.gm_quality;
      time_properties_.current_utc_offset = a.announce.current_utc_offset;
      time_properties_.flags = static_cast<uint8_t>(a.header.flags & 0x3f);
      time_properties_.time_source = a.announce.time_source;
      if (new_parent) {
        ++parent_changes_;
        set_state(port, PortState::kUncalibrated, d, now_ns);
        p.announce_deadline = now_ns + receipt_timeout_ns(p);
      }
      p.last_decision = d;
      return;
    }
  }
}

void PtpNode::set_synchronized(bool locked, int64_t now_ns) {
  const auto port = slave_port();
  if (!port) return;
  const PortState s = ports_[*port - 1].state;
  if (locked && s == PortState::kUncalibrated) set_state(*port, PortState::kSlave, Decision::kS1, now_ns);
  if (!locked && s == PortState::kSlave) set_state(*port, PortState::kUncalibrated, Decision::kS1, now_ns);
}

void PtpNode::set_defaults(const DefaultDataSet& d, int64_t now_ns) {
  const ClockIdentity identity = config_.defaults.identity;
  const uint16_t number_ports = config_.defaults.number_ports;
  const bool grandmaster = parent_.parent.clock == identity;
  config_.defaults = d;
  config_.defaults.identity = identity;
  config_.defaults.number_ports = number_ports;
  if (config_.defaults.slave_only) {
    config_.defaults.quality.clock_class = 255;  // §7.6.2.5
    config_.defaults.priority1 = 255;            // §7.6.2.3
  }
  if (grandmaster) become_grandmaster();
  run_state_decision(now_ns);
}

PortDataSet PtpNode::port_data_set(uint16_t port) const {
  const Port& p = ports_.at(port - 1);
  PortDataSet ds;
  ds.port = PortIdentity{config_.defaults.identity, port};
  ds.state = p.state;
  ds.log_min_delay_req_interval = p.config.log_min_delay_req_interval;
  ds.log_announce_interval = p.config.log_announce_interval;
  ds.announce_receipt_timeout = p.config.announce_receipt_timeout;
  ds.log_sync_interval = p.config.log_sync_interval;
  ds.delay_mechanism = static_cast<uint8_t>(p.config.delay_mechanism);
  return ds;
}

Message PtpNode::make_announce(uint16_t port, int64_t now_ns) {
  Port& p = ports_[port - 1];
  Message m = announce_template(port);
  m.header.sequence_id = p.announce_sequence++;
  m.timestamp = to_timestamp(now_ns);
  return m;
}

Message PtpNode::announce_template(uint16_t port) const {
  const Port& p = ports_[port - 1];
  Message m;
  m.header.type = MessageType::kAnnounce;
  m.header.major_sdo_id = config_.major_sdo_id;
  m.header.domain = config_.defaults.domain;
  m.header.flags = static_cast<uint16_t>(config_.announce_flags | time_properties_.flags);
  m.header.source = PortIdentity{config_.defaults.identity, port};
  m.header.log_interval = p.config.log_announce_interval;
  m.announce.current_utc_offset = time_properties_.current_utc_offset;
  m.announce.priority1 = parent_.gm_priority1;
  m.announce.gm_quality = parent_.gm_quality;
  m.announce.priority2 = parent_.gm_priority2;
  m.announce.gm_identity = parent_.gm_identity;
  m.announce.steps_removed = current_.steps_removed;
  m.announce.time_source = time_properties_.time_source;
  return m;
}

}  // namespace meridian::ptp
