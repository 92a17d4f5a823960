#include "ptp/instance.h"

#include <algorithm>
#include <cmath>

namespace meridian::ptp {
namespace {

constexpr uint64_t kCookieTag = 1ull << 63;
constexpr uint64_t kCookieUnicast = 1ull << 62;  // the low 24 bits name the unicast client
uint64_t make_cookie(uint16_t port, MessageType type, uint16_t sequence, uint64_t serial) {
  return kCookieTag | ((uint64_t{port} & 0x3fff) << 44) | (uint64_t{static_cast<uint8_t>(type)} << 40) |
         (uint64_t{sequence} << 24) | (serial & 0xffffff);
}
uint16_t cookie_port(uint64_t c) { return static_cast<uint16_t>((c >> 44) & 0x3fff); }
MessageType cookie_type(uint64_t c) { return static_cast<MessageType>((c >> 40) & 0xf); }
uint16_t cookie_sequence(uint64_t c) { return static_cast<uint16_t>((c >> 24) & 0xffff); }

int64_t correction_ns(int64_t scaled) { return scaled / 65536; }
bool slaved(PortState s) { return s == PortState::kSlave || s == PortState::kUncalibrated; }
bool running(PortState s) {
  return s != PortState::kInitializing && s != PortState::kFaulty && s != PortState::kDisabled;
}
bool locked(ServoState s) { return s == ServoState::kLocked || s == ServoState::kLockedStable; }

}  // namespace

const char* rx_drop_name(RxDrop d) {
  switch (d) {
#define MERIDIAN_PTP_RXD_NAME(e, n, desc) \
  case RxDrop::e:                         \
    return n;
    MERIDIAN_PTP_RX_DROPS(MERIDIAN_PTP_RXD_NAME)
#undef MERIDIAN_PTP_RXD_NAME
    case RxDrop::kCount:
      break;
  }
  return "unknown";
}

namespace {

// The reference servo sees the host clock through a (TSC, realtime) pair:
// tens of ns of noise, but a clock its time daemon steers (NTP slews change
// its rate by ppm within a minute). The sync servo's wander, made for a free
// crystal, would average over tens of seconds and lag such a clock by up to
// a µs; this one follows it (docs/ptp.md, "Time").
constexpr double kReferenceWanderPpb2PerS = 100;

ServoConfig reference_servo_config(ServoConfig servo) {
  servo.wander_ppb2_per_s = std::max(servo.wander_ppb2_per_s, kReferenceWanderPpb2PerS);
  servo.hardware_timestamps = true;  // linuxptp PI: phc2sys's gains for a precise reading
  return servo;
}

}  // namespace

PtpInstance::PtpInstance(const InstanceConfig& config, PtpClock& clock)
    : config_(config),
      clock_(clock),
      node_(config.node),
      sync_(clock, config.sync),
      ports_(config.node.ports.size()),
      reference_servo_(reference_servo_config(config.sync.servo), clock.frequency_ppb()),
      unicast_(config.unicast) {
  for (size_t i = 0; i < ports_.size() && i < config.unicast_masters.size(); ++i) {
    if (config.unicast_masters[i].empty()) continue;
    UnicastRequestPolicy policy = config.unicast_request;
    const NodePortConfig& np = config.node.ports[i];
    policy.log_announce = np.log_announce_interval;
    policy.log_sync = np.log_sync_interval;
    policy.log_delay_resp = np.log_min_delay_req_interval;
    ports_[i].requester = std::make_unique<UnicastRequester>(config.unicast_masters[i], policy);
    ports_[i].master_identity.resize(config.unicast_masters[i].size());
  }
}

int64_t PtpInstance::interval_ns(int8_t log) const {
  return log_interval_ns(std::clamp<int>(log, -7, 7));
}

// Delay_Req spacing: uniform in [0.5, 1.5) intervals, so the mean is the
// interval and slaves sharing a master do not fall into step.
int64_t PtpInstance::jitter(int64_t interval) {
  rng_ = rng_ * 6364136223846793005ull + 1442695040888963407ull;
  const double u = static_cast<double>(rng_ >> 11) * 0x1.0p-53;
  return static_cast<int64_t>(static_cast<double>(interval) * (0.5 + u));
}

void PtpInstance::start(int64_t base_now) {
  node_.start(base_now);
  for (auto& p : ports_) {
    p.next_sync = base_now;
    p.next_pdelay = base_now;
    p.link_delays.assign(std::max<uint16_t>(1, config_.peer_delay_window), 0);
    p.link_next = p.link_filled = 0;
  }
  update_clock_class(base_now);
}

Header PtpInstance::header_for(uint16_t port, MessageType type, uint16_t sequence, int8_t log_interval) const {
  Header h;
  h.type = type;
  h.major_sdo_id = config_.node.major_sdo_id;
  h.domain = node_.defaults().domain;
  h.source = PortIdentity{node_.defaults().identity, port};
  h.sequence_id = sequence;
  h.log_interval = log_interval;
  return h;
}

TxRequest& PtpInstance::send(uint16_t port, Message m, bool event, const PeerAddress& to, uint64_t cookie,
                             bool one_step) {
  if (to.unicast) m.header.flags |= kFlagUnicast;
  ++ports_[port - 1].counters.tx[static_cast<uint8_t>(m.header.type) & 0xf];
  out_.push_back(TxRequest{port, std::move(m), to, event, cookie, one_step, 0});
  return out_.back();
}

const PortCorrections& PtpInstance::corrections(uint16_t port) const {
  static const PortCorrections kNone;
  return port >= 1 && port <= config_.corrections.size() ? config_.corrections[port - 1] : kNone;
}

void PtpInstance::stamp_one_step(TxRequest& tx, int64_t tx_base) const {
  if (!tx.one_step) return;
  const int64_t t = clock_.time_at(tx_base + corrections(tx.port).egress_latency_ns);
  if (tx.message.header.type == MessageType::kSync) {
    tx.message.timestamp = to_timestamp(t);
  } else if (tx.message.header.type == MessageType::kPdelayResp) {
    // The request's correctionField is the peer's: add modulo 2^64 (as the
    // field itself wraps) rather than overflow a signed sum.
    const uint64_t sum = static_cast<uint64_t>(tx.message.header.correction) +
                         static_cast<uint64_t>(t - tx.request_receipt_ns) * 65536u;
    tx.message.header.correction = static_cast<int64_t>(sum);
    tx.message.timestamp = Timestamp{};
  }
}

std::vector<TxRequest> PtpInstance::take_outgoing() {
  std::vector<TxRequest> out;
  out.swap(out_);
  return out;
}

bool PtpInstance::from_parent(const Message& m) const { return m.header.source == node_.parent().parent; }

void PtpInstance::receive(uint16_t port, const Message& m, int64_t rx_base, const PeerAddress& from,
                          int64_t base_now) {
  if (port == 0 || port > ports_.size()) return;
  Port& p = ports_[port - 1];
  ++p.counters.rx[static_cast<uint8_t>(m.header.type) & 0xf];
  if (m.header.domain != node_.defaults().domain) return drop(port, RxDrop::kOtherDomain);
  if (!running(node_.state(port))) return drop(port, RxDrop::kPortNotRunning);
  if (m.timestamp.seconds > kMaxTimestampSeconds) return drop(port, RxDrop::kTimestampRange);
  if (p.requester && !(m.header.flags & kFlagUnicast)) {
    // A unicast client takes its master's service as granted, not the
    // multicast a master may send besides (two streams of one clock).
    switch (m.header.type) {
      case MessageType::kAnnounce:
      case MessageType::kSync:
      case MessageType::kFollowUp:
      case MessageType::kDelayResp:
        return drop(port, RxDrop::kNotUnicast);
      default:
        break;
    }
  }
  switch (m.header.type) {
    case MessageType::kAnnounce:
      if (p.requester) {
        if (const auto i = p.requester->index_of(from)) p.master_identity[*i] = m.header.source;
      }
      node_.on_announce(port, m, base_now);
      follow_state(base_now);
      return;
    case MessageType::kSync: return on_sync(port, m, rx_base, base_now);
    case MessageType::kFollowUp: return on_follow_up(port, m, base_now);
    case MessageType::kDelayReq: return on_delay_req(port, m, rx_base, from);
    case MessageType::kDelayResp: return on_delay_resp(port, m);
    case MessageType::kPdelayReq:
    case MessageType::kPdelayResp:
    case MessageType::kPdelayRespFollowUp:
      // As ptp4l: peer delay messages on an end-to-end port are not answered
      // (each request would cost two frames and a stamp).
      if (config_.node.ports[port - 1].delay_mechanism != DelayMechanism::kP2P) {
        return drop(port, RxDrop::kWrongDelayMechanism);
      }
      if (m.header.type == MessageType::kPdelayReq) return on_pdelay_req(port, m, rx_base, from);
      if (m.header.type == MessageType::kPdelayResp) return on_pdelay_resp(port, m, rx_base);
      return on_pdelay_resp_follow_up(port, m);
    case MessageType::kManagement: return on_management(port, m, from);
    case MessageType::kSignaling: return on_signaling(port, m, from, base_now);
  }
}

// ---- slave side --------------------------------------------------------------

void PtpInstance::on_sync(uint16_t port, const Message& m, int64_t rx_base, int64_t base_now) {
  if (!slaved(node_.state(port))) return drop(port, RxDrop::kNotSlave);
  if (!from_parent(m)) return drop(port, RxDrop::kNotFromParent);
  Port& p = ports_[port - 1];
  const int64_t rx = rx_base - corrections(port).ingress_latency_ns;
  const int8_t log = m.header.log_interval == kNoInterval ? config_.node.ports[port - 1].log_sync_interval
                                                          : m.header.log_interval;
  if (!(m.header.flags & kFlagTwoStep)) {
    p.sync = PendingSync{true, m.header.sequence_id, rx, 0, log};
    complete_sync(port, to_ns(m.timestamp), correction_ns(m.header.correction), base_now);
    return;
  }
  p.sync = PendingSync{true, m.header.sequence_id, rx, correction_ns(m.header.correction), log};
  // The Follow_Up may have overtaken its Sync.
  if (p.follow_up.valid && p.follow_up.sequence == m.header.sequence_id) {
    p.follow_up.valid = false;
    complete_sync(port, p.follow_up.origin_ns, p.sync.correction_ns + p.follow_up.correction_ns, base_now);
  }
}

void PtpInstance::on_follow_up(uint16_t port, const Message& m, int64_t base_now) {
  if (!slaved(node_.state(port))) return drop(port, RxDrop::kNotSlave);
  if (!from_parent(m)) return drop(port, RxDrop::kNotFromParent);
  Port& p = ports_[port - 1];
  if (p.sync.valid && p.sync.sequence == m.header.sequence_id) {
    complete_sync(port, to_ns(m.timestamp), p.sync.correction_ns + correction_ns(m.header.correction), base_now);
    return;
  }
  p.follow_up = PendingFollowUp{true, m.header.sequence_id, to_ns(m.timestamp), correction_ns(m.header.correction)};
}

void PtpInstance::complete_sync(uint16_t port, int64_t origin_ns, int64_t corr_ns, int64_t base_now) {
  Port& p = ports_[port - 1];
  p.sync.valid = false;
  if (config_.node.ports[port - 1].delay_mechanism == DelayMechanism::kP2P) sync_.on_peer_delay(p.peer_delay);
  const double interval_s = std::ldexp(1.0, std::clamp<int>(p.sync.log_interval, -7, 7));
  sync_.on_sync(origin_ns, p.sync.rx_base, corr_ns + corrections(port).delay_asymmetry_ns, interval_s, base_now);
  if (in_holdover_) {
    in_holdover_ = false;
    update_clock_class(base_now);
  }
  const bool now_locked = locked(sync_.servo().state());
  if (now_locked != was_locked_) {
    was_locked_ = now_locked;
    node_.set_synchronized(now_locked, base_now);
    update_clock_class(base_now);
  }
  // E2E: a Delay_Req follows this Sync when one is due, so its exchange
  // pairs with a Sync taken moments before (see DelayMeasurement).
  if (config_.node.ports[port - 1].delay_mechanism == DelayMechanism::kE2E && base_now >= p.next_delay_req) {
    const int8_t log = config_.node.ports[port - 1].log_min_delay_req_interval;
    p.next_delay_req = base_now + jitter(interval_ns(log));
    p.delay = PendingDelay{true, false, ++p.delay_sequence, 0, 0};
    Message req;
    req.header = header_for(port, MessageType::kDelayReq, p.delay.sequence, kNoInterval);
    req.timestamp = to_timestamp(clock_.time_at(base_now));
    send(port, std::move(req), true, delay_req_destination(p),
         make_cookie(port, MessageType::kDelayReq, p.delay.sequence, next_cookie_++));
  }
}

void PtpInstance::on_delay_resp(uint16_t port, const Message& m) {
  if (!slaved(node_.state(port))) return drop(port, RxDrop::kNotSlave);
  if (!from_parent(m)) return drop(port, RxDrop::kNotFromParent);
  if (!(m.requesting == PortIdentity{node_.defaults().identity, port})) return drop(port, RxDrop::kNotForUs);
  Port& p = ports_[port - 1];
  if (!p.delay.sent || !p.delay.stamped || m.header.sequence_id != p.delay.sequence) return drop(port, RxDrop::kUnmatched);
  p.delay.sent = false;
  sync_.on_delay(p.delay.t3, p.delay.base_t3, to_ns(m.timestamp),
                 correction_ns(m.header.correction) - corrections(port).delay_asymmetry_ns);
}

// ---- master side -------------------------------------------------------------

void PtpInstance::on_delay_req(uint16_t port, const Message& m, int64_t rx_base, const PeerAddress& from) {
  if (node_.state(port) != PortState::kMaster) return drop(port, RxDrop::kNotMaster);
  Message resp;
  resp.header = header_for(port, MessageType::kDelayResp, m.header.sequence_id,
                           config_.node.ports[port - 1].log_min_delay_req_interval);
  resp.header.correction = m.header.correction;
  resp.timestamp = to_timestamp(rx_time(port, rx_base));
  resp.requesting = m.header.source;
  send(port, std::move(resp), false, (m.header.flags & kFlagUnicast) ? from : PeerAddress{});
}

// ---- peer delay (P2P) ----------------------------------------------------------

void PtpInstance::on_pdelay_req(uint16_t port, const Message& m, int64_t rx_base, const PeerAddress& from) {
  Port& p = ports_[port - 1];
  Message resp;
  resp.header = header_for(port, MessageType::kPdelayResp, m.header.sequence_id, kNoInterval);
  resp.requesting = m.header.source;
  resp.timestamp = to_timestamp(rx_time(port, rx_base));  // requestReceiptTimestamp t2
  if (config_.two_step) {
    resp.header.flags |= kFlagTwoStep;
    Message fup;
    fup.header = header_for(port, MessageType::kPdelayRespFollowUp, m.header.sequence_id, kNoInterval);
    fup.header.correction = m.header.correction;
    fup.requesting = m.header.source;
    const uint64_t cookie = make_cookie(port, MessageType::kPdelayResp, m.header.sequence_id, next_cookie_++);
    p.pdelay_followups.emplace_back(cookie, std::move(fup));
    if (p.pdelay_followups.size() > 8) p.pdelay_followups.erase(p.pdelay_followups.begin());
    send(port, std::move(resp), true, (m.header.flags & kFlagUnicast) ? from : PeerAddress{}, cookie);
  } else {
    resp.header.correction = m.header.correction;
    const int64_t t2 = to_ns(resp.timestamp);
    TxRequest& tx = send(port, std::move(resp), true, (m.header.flags & kFlagUnicast) ? from : PeerAddress{}, 0, true);
    tx.request_receipt_ns = t2;
  }
}

void PtpInstance::on_pdelay_resp(uint16_t port, const Message& m, int64_t rx_base) {
  Port& p = ports_[port - 1];
  if (!p.pdelay.sent || !p.pdelay.stamped || m.header.sequence_id != p.pdelay.sequence ||
      !(m.requesting == PortIdentity{node_.defaults().identity, port})) {
    return drop(port, RxDrop::kUnmatched);
  }
  p.pdelay.t2 = to_ns(m.timestamp);
  p.pdelay.t4 = rx_time(port, rx_base);
  p.pdelay.resp_correction_ns = correction_ns(m.header.correction);
  p.pdelay.responder = m.header.source;
  p.pdelay.have_resp = true;
  if (!(m.header.flags & kFlagTwoStep)) {
    // One-step: the turnaround sits in the correctionField and
    // requestReceiptTimestamp is zero, so t3 - t2 is zero here.
    complete_pdelay(port, p.pdelay.t2, 0);
  }
}

void PtpInstance::on_pdelay_resp_follow_up(uint16_t port, const Message& m) {
  Port& p = ports_[port - 1];
  if (!p.pdelay.have_resp || m.header.sequence_id != p.pdelay.sequence || !(m.header.source == p.pdelay.responder)) {
    return drop(port, RxDrop::kUnmatched);
  }
  complete_pdelay(port, to_ns(m.timestamp), correction_ns(m.header.correction));
}

void PtpInstance::complete_pdelay(uint16_t port, int64_t t3, int64_t fup_correction_ns) {
  Port& p = ports_[port - 1];
  p.pdelay.sent = p.pdelay.have_resp = false;
  // §11.4.3: [(t4 - t1) - (t3 - t2) - corrections] / 2
  const int64_t delay =
      ((p.pdelay.t4 - p.pdelay.t1) - (t3 - p.pdelay.t2) - p.pdelay.resp_correction_ns - fup_correction_ns) / 2;
  // t2, t3 and the corrections are the responder's: a link delay outside
  // (-1 ms, 1 s) is no measurement (software stamps may dip a little below 0).
  if (delay <= -1'000'000 || delay >= 1'000'000'000) return drop(port, RxDrop::kImplausibleDelay);
  p.link_delays[p.link_next] = delay;
  p.link_next = (p.link_next + 1) % p.link_delays.size();
  p.link_filled = std::min(p.link_filled + 1, p.link_delays.size());
  std::vector<int64_t> window(p.link_delays.begin(), p.link_delays.begin() + static_cast<ptrdiff_t>(p.link_filled));
  std::nth_element(window.begin(), window.begin() + static_cast<ptrdiff_t>(window.size() / 2), window.end());
  p.peer_delay = window[window.size() / 2];
}

// ---- management (pmc) ------------------------------------------------------------

void PtpInstance::on_management(uint16_t port, const Message& m, const PeerAddress& from) {
  const ManagementBody& req = m.management;
  static constexpr ClockIdentity kAllClocks{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  const bool clock_match = req.target.clock == kAllClocks || req.target.clock == node_.defaults().identity;
  const bool port_match = req.target.port == 0xffff || req.target.port == port || req.target.port == 0;
  if (!clock_match || !port_match) return drop(port, RxDrop::kNotForUs);
  if (req.error || req.action == ManagementAction::kResponse || req.action == ManagementAction::kAcknowledge) return;
  Message resp;
  resp.header = header_for(port, MessageType::kManagement, m.header.sequence_id, kNoInterval);
  resp.management.target = m.header.source;
  resp.management.starting_boundary_hops = static_cast<uint8_t>(req.starting_boundary_hops - req.boundary_hops);
  resp.management.boundary_hops = resp.management.starting_boundary_hops;
  resp.management.id = req.id;
  resp.management.action = req.action == ManagementAction::kGet ? ManagementAction::kResponse : ManagementAction::kAcknowledge;
  if (req.action != ManagementAction::kGet) {
    resp.management.error = true;
    resp.management.error_id = kMgmtErrorNotSetable;
    resp.management.action = ManagementAction::kResponse;
  } else {
    switch (static_cast<ManagementId>(req.id)) {
      case ManagementId::kDefaultDataSet: resp.management.data = encode_data(node_.defaults()); break;
      case ManagementId::kCurrentDataSet: {
        CurrentDataSet c = node_.current();
        if (node_.slave_port()) {
          c.offset_from_master = sync_.offset_ns() * 65536;
          c.mean_path_delay = sync_.mean_path_delay_ns() * 65536;
        }
        resp.management.data = encode_data(c);
        break;
      }
      case ManagementId::kParentDataSet: resp.management.data = encode_data(node_.parent()); break;
      case ManagementId::kTimePropertiesDataSet: resp.management.data = encode_data(node_.time_properties()); break;
      case ManagementId::kPortDataSet: {
        PortDataSet pds = node_.port_data_set(port);
        pds.peer_mean_path_delay = ports_[port - 1].peer_delay * 65536;
        resp.management.data = encode_data(pds);
        break;
      }
      default:
        resp.management.error = true;
        resp.management.error_id = kMgmtErrorNoSuchId;
        break;
    }
  }
  send(port, std::move(resp), false, (m.header.flags & kFlagUnicast) ? from : PeerAddress{});
}

// ---- unicast negotiation (server) ------------------------------------------------

void PtpInstance::on_signaling(uint16_t port, const Message& m, const PeerAddress& from, int64_t base_now) {
  Port& p = ports_[port - 1];
  if (p.requester && from.unicast && p.requester->index_of(from)) {
    // A master answering this port as a client: GRANTs, CANCELs.
    if (auto acks = p.requester->on_signaling(m, from, base_now)) {
      Message r;
      r.header = header_for(port, MessageType::kSignaling, signaling_sequence_++, kNoInterval);
      r.target = m.header.source;
      r.unicast = std::move(acks->tlvs);
      send(port, std::move(r), false, p.requester->masters()[acks->master].address);
    }
    return;
  }
  if (!config_.unicast_server || !from.unicast) return drop(port, RxDrop::kUnsupported);
  auto reply = unicast_.on_signaling(port, m, from, base_now);
  if (!reply) return;
  Message r = std::move(*reply);
  const PortIdentity target = r.target;
  auto tlvs = std::move(r.unicast);
  r.header = header_for(port, MessageType::kSignaling, signaling_sequence_++, kNoInterval);
  r.target = target;
  r.unicast = std::move(tlvs);
  send(port, std::move(r), false, from);
}

void PtpInstance::serve_unicast(uint32_t index, UnicastKind kind, int64_t base_now) {
  UnicastClient& c = unicast_.client(index);
  if (node_.state(c.port) != PortState::kMaster) return;
  UnicastGrant& g = c.grants[static_cast<size_t>(kind)];
  if (kind == UnicastKind::kAnnounce) {
    Message a = node_.announce_template(c.port);
    a.header.sequence_id = g.sequence++;
    a.header.log_interval = g.log_period;
    a.timestamp = to_timestamp(clock_.time_at(base_now));
    send(c.port, std::move(a), false, c.address);
    return;
  }
  Message sync;
  sync.header = header_for(c.port, MessageType::kSync, g.sequence++, g.log_period);
  if (config_.two_step) {
    sync.header.flags |= kFlagTwoStep;
    const uint64_t cookie = make_cookie(c.port, MessageType::kSync, sync.header.sequence_id, index) | kCookieUnicast;
    send(c.port, std::move(sync), true, c.address, cookie);
  } else {
    sync.timestamp = to_timestamp(clock_.time_at(base_now));
    send(c.port, std::move(sync), true, c.address, 0, true);
  }
}

// ---- unicast negotiation (client) ------------------------------------------------

namespace {
// targetPortIdentity of all ones: whichever port receives it (§13.12.1).
const PortIdentity kAnyPort{ClockIdentity{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0xffff};
}  // namespace

void PtpInstance::negotiate(uint16_t port, int64_t base_now) {
  Port& p = ports_[port - 1];
  std::optional<size_t> parent;
  if (node_.slave_port() == port) {
    for (size_t i = 0; i < p.master_identity.size(); ++i) {
      if (p.master_identity[i] == node_.parent().parent) parent = i;
    }
  }
  p.requester->select(parent, base_now);
  for (auto& out : p.requester->poll(base_now)) {
    Message r;
    r.header = header_for(port, MessageType::kSignaling, signaling_sequence_++, kNoInterval);
    r.target = p.master_identity[out.master];
    if (r.target == PortIdentity{}) r.target = kAnyPort;  // not heard from yet
    r.unicast = std::move(out.tlvs);
    send(port, std::move(r), false, p.requester->masters()[out.master].address);
  }
}

PeerAddress PtpInstance::delay_req_destination(const Port& p) const {
  if (p.requester && p.requester->selected()) return p.requester->masters()[*p.requester->selected()].address;
  return PeerAddress{};
}

// ---- timers, transmit times, state ------------------------------------------------

void PtpInstance::tick(int64_t base_now) {
  auto announces = node_.tick(base_now);
  for (auto& a : announces) {
    a.message.timestamp = to_timestamp(clock_.time_at(base_now));
    send(a.port, std::move(a.message), false, PeerAddress{});
  }
  follow_state(base_now);
  if (config_.unicast_server) {
    unicast_.poll(base_now, [&](uint32_t client, UnicastKind kind) { serve_unicast(client, kind, base_now); });
  }
  for (uint16_t i = 0; i < ports_.size(); ++i) {
    if (ports_[i].requester) negotiate(static_cast<uint16_t>(i + 1), base_now);
  }
  for (uint16_t i = 0; i < ports_.size(); ++i) {
    const auto port = static_cast<uint16_t>(i + 1);
    Port& p = ports_[i];
    const NodePortConfig& pc = config_.node.ports[i];
    const PortState state = node_.state(port);
    if (state == PortState::kMaster && base_now >= p.next_sync) {
      p.next_sync += interval_ns(pc.log_sync_interval);
      if (p.next_sync <= base_now) p.next_sync = base_now + interval_ns(pc.log_sync_interval);
      Message sync;
      sync.header = header_for(port, MessageType::kSync, ++p.sync_sequence, pc.log_sync_interval);
      if (config_.two_step) {
        sync.header.flags |= kFlagTwoStep;
        send(port, std::move(sync), true, PeerAddress{},
             make_cookie(port, MessageType::kSync, p.sync_sequence, next_cookie_++));
      } else {
        sync.timestamp = to_timestamp(clock_.time_at(base_now));
        send(port, std::move(sync), true, PeerAddress{}, 0, true);
      }
    }
    if (pc.delay_mechanism == DelayMechanism::kP2P && running(state) && base_now >= p.next_pdelay) {
      p.next_pdelay = base_now + jitter(interval_ns(pc.log_min_delay_req_interval));
      p.pdelay = PendingPdelay{};
      p.pdelay.sent = true;
      p.pdelay.sequence = ++p.pdelay_sequence;
      Message req;
      req.header = header_for(port, MessageType::kPdelayReq, p.pdelay.sequence, kNoInterval);
      send(port, std::move(req), true, PeerAddress{},
           make_cookie(port, MessageType::kPdelayReq, p.pdelay.sequence, next_cookie_++));
    }
  }
}

void PtpInstance::tx_done(uint64_t cookie, int64_t tx_base, int64_t base_now) {
  (void)base_now;
  if (!(cookie & kCookieTag)) return;
  const uint16_t port = cookie_port(cookie);
  if (port == 0 || port > ports_.size()) return;
  Port& p = ports_[port - 1];
  const int64_t t = clock_.time_at(tx_base + corrections(port).egress_latency_ns);
  const uint16_t seq = cookie_sequence(cookie);
  switch (cookie_type(cookie)) {
    case MessageType::kSync: {
      Message fup;
      if (cookie & kCookieUnicast) {
        const uint32_t index = static_cast<uint32_t>(cookie & 0xffffff);
        if (index >= unicast_.size()) return;
        const UnicastClient& c = unicast_.client(index);
        fup.header = header_for(port, MessageType::kFollowUp, seq,
                                c.grants[static_cast<size_t>(UnicastKind::kSync)].log_period);
        fup.timestamp = to_timestamp(t);
        send(port, std::move(fup), false, c.address);
        return;
      }
      fup.header = header_for(port, MessageType::kFollowUp, seq, config_.node.ports[port - 1].log_sync_interval);
      fup.timestamp = to_timestamp(t);
      send(port, std::move(fup), false, PeerAddress{});
      return;
    }
    case MessageType::kDelayReq:
      if (p.delay.sent && p.delay.sequence == seq) {
        p.delay.t3 = t;
        p.delay.base_t3 = tx_base + corrections(port).egress_latency_ns;
        p.delay.stamped = true;
      }
      return;
    case MessageType::kPdelayReq:
      if (p.pdelay.sent && p.pdelay.sequence == seq) {
        p.pdelay.t1 = t;
        p.pdelay.stamped = true;
      }
      return;
    case MessageType::kPdelayResp: {
      auto it = std::find_if(p.pdelay_followups.begin(), p.pdelay_followups.end(),
                             [&](const auto& e) { return e.first == cookie; });
      if (it == p.pdelay_followups.end()) return;
      Message fup = std::move(it->second);
      p.pdelay_followups.erase(it);
      fup.timestamp = to_timestamp(t);  // responseOriginTimestamp t3
      send(port, std::move(fup), false, PeerAddress{});
      return;
    }
    default:
      return;
  }
}

// Follows the node's decisions: a new parent restarts the synchronizer;
// no parent any more (the slave port timed out or went master) is holdover.
void PtpInstance::follow_state(int64_t base_now) {
  if (node_.parent_changes() != parent_changes_seen_) {
    parent_changes_seen_ = node_.parent_changes();
    sync_.reset();
    was_locked_ = false;
    for (auto& p : ports_) {
      p.sync = PendingSync{};
      p.follow_up = PendingFollowUp{};
      p.delay = PendingDelay{};
    }
  }
  const bool has_parent = node_.slave_port().has_value();
  if (had_parent_ && !has_parent && !in_holdover_) {
    if (was_locked_ || sync_.servo().state() == ServoState::kLocked || sync_.servo().state() == ServoState::kLockedStable) {
      sync_.holdover(base_now);
      in_holdover_ = true;
      holdover_since_ = base_now;
    }
    was_locked_ = false;
  }
  had_parent_ = has_parent;
  update_clock_class(base_now);
}

void PtpInstance::reference_sample(int64_t offset_ns, int64_t base, double interval_s) {
  if (!config_.has_reference || node_.slave_port()) return;
  reference_offset_ns_ = offset_ns;
  if (reference_ == TimeSource::kHoldover) reference_servo_.reset(clock_.frequency_ppb());
  const ServoAction a = reference_servo_.sample(offset_ns, clock_.time_at(base), interval_s);
  if (a.set_frequency) clock_.set_frequency(base, a.frequency_ppb);
  if (a.step) clock_.step(base, a.step_ns);
  reference_ = locked(a.state) ? TimeSource::kLocked : TimeSource::kFreeRunning;
  update_clock_class(base);
}

void PtpInstance::reference_lost(int64_t base_now) {
  if (reference_ != TimeSource::kLocked) {
    reference_ = TimeSource::kFreeRunning;
  } else {
    const ServoAction a = reference_servo_.enter_holdover();
    clock_.set_frequency(base_now, a.frequency_ppb);
    reference_ = TimeSource::kHoldover;
    holdover_since_ = base_now;
  }
  update_clock_class(base_now);
}

void PtpInstance::update_clock_class(int64_t base_now) {
  const DefaultDataSet& d = node_.defaults();
  if (d.slave_only) return;  // always 255
  const ClockRole role = config_.has_reference ? ClockRole::kGrandmaster : ClockRole::kBoundary;
  TimeSource source = TimeSource::kFreeRunning;
  if (role == ClockRole::kGrandmaster) {
    source = reference_;
  } else if (in_holdover_) {
    source = TimeSource::kHoldover;
  } else if (was_locked_) {
    source = TimeSource::kLocked;
  }
  const double held_s = static_cast<double>(base_now - holdover_since_) / 1e9;
  const Servo& held = role == ClockRole::kGrandmaster ? reference_servo_ : sync_.servo();
  const double bound = source == TimeSource::kHoldover ? held.holdover_error_bound_ns(held_s) : 0.0;
  // Free-running clocks, and boundary clocks locked to a parent, announce
  // their configured class; the rest comes from the holdover table.
  uint8_t cls = announced_clock_class(role, source, bound, config_.holdover);
  if (source == TimeSource::kFreeRunning || (role == ClockRole::kBoundary && source == TimeSource::kLocked)) {
    cls = config_.node.defaults.quality.clock_class;
  }
  if (cls == d.quality.clock_class) return;
  DefaultDataSet next = d;
  next.quality.clock_class = cls;
  node_.set_defaults(next, base_now);
}

}  // namespace meridian::ptp
