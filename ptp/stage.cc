#include "ptp/stage.h"

#include <time.h>

#include <cstring>
#include <optional>

#include <rte_cycles.h>
#include <rte_spinlock.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

#include "dataplane/egress.h"
#include "net/packet_meta.h"
#include "ptp/kernel_stamps.h"
#include "ptp/transparent.h"
#include "ptp/transport.h"

namespace meridian::ptp {

bool register_rx_timestamp(RxTimestampField& field) {
  int offset = -1;
  uint64_t flag = 0;
  if (rte_mbuf_dyn_rx_timestamp_register(&offset, &flag) != 0) return false;
  field.offset = offset;
  field.flag = flag;
  return true;
}

// The port's own neighbour traffic: ARP whose target is `address` (a
// peer resolving it, or answering us), an IPv6 neighbour solicitation for
// `address` and an advertisement sent to it (no extension headers). Any
// other ARP/ND passes on untouched (xconnect, VXLAN).
bool PtpPuntStage::neighbor_message(std::span<const uint8_t> frame, const net::PacketView& v, uint8_t family,
                                    const uint8_t* address) {
  if (family == 0) return false;
  if (family == 4) {
    const size_t target = size_t{v.l3_offset} + 24;  // ARP target protocol address
    return v.ethertype == 0x0806 && frame.size() >= target + 4 && std::memcmp(frame.data() + target, address, 4) == 0;
  }
  const size_t icmp = size_t{v.l3_offset} + 40;
  if (v.ip_version != 6 || frame.size() < icmp + 24 || frame[v.l3_offset + 6] != 58) return false;
  if (frame[icmp] == 135) return std::memcmp(frame.data() + icmp + 8, address, 16) == 0;   // NS: target
  if (frame[icmp] == 136) return std::memcmp(frame.data() + v.l3_offset + 24, address, 16) == 0;  // NA: destination
  return false;
}

void PtpPuntStage::process(dataplane::PacketBatch& b, const dataplane::StageContext& ctx) const {
  const PtpTables* ptp = ctx.tables.get<PtpTables>();
  if (!ptp || !ptp->enabled || b.rx_port >= dataplane::kMaxPorts || !ptp->port[b.rx_port]) return;
  for (uint16_t i = 0; i < b.count; ++i) {
    if (!b.undecided(i)) continue;
    const net::PacketMeta& meta = b.meta(i);
    // PTP, or ARP / IPv6 that may be the port's neighbour traffic (checked
    // below as before, including the malformed NS whose payload length is 0).
    if (!meta.has(net::kMetaPtp) && !meta.has(net::kMetaArp) && meta.outer.ip_version != 6) continue;
    rte_mbuf* m = b.pkts[i];
    const std::span<const uint8_t> frame{rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m)};
    PtpLocation loc;
    if (!locate(frame, meta.outer, meta.status, loc) &&
        !neighbor_message(frame, meta.outer, ptp->address_family[b.rx_port], ptp->address[b.rx_port].data())) {
      continue;
    }
    *RTE_MBUF_DYNFIELD(m, field_.offset, rte_mbuf_timestamp_t*) = ctx.now_tsc;
    m->ol_flags |= field_.flag;
    b.punt(i);
  }
}

}  // namespace meridian::ptp

namespace meridian::ptp {

struct PtpTransparentStage::PortTap {
  rte_spinlock_t lock = RTE_SPINLOCK_INITIALIZER;
  std::string interface;
  bool sends = false;  // net_af_packet: the egress stage may send through it
  bool tried = false;  // opened once, on first use
  std::unique_ptr<KernelTimestampTap> tap;
  // The sender has its own lock: a send runs the peer's receive path, which
  // the stamp lookups on the tap must not wait for.
  rte_spinlock_t send_lock = RTE_SPINLOCK_INITIALIZER;
  bool sender_tried = false;
  std::unique_ptr<KernelStampedSender> sender;
};

PtpTransparentStage::PtpTransparentStage(unsigned workers, uint64_t tsc_hz, std::vector<KernelPort> kernel_ports)
    : tsc_hz_(tsc_hz),
      slots_(new Slot[kSlots]),
      counters_(new Counters[workers + 1]),
      marks_(new Marks[workers + 1]),
      workers_(workers + 1) {
  for (auto& port : kernel_ports) {
    auto t = std::make_unique<PortTap>();
    t->interface = std::move(port.interface);
    t->sends = port.sends && !t->interface.empty();
    taps_.push_back(std::move(t));
  }
}

PtpTransparentStage::~PtpTransparentStage() = default;

void PtpTransparentStage::reopen_port(uint16_t port) const {
  PortTap* t = port < taps_.size() ? taps_[port].get() : nullptr;
  if (!t) return;
  rte_spinlock_lock(&t->lock);
  t->tap.reset();
  t->tried = false;
  rte_spinlock_unlock(&t->lock);
  rte_spinlock_lock(&t->send_lock);
  t->sender.reset();
  t->sender_tried = false;
  rte_spinlock_unlock(&t->send_lock);
}

// A seqlock per slot: the key is cleared while the entry changes, so a
// reader that sees the same key before and after read a whole entry.
void PtpTransparentStage::park(uint64_t key, const Parked& p) const {
  Slot& s = slots_[key % kSlots];
  s.key.store(0, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  s.tsc_residence.store(p.tsc_residence, std::memory_order_relaxed);
  s.fingerprint.store(p.fingerprint, std::memory_order_relaxed);
  s.stage_tsc.store(p.stage_tsc, std::memory_order_relaxed);
  s.rx_port.store(p.rx_port, std::memory_order_relaxed);
  s.departed_ns.store(p.departed_ns, std::memory_order_relaxed);
  s.key.store(key, std::memory_order_release);
}

// The same seqlock: the slot is claimed (key to 0) while it changes, so
// a reader never sees half of it; one that looks in that instant misses it.
void PtpTransparentStage::depart(uint64_t key, int64_t departed_ns) const {
  Slot& s = slots_[key % kSlots];
  uint64_t expected = key;
  if (!s.key.compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) return;
  s.departed_ns.store(departed_ns, std::memory_order_relaxed);
  s.key.store(key, std::memory_order_release);
}

bool PtpTransparentStage::take(uint64_t key, Parked& p) const {
  Slot& s = slots_[key % kSlots];
  if (s.key.load(std::memory_order_acquire) != key) return false;
  p.tsc_residence = s.tsc_residence.load(std::memory_order_relaxed);
  p.fingerprint = s.fingerprint.load(std::memory_order_relaxed);
  p.stage_tsc = s.stage_tsc.load(std::memory_order_relaxed);
  p.rx_port = s.rx_port.load(std::memory_order_relaxed);
  p.departed_ns = s.departed_ns.load(std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_acquire);
  uint64_t expected = key;
  return s.key.compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
}

std::optional<int64_t> PtpTransparentStage::kernel_stamp(uint16_t port, StampDirection dir,
                                                         uint64_t fingerprint) const {
  PortTap* t = port < taps_.size() ? taps_[port].get() : nullptr;
  if (!t || t->interface.empty()) return std::nullopt;
  std::optional<int64_t> stamp;
  rte_spinlock_lock(&t->lock);
  if (!t->tried) {
    t->tried = true;
    std::string error;  // no tap: TSC residences, counted as such
    t->tap = KernelTimestampTap::open(t->interface, error);
  }
  if (t->tap) stamp = t->tap->take(dir, fingerprint);
  rte_spinlock_unlock(&t->lock);
  return stamp;
}

int64_t PtpTransparentStage::residence(const Parked& p, bool departed, Counters& c) const {
  const std::optional<int64_t> received = kernel_stamp(p.rx_port, StampDirection::kReceived, p.fingerprint);
  std::optional<int64_t> sent;
  if (departed && p.departed_ns) sent = p.departed_ns;
  for (uint16_t port = 0; departed && !sent && port < taps_.size(); ++port) {
    if (port != p.rx_port) sent = kernel_stamp(port, StampDirection::kSent, p.fingerprint);
  }
  if (!received && !sent) {
    ++c.tsc_ingress;
    ++c.stage_egress;
    return p.tsc_residence;
  }
  // The stage on the kernel's clock (CLOCK_REALTIME, read only), and the
  // poll round before it, for the end that has no kernel stamp.
  timespec ts{};
  const uint64_t tsc_now = rte_rdtsc();
  clock_gettime(CLOCK_REALTIME, &ts);
  const int64_t now = static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  const int64_t stage = now - static_cast<int64_t>((tsc_now - p.stage_tsc) * 1'000'000'000 / tsc_hz_);
  const int64_t start = received ? *received : stage - p.tsc_residence;
  const int64_t end = sent ? *sent : stage;
  const int64_t r = end - start;
  if (r < 0 || r >= 1'000'000'000) {  // a clock step in between: keep the TSC figure
    ++c.tsc_ingress;
    ++c.stage_egress;
    return p.tsc_residence;
  }
  ++(received ? c.kernel_ingress : c.tsc_ingress);
  ++(!sent ? c.stage_egress : p.departed_ns ? c.driver_egress : c.kernel_egress);
  return r;
}

bool PtpTransparentStage::locate_in_batch(dataplane::PacketBatch& b, uint16_t i, TcFrame& f) {
  const net::PacketMeta& meta = b.meta(i);
  if (!meta.has(net::kMetaPtp) && !meta.has(net::kMetaOverlay)) return false;
  const rte_mbuf* m = b.pkts[i];
  const std::span<const uint8_t> frame{rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m)};
  return tc_locate(frame, meta.has(net::kMetaOverlay) ? b.meta_with_inner(i) : meta, f);
}

void PtpTransparentStage::process(dataplane::PacketBatch& b, const dataplane::StageContext& ctx) const {
  const unsigned w = ctx.worker < workers_ ? ctx.worker : workers_ - 1;
  Marks& marks = marks_[w];
  marks.parked = marks.ptp = marks.deferred = 0;
  if (!PtpTables::tc_on(ctx.tables)) return;
  Counters& c = counters_[w];
  const uint64_t now = rte_rdtsc();
  const int64_t tsc_residence = static_cast<int64_t>((now - ctx.now_tsc) * 1'000'000'000 / tsc_hz_);
  for (uint16_t i = 0; i < b.count; ++i) {
    if (!b.undecided(i)) continue;
    TcFrame f;
    if (!locate_in_batch(b, i, f)) continue;
    rte_mbuf* m = b.pkts[i];
    const std::span<uint8_t> frame{rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_data_len(m)};
    marks.ptp |= uint64_t{1} << i;
    switch (f.type) {
      case MessageType::kSync:
      case MessageType::kDelayReq: {
        const Parked p{tsc_residence, frame_fingerprint(frame), now, b.rx_port};
        if (f.type == MessageType::kDelayReq || (f.flags & kFlagTwoStep)) {
          // Parked before it can leave, so its Follow_Up / Delay_Resp (on
          // another worker, maybe) finds it however soon it comes.
          const uint64_t key = tc_key(f);
          park(key, p);
          if (!f.in_vxlan) {  // the taps see no PTP inside VXLAN: it keeps its TSC residence
            marks.parked |= uint64_t{1} << i;
            marks.keys[i] = key;
          }
          break;
        }
        tc_add_correction(frame, f, residence(p, false, c) * 65536);
        ++c.corrected;
        break;
      }
      case MessageType::kFollowUp:
      case MessageType::kDelayResp: {
        // The second of a two-step pair: it carries the first's residence,
        // which ends when the first leaves. Still in this burst, it has not:
        // the egress stage adds the residence after sending it.
        const uint64_t key = tc_key(f);
        bool first_in_burst = false;
        for (uint64_t parked = marks.parked; parked && !first_in_burst; parked &= parked - 1) {
          first_in_burst = marks.keys[__builtin_ctzll(parked)] == key;
        }
        if (first_in_burst) {
          marks.deferred |= uint64_t{1} << i;
          marks.keys[i] = key;
          break;
        }
        correct_second(frame, f, key, now, c);
        break;
      }
      default:
        break;  // an E2E TC forwards the rest unchanged
    }
  }
}

void PtpTransparentStage::correct_second(std::span<uint8_t> frame, const TcFrame& f, uint64_t key, uint64_t now,
                                         Counters& c) const {
  const bool follow_up = f.type == MessageType::kFollowUp;
  Parked p;
  // A pair's second message follows within milliseconds; one parked for
  // over a second is a stale (or forged) match: leave it alone.
  if (take(key, p) && static_cast<int64_t>(now - p.stage_tsc) < static_cast<int64_t>(tsc_hz_)) {
    tc_add_correction(frame, f, residence(p, true, c) * 65536);
    ++(follow_up ? c.followups_corrected : c.delay_resps_corrected);
  } else {
    ++(follow_up ? c.followups_unmatched : c.delay_resps_unmatched);
  }
}

void PtpTransparentEgressStage::process(dataplane::PacketBatch& b, const dataplane::StageContext& ctx) const {
  const unsigned w = ctx.worker < tc_.workers_ ? ctx.worker : tc_.workers_ - 1;
  PtpTransparentStage::Marks& marks = tc_.marks_[w];
  for (uint64_t marked = marks.parked; marked; marked &= marked - 1) {
    const auto i = static_cast<uint16_t>(__builtin_ctzll(marked));
    if (i >= b.count || b.verdict[i] != dataplane::Verdict::kForward) continue;
    const uint16_t port = b.tx_port[i];
    const dataplane::ForwardingTables& t = ctx.tables;
    if (t.any_shaped && port < dataplane::kMaxPorts && t.shaped[port]) continue;  // the shaper sends it
    if (behind_earlier_ptp(b, marks.ptp, i)) {
      ++tc_.counters_[w].egress_kept_in_order;
      continue;
    }
    send_stamped(b, i, marks.keys[i], ctx, tc_.counters_[w]);
  }
  // Second messages whose event shared their burst: it has left now. One
  // that is not forwarded after all (its drop is counted by reason) still
  // releases its event's slot.
  for (uint64_t deferred = marks.deferred; deferred; deferred &= deferred - 1) {
    const auto i = static_cast<uint16_t>(__builtin_ctzll(deferred));
    if (i >= b.count) continue;
    if (b.verdict[i] != dataplane::Verdict::kForward) {
      PtpTransparentStage::Parked released;
      tc_.take(marks.keys[i], released);
      continue;
    }
    rte_mbuf* m = b.pkts[i];
    const std::span<uint8_t> frame{rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_data_len(m)};
    TcFrame f;
    if (PtpTransparentStage::locate_in_batch(b, i, f)) {
      tc_.correct_second(frame, f, marks.keys[i], rte_rdtsc(), tc_.counters_[w]);
    }
  }
}

bool PtpTransparentEgressStage::behind_earlier_ptp(const dataplane::PacketBatch& b, uint64_t ptp, uint16_t i) {
  for (uint64_t earlier = ptp & ((uint64_t{1} << i) - 1); earlier; earlier &= earlier - 1) {
    const auto j = static_cast<uint16_t>(__builtin_ctzll(earlier));
    if (b.verdict[j] == dataplane::Verdict::kForward && b.tx_port[j] == b.tx_port[i]) return true;
  }
  return false;
}

void PtpTransparentEgressStage::send_stamped(dataplane::PacketBatch& b, uint16_t i, uint64_t key,
                                             const dataplane::StageContext& ctx,
                                             PtpTransparentStage::Counters& c) const {
  const uint16_t port = b.tx_port[i];
  PtpTransparentStage::PortTap* t = port < tc_.taps_.size() ? tc_.taps_[port].get() : nullptr;
  rte_mbuf* m = b.pkts[i];
  if (!t || !t->sends || !rte_pktmbuf_is_contiguous(m) || ctx.tables.offline(port)) return;
  const std::span<const uint8_t> frame{rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m)};
  KernelStampedSender::Sent sent;
  bool available = true;
  rte_spinlock_lock(&t->send_lock);
  if (!t->sender_tried) {
    t->sender_tried = true;
    std::string error;  // none: the worker's queue and the tap's stamp, counted as unavailable
    t->sender = KernelStampedSender::open(t->interface, error);
  }
  if (t->sender) {
    sent = t->sender->send(frame);
  } else {
    available = false;
  }
  rte_spinlock_unlock(&t->send_lock);
  if (!available) {
    ++c.egress_unavailable;
    return;
  }
  if (!sent.sent) {
    ++c.egress_send_failed;  // the worker's TX queue takes it; the tap's stamp ends its residence
    return;
  }
  ++c.egress_sent;
  if (sent.stamp) tc_.depart(key, *sent.stamp);
  if (ctx.counters && port < dataplane::kMaxPorts) {
    dataplane::count_transmitted(ctx.counters->ports[port], 1, rte_pktmbuf_pkt_len(m));
  }
  rte_pktmbuf_free(m);
  b.consumed(i);
}

}  // namespace meridian::ptp
