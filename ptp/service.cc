#include "ptp/service.h"

#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf_dyn.h>

#include "net/checksum.h"
#include "net/neighbor.h"
#include "net/packet_view.h"
#include "net/wire.h"
#include "ptp/profile.h"

namespace meridian::ptp {
namespace {

constexpr size_t kMaxMessage = 512;
constexpr size_t kMinFrame = 60;  // Ethernet minimum without FCS
constexpr int64_t kReferenceInterval = kNsPerSecond;

int64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);  // read only: Meridian never sets the host clock
  return static_cast<int64_t>(ts.tv_sec) * kNsPerSecond + ts.tv_nsec;
}

// A (TSC, CLOCK_REALTIME) pair read as close together as three tries allow.
CrossTimestamp tsc_and_realtime() { return cross_timestamp([] { return rte_rdtsc(); }, realtime_ns); }

// Hardware Tx stamps: how long the control lcore polls the NIC's latch
// after a send (DPDK's ptpclient waits as long). A miss falls back to the
// base read just before the send, and is counted.
constexpr unsigned kTxStampWaitUs = 1000;

Transport transport_of(const std::string& name) {
  if (name == "l2") return Transport::kL2;
  if (name == "udp_ipv6") return Transport::kUdpIpv6;
  return Transport::kUdpIpv4;
}

// EUI-64 from a MAC: ff:fe in the middle (IEEE 1588-2019 §7.5.2.2.2).
ClockIdentity identity_from_mac(const std::array<uint8_t, 6>& mac) {
  return ClockIdentity{mac[0], mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]};
}

const char* short_type_name(uint8_t t) { return message_type_name(static_cast<MessageType>(t)); }

}  // namespace

std::unique_ptr<PtpService> PtpService::create(const config::PtpConfig& cfg, const std::vector<PtpPortBinding>& ports,
                                               PtpServiceIo io, const PtpService* previous,
                                               config::FieldErrors& errors) {
  const auto profile = find_profile(cfg.profile);
  if (!profile) {
    errors.push_back({"/ptp/profile", "unknown profile '" + cfg.profile + "'"});
    return nullptr;
  }
  std::unique_ptr<PtpService> s(new PtpService());
  s->config_ = cfg;
  s->io_ = std::move(io);
  s->utc_offset_ns_ = static_cast<int64_t>(cfg.utc_offset) * kNsPerSecond;
  for (size_t i = 0; i < cfg.ports.size(); ++i) {
    const auto& pc = cfg.ports[i];
    auto it = std::find_if(ports.begin(), ports.end(), [&](const PtpPortBinding& b) { return b.name == pc.port; });
    if (it == ports.end() || it->port_id >= s->port_number_.size()) {
      errors.push_back({"/ptp/ports/" + std::to_string(i) + "/port", "port '" + pc.port + "' is not running"});
      continue;
    }
    Port p;
    p.binding = *it;
    p.config = pc;
    p.transport = transport_of(pc.transport);
    p.peer_delay_address = profile->peer_delay_address;
    // Hardware first ("auto"), then kernel stamps, then the TSC.
    if (pc.timestamping == "auto" || pc.timestamping == "hardware") {
      std::string why;
      p.nic = NicClock::acquire(it->port_id, s->io_.tsc_hz, why);
      if (!p.nic && pc.timestamping == "hardware") {
        errors.push_back({"/ptp/ports/" + std::to_string(i) + "/timestamping", "hardware timestamps: " + why});
        continue;
      }
      p.hardware_note = p.nic ? "in use" : "unavailable: " + why;
    } else {
      p.hardware_note = "not requested (timestamping: " + pc.timestamping + ")";
    }
    if (!p.nic && pc.timestamping != "tsc") {
      std::string why;
      if (it->linux_interface.empty()) {
        why = "the port's driver has no kernel interface (net_af_packet or net_tap with iface=)";
      } else {
        p.tap = KernelTimestampTap::open(it->linux_interface, why);
      }
      if (p.tap && it->kernel_tx_socket >= 0) p.tap->attach_tx_socket(it->kernel_tx_socket, p.tx_socket_error);
      if (!p.tap && pc.timestamping == "kernel") {
        errors.push_back({"/ptp/ports/" + std::to_string(i) + "/timestamping", "kernel timestamps: " + why});
        continue;
      }
      p.tsc_reason = why;
    }
    s->port_number_[it->port_id] = static_cast<int>(i + 1);
    s->ports_.push_back(std::move(p));
  }
  if (!errors.empty()) return nullptr;

  InstanceConfig ic;
  DefaultDataSet& d = ic.node.defaults;
  d.identity = cfg.clock_identity ? *cfg.clock_identity : identity_from_mac(s->ports_.front().binding.mac);
  d.priority1 = static_cast<uint8_t>(cfg.priority1);
  d.priority2 = static_cast<uint8_t>(cfg.priority2);
  d.quality.clock_class = static_cast<uint8_t>(cfg.clock_class);
  d.quality.clock_accuracy = static_cast<uint8_t>(cfg.clock_accuracy);
  d.slave_only = cfg.slave_only;
  d.two_step = cfg.two_step;
  d.domain = static_cast<uint8_t>(cfg.domain ? *cfg.domain : profile->domain);
  ic.node.bmca = profile->bmca;
  ic.node.time_properties.current_utc_offset = static_cast<int16_t>(cfg.utc_offset);
  ic.node.time_properties.flags = (kFlagPtpTimescale | kFlagUtcOffsetValid) & 0xff;
  ic.node.time_properties.time_source = cfg.reference == "system" ? 0x50 : 0xa0;  // NTP / internal oscillator
  ic.node.ports.clear();
  for (const auto& p : s->ports_) {
    NodePortConfig np;
    const auto& pc = p.config;
    np.log_announce_interval = static_cast<int8_t>(pc.log_announce_interval.value_or(profile->log_announce_interval));
    np.log_sync_interval = static_cast<int8_t>(pc.log_sync_interval.value_or(profile->log_sync_interval));
    np.log_min_delay_req_interval =
        static_cast<int8_t>(pc.log_min_delay_req_interval.value_or(profile->log_min_delay_req_interval));
    np.announce_receipt_timeout = static_cast<uint8_t>(pc.announce_receipt_timeout.value_or(profile->announce_receipt_timeout));
    np.delay_mechanism = pc.delay_mechanism ? (*pc.delay_mechanism == "p2p" ? DelayMechanism::kP2P : DelayMechanism::kE2E)
                                            : profile->delay_mechanism;
    np.local_priority = static_cast<uint8_t>(pc.local_priority);
    np.master_only = pc.master_only;
    ic.node.ports.push_back(np);
  }
  ic.two_step = cfg.two_step;
  for (const auto& port : s->ports_) {
    ic.corrections.push_back(PortCorrections{port.config.ingress_latency_ns, port.config.egress_latency_ns,
                                             port.config.delay_asymmetry_ns});
  }
  ic.sync = SynchronizerConfig::defaults_for(false);
  ic.sync.servo.kind = cfg.servo == "linuxptp_pi" ? ServoKind::kLinuxPi : ServoKind::kAdaptive;
  ic.sync.servo.first_step_threshold_ns = cfg.first_step_threshold_ns;
  ic.sync.servo.step_threshold_ns = cfg.step_threshold_ns;
  ic.sync.servo.max_frequency_ppb = cfg.max_frequency_ppb;
  if (cfg.filter) {
    const std::string& f = *cfg.filter;
    ic.sync.filter.kind = f == "minimum" ? FilterKind::kMinimum
                          : f == "latest" ? FilterKind::kLatest
                          : f == "linuxptp_median" ? FilterKind::kLinuxMedian
                                                   : FilterKind::kPercentile;
    if (ic.sync.filter.kind == FilterKind::kLinuxMedian) ic.sync.filter.window = 10;
  }
  ic.holdover = HoldoverPolicy{profile->telecom_classes, static_cast<double>(cfg.holdover_spec_ns)};
  ic.has_reference = cfg.reference == "system";
  ic.unicast_server = cfg.unicast_listen;
  ic.unicast_request.duration_s = cfg.unicast_request_duration_s;
  ic.unicast_request.log_query_interval = static_cast<int8_t>(cfg.unicast_log_query_interval);
  for (const auto& port : s->ports_) {
    std::vector<PeerAddress> masters;
    for (const auto& ip : port.config.unicast_masters) {
      PeerAddress a;
      a.unicast = true;
      std::copy_n(ip.bytes.begin(), ip.is_v4() ? 4 : 16, a.ip.begin());  // the MAC is resolved when sending
      masters.push_back(a);
    }
    ic.unicast_masters.push_back(std::move(masters));
  }

  s->base_.tsc = previous ? previous->base_.tsc : TscTimebase{rte_rdtsc(), s->io_.tsc_hz};
  s->base_name_ = "tsc";
  for (const auto& port : s->ports_) {
    if (port.nic) {
      s->base_.nic = port.nic;
      s->base_name_ = "nic:" + port.binding.name;
      break;
    }
  }
  if (previous && previous->base_.same_as(s->base_)) {
    s->clock_ = std::make_unique<PtpClock>(*previous->clock_);
  } else if (previous) {
    // A new base (hardware stamps came or went): the time carries over; the
    // frequency was relative to the old base's oscillator and is relearnt.
    s->clock_ = std::make_unique<PtpClock>(*previous->clock_);
    const int64_t now = previous->clock_->time_at(previous->base_now());
    const int64_t base = s->base_now();
    s->clock_->set_time(base, now);
    s->clock_->set_frequency(base, 0);
  } else {
    s->clock_ = std::make_unique<PtpClock>();
    const CrossTimestamp now = tsc_and_realtime();
    s->clock_->set_time(s->base_.from_tsc(now.tsc), now.other_ns + s->utc_offset_ns_);
  }
  if (cfg.host_clock_export == "ntp_shm") {
    std::string why;
    s->host_export_ = NtpShmExport::open(cfg.ntp_shm_unit, why);
    if (!s->host_export_) {
      errors.push_back({"/ptp/ntp_shm_unit", why});
      return nullptr;
    }
  }
  s->instance_ = std::make_unique<PtpInstance>(ic, *s->clock_);
  s->instance_->start(s->base_now());
  return s;
}

int64_t ClockBase::now() const { return nic ? nic->now() : tsc.to_ns(rte_rdtsc()); }

int64_t ClockBase::from_tsc(uint64_t tsc_reading) const {
  if (!nic) return tsc.to_ns(tsc_reading);
  return nic->cross_timestamp().other_at(tsc_reading, tsc.hz);
}

int64_t ClockBase::from_nic(NicClock& clock, int64_t ns) const {
  if (&clock == nic.get()) return ns;
  return from_tsc(clock.cross_timestamp().tsc_at(ns, tsc.hz));  // another NIC: through the TSC
}

int64_t PtpService::base_now() const { return base_.now(); }

int64_t PtpService::base_from_realtime(int64_t stamp_ns) const {
  // A fresh (TSC, realtime) pair for each stamp: the two clocks' rates
  // differ by ppm, so the pair must be recent, not the TSC rate alone.
  return base_.from_tsc(tsc_and_realtime().tsc_at(stamp_ns, base_.tsc.hz));
}

std::vector<uint16_t> PtpService::port_ids() const {
  std::vector<uint16_t> ids;
  for (const auto& p : ports_) ids.push_back(p.binding.port_id);
  return ids;
}

bool PtpService::addressed_to_us(const Port& p, std::span<const uint8_t> frame, const net::PacketView& v,
                                 const PtpLocation& loc) const {
  std::array<uint8_t, 6> dst_mac;
  std::memcpy(dst_mac.data(), frame.data(), 6);
  if (loc.transport == Transport::kL2) {
    return dst_mac == kMacPrimary || dst_mac == kMacPeerDelay || dst_mac == p.binding.mac;
  }
  const uint8_t* dst = frame.data() + v.l3_offset + (v.ip_version == 4 ? 16 : 24);
  if (v.ip_version == 4) {
    if (std::memcmp(dst, kIpv4Primary.data(), 4) == 0 || std::memcmp(dst, kIpv4PeerDelay.data(), 4) == 0) return true;
    return p.config.address && std::memcmp(dst, p.config.address->bytes.data(), 4) == 0;
  }
  if (std::memcmp(dst, kIpv6Primary.data(), 16) == 0 || std::memcmp(dst, kIpv6PeerDelay.data(), 16) == 0) return true;
  return p.config.address && std::memcmp(dst, p.config.address->bytes.data(), 16) == 0;
}

bool PtpService::is_unicast_master(const Port& p, const uint8_t* ip) const {
  const size_t len = p.transport == Transport::kUdpIpv6 ? 16 : 4;
  const auto& masters = p.config.unicast_masters;
  return std::any_of(masters.begin(), masters.end(),
                     [&](const config::IpAddress& a) { return std::memcmp(a.bytes.data(), ip, len) == 0; });
}

bool PtpService::resolve(const Port& p, PeerAddress& to) const {
  if (std::any_of(to.mac.begin(), to.mac.end(), [](uint8_t b) { return b != 0; })) return true;
  if ((p.transport != Transport::kUdpIpv4 && p.transport != Transport::kUdpIpv6) || !p.config.address) return false;
  // Replies go to the MAC they came from; only our own unicast masters are
  // looked up, so a peer cannot make us ask for it.
  if (!is_unicast_master(p, to.ip.data()) || !io_.presence) return false;
  const auto ip = p.transport == Transport::kUdpIpv6 ? config::IpAddress::v6(to.ip.data()) : config::IpAddress::v4(to.ip.data());
  const auto mac = io_.presence->lookup(ip, p.binding.port_id);
  if (!mac) return false;
  to.mac = mac->bytes;
  return true;
}

void PtpService::attach_to_host() {
  if (!io_.presence || host_client_) return;
  host_client_ = io_.presence->add_client("ptp");
  std::vector<host::OwnAddress> addresses;
  std::vector<host::WantedHop> masters;
  for (const auto& p : ports_) {
    if (!p.config.address) continue;
    addresses.push_back({p.binding.port_id, *p.config.address});
    for (const auto& ip : p.config.unicast_masters) masters.push_back({ip, p.binding.port_id});
  }
  io_.presence->set_addresses(host_client_, std::move(addresses));
  io_.presence->want(host_client_, masters);
}

void PtpService::detach_from_host() {
  if (io_.presence && host_client_) io_.presence->remove_client(host_client_);
  host_client_ = 0;
}

PtpService::~PtpService() { detach_from_host(); }

bool PtpService::handle_punt(rte_mbuf* m) {
  if (!(m->ol_flags & io_.rx_timestamp.flag)) return false;
  m->ol_flags &= ~io_.rx_timestamp.flag;
  const uint64_t rx_tsc = *RTE_MBUF_DYNFIELD(m, io_.rx_timestamp.offset, rte_mbuf_timestamp_t*);
  const int number = m->port < port_number_.size() ? port_number_[m->port] : 0;
  std::span<const uint8_t> frame{rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m)};
  PtpLocation loc;
  const Port* port = number ? &ports_[static_cast<size_t>(number - 1)] : nullptr;
  // One parse serves every check below.
  net::PacketView view;
  const auto status = net::parse_packet(frame.data(), frame.size(), view);
  if (port && port->config.address &&
      PtpPuntStage::neighbor_message(frame, view, port->config.address->family,
                                     port->config.address->bytes.data())) {
    return false;  // ARP / ND: host/ answered what was ours; the next handler decides
  }
  if (number == 0) {
    count_drop(m->port, Drop::kNotAPtpPort);
  } else if (!locate(frame, view, status, loc)) {
    count_drop(m->port, Drop::kNotPtp);
  } else if (loc.transport != ports_[static_cast<size_t>(number - 1)].transport) {
    count_drop(m->port, Drop::kWrongTransport);
  } else if (!addressed_to_us(ports_[static_cast<size_t>(number - 1)], frame, view, loc)) {
    count_drop(m->port, Drop::kNotAddressedToUs);
  } else if (frame[6] & 1 || std::all_of(frame.begin() + 6, frame.begin() + 12, [](uint8_t b) { return b == 0; })) {
    count_drop(m->port, Drop::kBadSourceMac);  // a multicast or zero sender: nobody to answer
  } else {
    Message msg;
    const DecodeError e = decode(frame.subspan(loc.offset, loc.length), msg);
    if (e != DecodeError::kNone) {
      ++decode_errors_[static_cast<size_t>(e)];
      count_drop(m->port, Drop::kMalformed);
    } else {
      PeerAddress from;
      from.unicast = true;
      std::memcpy(from.mac.data(), frame.data() + 6, 6);
      if (loc.transport != Transport::kL2) {
        const size_t src = view.l3_offset + (view.ip_version == 4 ? 12 : 8);
        std::memcpy(from.ip.data(), frame.data() + src, view.ip_version == 4 ? 4 : 16);
        if (io_.presence && view.vlan_count == 0 &&
            is_unicast_master(ports_[static_cast<size_t>(number - 1)], from.ip.data())) {
          // A unicast master's untagged frame refreshes its MAC (on its port only).
          io_.presence->learn(view.ip_version == 4 ? config::IpAddress::v4(from.ip.data())
                                                   : config::IpAddress::v6(from.ip.data()),
                              m->port, config::MacAddress{from.mac});
        }
      }
      std::optional<int64_t> rx_base;
      if (is_event(msg.header.type)) {
        if (port->nic) {
          const auto stamp = port->nic->rx_stamp(m);
          if (stamp) rx_base = base_.from_nic(*port->nic, *stamp);
          ++(stamp ? ports_[static_cast<size_t>(number - 1)].hardware.rx_used
                   : ports_[static_cast<size_t>(number - 1)].hardware.rx_missed);
        } else if (port->tap) {
          if (auto stamp = port->tap->take(StampDirection::kReceived, frame_fingerprint(frame))) {
            rx_base = base_from_realtime(*stamp);
          }
        }
      }
      instance_->receive(static_cast<uint16_t>(number), msg, rx_base ? *rx_base : base_.from_tsc(rx_tsc), from,
                         base_now());
    }
  }
  rte_pktmbuf_free(m);
  flush();
  return true;
}

void PtpService::tick() {
  if (config_.reference == "system") sample_reference();
  instance_->tick(base_now());
  flush();
  if (host_export_) export_to_host();
}

std::pair<int64_t, int64_t> PtpService::utc_and_host_ns() const {
  const CrossTimestamp now = tsc_and_realtime();
  const bool ptp_timescale = instance_->node().time_properties().flags & kFlagPtpTimescale;
  return {clock_->time_at(base_.from_tsc(now.tsc)) - (ptp_timescale ? utc_offset_ns_ : 0), now.other_ns};
}

void PtpService::export_to_host() {
  const int64_t now = base_now();
  if (now < next_export_) return;
  next_export_ = now + kNsPerSecond;
  const ServoState state = instance_->synchronizer().servo().state();
  const bool locked = instance_->node().slave_port() && !instance_->in_holdover() &&
                      (state == ServoState::kLocked || state == ServoState::kLockedStable);
  if (!locked) {
    ++export_skipped_;
    return;
  }
  const auto [utc, host] = utc_and_host_ns();
  const uint8_t leap_flags = instance_->node().time_properties().flags;
  const int leap = (leap_flags & kFlagLeap61) ? 1 : (leap_flags & kFlagLeap59) ? 2 : 0;
  // Precision: the servo's measurement noise, as a power of two seconds.
  const double noise_s = std::max(1e-9, instance_->synchronizer().servo().measurement_noise_ns() * 1e-9);
  host_export_->write(utc, host, leap, static_cast<int>(std::floor(std::log2(noise_s))));
}

void PtpService::sample_reference() {
  const CrossTimestamp now = tsc_and_realtime();
  const int64_t base = base_.from_tsc(now.tsc);
  if (base < next_reference_) return;
  next_reference_ = base + kReferenceInterval;
  instance_->reference_sample(clock_->time_at(base) - (now.other_ns + utc_offset_ns_), base, 1.0);
}

int64_t PtpService::host_clock_error_ns() const {
  const auto [utc, host] = utc_and_host_ns();
  return utc - host;
}

void PtpService::flush() {
  // Two-step Follow_Ups are queued while their Syncs go out: drain until empty.
  for (int round = 0; round < 4; ++round) {
    auto out = instance_->take_outgoing();
    if (out.empty()) return;
    for (auto& tx : out) transmit(tx);
  }
}

void PtpService::transmit(TxRequest& tx) {
  Port& p = ports_[tx.port - 1];
  FrameAddresses a;
  a.transport = p.transport;
  a.src_mac = p.binding.mac;
  if (p.config.address) a.src_ip = p.config.address->bytes;
  const MessageType type = tx.message.header.type;
  const bool peer = type == MessageType::kPdelayReq || type == MessageType::kPdelayResp ||
                    type == MessageType::kPdelayRespFollowUp || p.peer_delay_address;
  if (tx.to.unicast && !peer) {
    if (!resolve(p, tx.to)) {
      count_drop(p.binding.port_id, Drop::kTxUnresolved);  // asked by ARP / ND; the negotiation retries
      return;
    }
    a.dst_mac = tx.to.mac;
    a.dst_ip = tx.to.ip;
  } else {
    set_multicast_destination(a, peer);
  }
  rte_mbuf* m = rte_pktmbuf_alloc(io_.pool);
  if (!m) {
    count_drop(p.binding.port_id, Drop::kTxNoBuffer);
    return;
  }
  const int64_t stamp_base = base_now();
  instance_->stamp_one_step(tx, stamp_base);
  std::array<uint8_t, kMaxMessage> msg{};
  const size_t msg_len = encode(tx.message, msg);
  const size_t len = std::max(frame_header_size(p.transport) + msg_len, kMinFrame);
  auto* data = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(len)));
  if (msg_len == 0 || !data) {
    rte_pktmbuf_free(m);
    count_drop(p.binding.port_id, Drop::kTxEncode);
    return;
  }
  std::memset(data, 0, len);
  if (build_frame(a, tx.event, {msg.data(), msg_len}, {data, len}) == 0) {
    rte_pktmbuf_free(m);
    count_drop(p.binding.port_id, Drop::kTxEncode);
    return;
  }
  const bool hardware_stamp = p.nic && tx.cookie && tx.event;
  const bool kernel_stamp = p.tap && tx.cookie && tx.event;
  const uint64_t fingerprint = kernel_stamp ? frame_fingerprint({data, len}) : 0;
  if (hardware_stamp) p.nic->request_tx_stamp(m);
  // net_af_packet sends inside rte_eth_tx_burst (sendto on the packet
  // socket); without a kernel or NIC stamp, the TSC just before the call
  // is the Tx timestamp. So an event message leaves now, never queued in a
  // shaped port's tree; general messages take the port's QoS like any frame.
  const uint64_t tx_tsc = rte_rdtsc();
  const auto timing = tx.event ? dataplane::EgressTiming::kTimestamped : dataplane::EgressTiming::kScheduled;
  if (io_.transmit(p.binding.port_id, &m, 1, timing) != 1) {
    ++tx_full_;  // the egress path freed it (and counted it on the port)
    return;
  }
  if (!tx.cookie) return;
  std::optional<int64_t> tx_base;
  if (hardware_stamp) {
    const auto stamp = p.nic->tx_stamp(kTxStampWaitUs);
    if (stamp) tx_base = base_.from_nic(*p.nic, *stamp);
    ++(stamp ? p.hardware.tx_used : p.hardware.tx_missed);
  } else if (kernel_stamp) {
    // The tap's copy was queued inside the send, so it is there now.
    if (auto stamp = p.tap->take(StampDirection::kSent, fingerprint)) tx_base = base_from_realtime(*stamp);
  }
  instance_->tx_done(tx.cookie, tx_base ? *tx_base : base_.from_tsc(tx_tsc), base_now());
}

namespace {

/// The unicast negotiation server's table: clients, slots and every denial by reason.
nlohmann::json unicast_server_json(const UnicastServer& server, bool listening) {
  nlohmann::json denials = nlohmann::json::object();
  for (size_t r = 0; r < static_cast<size_t>(UnicastDenial::kCount); ++r) {
    denials[unicast_denial_name(static_cast<UnicastDenial>(r))] = server.denied(static_cast<UnicastDenial>(r));
  }
  return {{"listening", listening}, {"client_slots", server.size()}, {"reclaimed", server.reclaimed()},
          {"denials", denials}};
}

}  // namespace

void PtpService::count_drop(uint16_t port_id, Drop reason) {
  ++drops_[static_cast<size_t>(reason)];
  if (io_.control_counters && port_id < dataplane::kMaxPorts) io_.control_counters->ports[port_id].drop(reason);
}

std::vector<std::pair<std::string, uint64_t>> PtpService::frame_drops() const {
  std::vector<std::pair<std::string, uint64_t>> out;
  for (size_t r = 0; r < drops_.size(); ++r) {
    const auto reason = static_cast<Drop>(r);
    if (!drops_[r] || reason == Drop::kMalformed) continue;  // malformed: by decode error below
    out.emplace_back(std::string(dataplane::drop_reason_name(reason)).substr(4), drops_[r]);  // without "ptp_"
  }
  for (size_t e = 1; e < decode_errors_.size(); ++e) {
    if (decode_errors_[e]) out.emplace_back(decode_error_name(static_cast<DecodeError>(e)), decode_errors_[e]);
  }
  if (tx_full_) out.emplace_back("tx_full", tx_full_);
  std::sort(out.begin(), out.end());
  return out;
}

nlohmann::json PtpService::frame_drops_json() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [reason, n] : frame_drops()) out[reason] = n;
  return out;
}

nlohmann::json PtpService::status() const {
  const PtpNode& node = instance_->node();
  const auto& d = node.defaults();
  const auto& parent = node.parent();
  const ClockSynchronizer& sync = instance_->synchronizer();
  const bool slave = node.slave_port().has_value();
  const host::Presence::ClientCounters* counted = io_.presence ? io_.presence->counters(host_client_) : nullptr;
  const host::Presence::ClientCounters host_counters = counted ? *counted : host::Presence::ClientCounters{};
  nlohmann::json ports = nlohmann::json::array();
  for (size_t i = 0; i < ports_.size(); ++i) {
    const auto number = static_cast<uint16_t>(i + 1);
    const PortCounters& c = instance_->counters(number);
    nlohmann::json rx = nlohmann::json::object(), tx = nlohmann::json::object(), drops = nlohmann::json::object();
    for (uint8_t t = 0; t < 16; ++t) {
      if (c.rx[t]) rx[short_type_name(t)] = c.rx[t];
      if (c.tx[t]) tx[short_type_name(t)] = c.tx[t];
    }
    for (size_t r = 0; r < c.drops.size(); ++r) {
      if (c.drops[r]) drops[rx_drop_name(static_cast<RxDrop>(r))] = c.drops[r];
    }
    const PortDataSet pds = node.port_data_set(number);
    nlohmann::json& port = ports.emplace_back(nlohmann::json{{"name", ports_[i].binding.name},
                     {"port_number", number},
                     {"port_identity", to_string(pds.port)},
                     {"state", port_state_name(pds.state)},
                     {"transport", transport_name(ports_[i].transport)},
                     {"delay_mechanism", pds.delay_mechanism == 2 ? "p2p" : "e2e"},
                     {"log_announce_interval", pds.log_announce_interval},
                     {"log_sync_interval", pds.log_sync_interval},
                     {"log_min_delay_req_interval", pds.log_min_delay_req_interval},
                     {"peer_delay_ns", instance_->peer_delay_ns(number)},
                     {"foreign_masters", node.foreign_masters(number).records().size()},
                     {"foreign_masters_evicted", node.foreign_masters(number).evicted()},
                     {"timestamping", ports_[i].nic ? "hardware" : ports_[i].tap ? "kernel" : "tsc"},
                     {"hardware_timestamping", ports_[i].hardware_note},
                     {"rx", rx},
                     {"tx", tx},
                     {"drops", drops}});
    if (ports_[i].nic) {
      const auto& h = ports_[i].hardware;
      port["hardware_timestamps"] = {{"rx_used", h.rx_used},     {"rx_missed", h.rx_missed},
                                     {"tx_used", h.tx_used},     {"tx_missed", h.tx_missed},
                                     {"read_errors", ports_[i].nic->read_errors()}};
    } else if (const auto& tap = ports_[i].tap) {
      const auto& k = tap->counters();
      port["kernel_timestamps"] = {{"interface", tap->interface()}, {"frames", k.frames},
                                   {"tx_source", tap->has_tx_socket() ? "driver" : "packet_tap"},
                                   {"rx_used", k.rx_used},          {"rx_missed", k.rx_missed},
                                   {"tx_used", k.tx_used},          {"tx_missed", k.tx_missed}};
      if (!ports_[i].tx_socket_error.empty()) port["kernel_timestamps"]["tx_socket_error"] = ports_[i].tx_socket_error;
    } else if (!ports_[i].tsc_reason.empty()) {
      port["timestamping_note"] = ports_[i].tsc_reason;
    }
    if (const UnicastRequester* r = instance_->unicast_requester(number)) {
      const int64_t now = base_now();
      auto grant_state = [&](size_t m, UnicastKind k) {
        const auto& g = r->masters()[m].grants[static_cast<size_t>(k)];
        return r->granted(m, k, now) ? "granted" : g.requested ? "requested" : "none";
      };
      nlohmann::json masters = nlohmann::json::array();
      for (size_t m = 0; m < r->masters().size(); ++m) {
        masters.push_back({{"address", to_string(ports_[i].config.unicast_masters[m])},
                           {"selected", r->selected() == m},
                           {"announce", grant_state(m, UnicastKind::kAnnounce)},
                           {"sync", grant_state(m, UnicastKind::kSync)},
                           {"delay_resp", grant_state(m, UnicastKind::kDelayResp)}});
      }
      port["unicast_masters"] = std::move(masters);
      port["unicast_denials"] = r->denials();
    }
  }
  return {{"profile", config_.profile},
          {"domain", d.domain},
          {"clock_identity", to_string(d.identity)},
          {"clock_class", d.quality.clock_class},
          {"priority1", d.priority1},
          {"priority2", d.priority2},
          {"slave_only", d.slave_only},
          {"grandmaster", {{"identity", to_string(parent.gm_identity)},
                           {"priority1", parent.gm_priority1},
                           {"priority2", parent.gm_priority2},
                           {"clock_class", parent.gm_quality.clock_class}}},
          {"parent_port", to_string(parent.parent)},
          {"steps_removed", node.current().steps_removed},
          {"offset_from_master_ns", slave ? sync.offset_ns() : 0},
          {"mean_path_delay_ns", slave ? sync.mean_path_delay_ns() : 0},
          {"frequency_ppb", clock_->frequency_ppb()},
          {"servo", servo_kind_name(sync.servo().config().kind)},
          {"servo_state", servo_state_name(sync.servo().state())},
          {"servo_noise_ns", sync.servo().measurement_noise_ns()},
          {"servo_outliers", sync.servo().outliers()},
          {"servo_reacquisitions", sync.servo().reacquisitions()},
          {"holdover", instance_->in_holdover()},
          {"clock_steps", clock_->steps()},
          {"clock_base", base_name_},
          {"host_clock_export", host_export_ ? nlohmann::json{{"mode", "ntp_shm"},
                                                              {"ntp_shm_unit", host_export_->unit()},
                                                              {"samples", host_export_->samples()},
                                                              {"skipped_unlocked", export_skipped_}}
                                             : nlohmann::json("off")},
          {"host_clock_error_ns", host_clock_error_ns()},
          {"reference", reference_json()},
          {"unicast_clients", instance_->unicast_clients(base_now())},
          {"unicast_server", unicast_server_json(instance_->unicast_server(), config_.unicast_listen)},
          {"neighbor_replies", host_counters.replies},
          {"neighbor_requests", host_counters.requests},
          {"neighbor_answers", host_counters.answers},
          {"drops", frame_drops_json()},
          {"ports", ports}};
}

nlohmann::json PtpService::reference_json() const {
  if (config_.reference != "system") return "none";
  const Servo& servo = instance_->reference_servo();
  return {{"source", "system"},
          {"state", time_source_name(instance_->reference_state())},
          {"offset_ns", instance_->reference_offset_ns()},
          {"servo_state", servo_state_name(servo.state())},
          {"servo_noise_ns", servo.measurement_noise_ns()},
          {"servo_outliers", servo.outliers()},
          {"servo_reacquisitions", servo.reacquisitions()}};
}

void PtpService::metrics(config::MetricsWriter& out) const {
  const PtpNode& node = instance_->node();
  const ClockSynchronizer& sync = instance_->synchronizer();
  const bool slave = node.slave_port().has_value();
  out.gauge("meridian_ptp_clock_class", "clockClass this clock announces");
  out.sample({}, uint64_t{node.defaults().quality.clock_class});
  out.gauge("meridian_ptp_steps_removed", "stepsRemoved to the grandmaster");
  out.sample({}, uint64_t{node.current().steps_removed});
  out.gauge("meridian_ptp_offset_from_master_seconds", "Last offset from the master (0 when not a slave)");
  out.sample({}, slave ? static_cast<double>(sync.offset_ns()) * 1e-9 : 0.0);
  out.gauge("meridian_ptp_mean_path_delay_seconds", "Mean path delay to the master");
  out.sample({}, slave ? static_cast<double>(sync.mean_path_delay_ns()) * 1e-9 : 0.0);
  out.gauge("meridian_ptp_frequency_adjustment_ppb", "The clock's rate over its base");
  out.sample({}, clock_->frequency_ppb());
  out.gauge("meridian_ptp_servo_state", "Servo state: 0 unlocked, 1 stepped, 2 locked, 3 locked_stable, 4 holdover");
  out.sample({}, uint64_t{static_cast<uint8_t>(sync.servo().state())});
  out.counter("meridian_ptp_servo_events_total",
              "Offsets the servo held back as outliers, and times it found its state wrong and re-learnt the rate");
  out.sample({{"event", "outlier"}}, sync.servo().outliers());
  out.sample({{"event", "reacquisition"}}, sync.servo().reacquisitions());
  out.gauge("meridian_ptp_unicast_clients", "Unicast clients granted service");
  out.sample({}, uint64_t{instance_->unicast_clients(base_now())});
  out.counter("meridian_ptp_unicast_denials_total",
              "Unicast negotiation requests this clock denied as a master, by reason");
  for (size_t r = 0; r < static_cast<size_t>(UnicastDenial::kCount); ++r) {
    const auto why = static_cast<UnicastDenial>(r);
    out.sample({{"reason", unicast_denial_name(why)}}, instance_->unicast_server().denied(why));
  }
  out.gauge("meridian_ptp_port_state", "Port state (IEEE 1588 portState numbers: 6 master, 9 slave)");
  for (size_t i = 0; i < ports_.size(); ++i) {
    out.sample({{"port", ports_[i].binding.name}}, uint64_t{static_cast<uint8_t>(node.state(static_cast<uint16_t>(i + 1)))});
  }
  for (const bool received : {true, false}) {
    out.counter(received ? "meridian_ptp_messages_received_total" : "meridian_ptp_messages_sent_total",
                received ? "PTP messages received, by port and type" : "PTP messages sent, by port and type");
    for (size_t i = 0; i < ports_.size(); ++i) {
      const PortCounters& c = instance_->counters(static_cast<uint16_t>(i + 1));
      for (uint8_t t = 0; t < 16; ++t) {
        const uint64_t n = received ? c.rx[t] : c.tx[t];
        if (n) out.sample({{"port", ports_[i].binding.name}, {"type", short_type_name(t)}}, n);
      }
    }
  }
  out.counter("meridian_ptp_kernel_timestamps_total",
              "Event frames timestamped by the kernel (used) or left to the TSC estimate (missed)");
  auto stamp_samples = [&](const std::string& port, uint64_t rx_used, uint64_t rx_missed, uint64_t tx_used,
                           uint64_t tx_missed) {
    out.sample({{"port", port}, {"direction", "rx"}, {"result", "used"}}, rx_used);
    out.sample({{"port", port}, {"direction", "rx"}, {"result", "missed"}}, rx_missed);
    out.sample({{"port", port}, {"direction", "tx"}, {"result", "used"}}, tx_used);
    out.sample({{"port", port}, {"direction", "tx"}, {"result", "missed"}}, tx_missed);
  };
  for (const auto& p : ports_) {
    if (!p.tap) continue;
    const auto& k = p.tap->counters();
    stamp_samples(p.binding.name, k.rx_used, k.rx_missed, k.tx_used, k.tx_missed);
  }
  out.counter("meridian_ptp_hardware_timestamps_total",
              "Event frames stamped by the NIC's PTP clock (used) or left to the TSC estimate (missed)");
  for (const auto& p : ports_) {
    if (!p.nic) continue;
    const auto& h = p.hardware;
    stamp_samples(p.binding.name, h.rx_used, h.rx_missed, h.tx_used, h.tx_missed);
  }
  if (host_export_) {
    out.counter("meridian_ptp_host_export_samples_total",
                "Seconds of host clock export (NTP SHM): a sample written, or none while the servo was not locked");
    out.sample({{"result", "written"}}, host_export_->samples());
    out.sample({{"result", "skipped_unlocked"}}, export_skipped_);
  }
  out.counter("meridian_ptp_frame_drops_total", "Punted PTP frames dropped before the protocol, by reason");
  for (const auto& [reason, n] : frame_drops()) out.sample({{"reason", reason}}, n);
  out.counter("meridian_ptp_message_drops_total", "PTP messages the protocol dropped, by port and reason");
  for (size_t i = 0; i < ports_.size(); ++i) {
    const PortCounters& c = instance_->counters(static_cast<uint16_t>(i + 1));
    for (size_t r = 0; r < c.drops.size(); ++r) {
      if (c.drops[r]) out.sample({{"port", ports_[i].binding.name}, {"reason", rx_drop_name(static_cast<RxDrop>(r))}}, c.drops[r]);
    }
  }
}

}  // namespace meridian::ptp
