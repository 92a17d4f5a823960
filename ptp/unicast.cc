#include "ptp/unicast.h"

#include <algorithm>
#include <cstring>

namespace meridian::ptp {

size_t UnicastServer::AddressHash::operator()(const PeerAddress& a) const {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the address bytes
  for (uint8_t b : a.ip) h = (h ^ b) * 1099511628211ull;
  for (uint8_t b : a.mac) h = (h ^ b) * 1099511628211ull;
  return static_cast<size_t>(h);
}

const char* unicast_denial_name(UnicastDenial d) {
  static constexpr const char* kNames[] = {
#define MERIDIAN_PTP_DENIAL_NAME(e, n, d) n,
      MERIDIAN_PTP_UNICAST_DENIALS(MERIDIAN_PTP_DENIAL_NAME)
#undef MERIDIAN_PTP_DENIAL_NAME
  };
  return static_cast<size_t>(d) < std::size(kNames) ? kNames[static_cast<size_t>(d)] : "?";
}

uint64_t UnicastServer::denied() const {
  uint64_t n = 0;
  for (uint64_t d : denials_) n += d;
  return n;
}

int8_t UnicastServer::max_log(UnicastKind k) const {
  switch (k) {
    case UnicastKind::kAnnounce: return policy_.max_log_announce;
    case UnicastKind::kSync: return policy_.max_log_sync;
    case UnicastKind::kDelayResp: return policy_.max_log_delay_resp;
  }
  return 0;
}

double UnicastServer::load_of(UnicastKind k, int8_t log_period) {
  const double per_second = 1e9 / static_cast<double>(log_interval_ns(log_period));
  switch (k) {
    case UnicastKind::kAnnounce: return per_second;
    case UnicastKind::kSync: return 2 * per_second;  // and its Follow_Up
    case UnicastKind::kDelayResp: return 0;
  }
  return 0;
}

void UnicastServer::end_grant(UnicastGrant& g, UnicastKind k) {
  if (g.active) load_ = std::max(0.0, load_ - load_of(k, g.log_period));
  g.active = false;
  ++g.generation;
}

bool UnicastServer::live(const UnicastClient& c, int64_t now) const {
  return std::any_of(c.grants.begin(), c.grants.end(), [&](const UnicastGrant& g) { return g.active && now < g.expires; });
}

std::optional<uint32_t> UnicastServer::new_slot(int64_t now) {
  if (clients_.size() < policy_.max_clients) {
    clients_.emplace_back();
    return static_cast<uint32_t>(clients_.size() - 1);
  }
  for (size_t n = 0; n < std::min(kReclaimScan, clients_.size()); ++n) {
    const size_t i = reclaim_cursor_++ % clients_.size();
    UnicastClient& c = clients_[i];
    if (live(c, now)) continue;
    index_.erase(c.address);
    // Generations carry over: heap entries of the old client stay stale.
    for (UnicastKind k : {UnicastKind::kAnnounce, UnicastKind::kSync, UnicastKind::kDelayResp}) {
      end_grant(c.grants[static_cast<size_t>(k)], k);
    }
    ++reclaimed_;
    return static_cast<uint32_t>(i);
  }
  return std::nullopt;
}

int8_t UnicastServer::min_log(UnicastKind k) const {
  switch (k) {
    case UnicastKind::kAnnounce: return policy_.min_log_announce;
    case UnicastKind::kSync: return policy_.min_log_sync;
    case UnicastKind::kDelayResp: return policy_.min_log_delay_resp;
  }
  return 0;
}

namespace {
std::optional<UnicastKind> kind_of(MessageType t) {
  switch (t) {
    case MessageType::kAnnounce: return UnicastKind::kAnnounce;
    case MessageType::kSync: return UnicastKind::kSync;
    case MessageType::kDelayResp: return UnicastKind::kDelayResp;
    default: return std::nullopt;
  }
}
}  // namespace

std::optional<Message> UnicastServer::on_signaling(uint16_t port, const Message& m, const PeerAddress& from,
                                                   int64_t now) {
  Message reply;
  reply.header.type = MessageType::kSignaling;
  reply.target = m.header.source;
  auto it = index_.find(from);
  for (const UnicastTlv& tlv : m.unicast) {
    if (reply.unicast.size() == kMaxTlvsPerMessage) {
      ++denials_[static_cast<size_t>(UnicastDenial::kTooManyTlvs)];
      continue;
    }
    UnicastTlv answer;
    answer.message = tlv.message;
    const auto kind = kind_of(tlv.message);
    if (tlv.type == TlvType::kRequestUnicastTransmission) {
      answer.type = TlvType::kGrantUnicastTransmission;
      answer.log_period = tlv.log_period;
      answer.renewal_invited = true;
      // Every field the peer controls is checked before it is stored: the
      // period becomes a timer (policy range), the duration an expiry (capped).
      std::optional<UnicastDenial> denial;
      if (!kind) denial = UnicastDenial::kNotNegotiable;
      else if (tlv.log_period < min_log(*kind)) denial = UnicastDenial::kRateTooFast;
      else if (tlv.log_period > max_log(*kind)) denial = UnicastDenial::kRateTooSlow;
      else if (tlv.duration_s == 0) denial = UnicastDenial::kZeroDuration;
      if (!denial) {
        // The budget counts what this request adds over the client's current grant.
        const UnicastGrant* current =
            it == index_.end() ? nullptr : &clients_[it->second].grants[static_cast<size_t>(*kind)];
        const double freed = current && current->active ? load_of(*kind, current->log_period) : 0;
        if (load_ - freed + load_of(*kind, tlv.log_period) > policy_.max_messages_per_second) {
          denial = UnicastDenial::kRateBudget;
        }
      }
      std::optional<uint32_t> slot;
      if (!denial && it == index_.end() && !(slot = new_slot(now))) denial = UnicastDenial::kServerFull;
      if (denial) {
        answer.duration_s = 0;  // denied
        ++denials_[static_cast<size_t>(*denial)];
        reply.unicast.push_back(answer);
        continue;
      }
      if (it == index_.end()) {
        it = index_.emplace(from, *slot).first;
        UnicastClient& c = clients_[*slot];
        c.address = from;
        c.identity = m.header.source;
        c.port = port;
      }
      UnicastClient& c = clients_[it->second];
      c.identity = m.header.source;
      c.port = port;
      UnicastGrant& g = c.grants[static_cast<size_t>(*kind)];
      const bool was_active = g.active && now < g.expires;
      const bool same_rate = was_active && g.log_period == tlv.log_period;
      answer.duration_s = std::min(tlv.duration_s, policy_.max_duration_s);
      if (g.active) load_ = std::max(0.0, load_ - load_of(*kind, g.log_period));
      load_ += load_of(*kind, tlv.log_period);
      g.active = true;
      g.log_period = tlv.log_period;
      g.expires = now + int64_t{answer.duration_s} * 1'000'000'000;
      // A renewal at the same rate keeps its place in the schedule.
      if (!same_rate) {
        ++g.generation;
        if (*kind != UnicastKind::kDelayResp) heap_.push(Entry{now, it->second, g.generation, *kind});
      }
    } else if (tlv.type == TlvType::kCancelUnicastTransmission) {
      answer.type = TlvType::kAcknowledgeCancelUnicastTransmission;
      if (it != index_.end() && kind) end_grant(clients_[it->second].grants[static_cast<size_t>(*kind)], *kind);
    } else {
      continue;  // GRANT / ACK_CANCEL from a client: nothing to answer
    }
    reply.unicast.push_back(answer);
  }
  if (reply.unicast.empty()) return std::nullopt;
  return reply;
}

bool UnicastServer::delay_resp_granted(const PeerAddress& from, int64_t now) const {
  auto it = index_.find(from);
  if (it == index_.end()) return false;
  const UnicastGrant& g = clients_[it->second].grants[static_cast<size_t>(UnicastKind::kDelayResp)];
  return g.active && now < g.expires;
}

size_t UnicastServer::active_clients(int64_t now) const {
  return static_cast<size_t>(
      std::count_if(clients_.begin(), clients_.end(), [&](const UnicastClient& c) { return live(c, now); }));
}

// ---- client side ---------------------------------------------------------------

namespace {
constexpr std::array<UnicastKind, 3> kKinds{UnicastKind::kAnnounce, UnicastKind::kSync, UnicastKind::kDelayResp};

MessageType message_of(UnicastKind k) {
  switch (k) {
    case UnicastKind::kAnnounce: return MessageType::kAnnounce;
    case UnicastKind::kSync: return MessageType::kSync;
    case UnicastKind::kDelayResp: return MessageType::kDelayResp;
  }
  return MessageType::kAnnounce;
}
}  // namespace

UnicastRequester::UnicastRequester(std::vector<PeerAddress> masters, const UnicastRequestPolicy& policy)
    : policy_(policy) {
  for (auto& a : masters) masters_.push_back(Master{a, {}});
}

int64_t UnicastRequester::query_interval() const { return log_interval_ns(policy_.log_query_interval); }

int8_t UnicastRequester::log_period(UnicastKind kind) const {
  switch (kind) {
    case UnicastKind::kAnnounce: return policy_.log_announce;
    case UnicastKind::kSync: return policy_.log_sync;
    case UnicastKind::kDelayResp: return policy_.log_delay_resp;
  }
  return 0;
}

bool UnicastRequester::wanted(size_t master, UnicastKind kind) const {
  return kind == UnicastKind::kAnnounce || selected_ == master;
}

std::optional<size_t> UnicastRequester::index_of(const PeerAddress& a) const {
  // By IP when there is one (the MAC may be learnt later), else by MAC.
  for (size_t i = 0; i < masters_.size(); ++i) {
    const PeerAddress& m = masters_[i].address;
    const bool has_ip = std::any_of(m.ip.begin(), m.ip.end(), [](uint8_t b) { return b != 0; });
    if (has_ip ? m.ip == a.ip : m.mac == a.mac) return i;
  }
  return std::nullopt;
}

bool UnicastRequester::granted(size_t master, UnicastKind kind, int64_t now) const {
  if (master >= masters_.size()) return false;
  const Grant& g = masters_[master].grants[static_cast<size_t>(kind)];
  return g.granted && now < g.expires;
}

void UnicastRequester::select(std::optional<size_t> master, int64_t now) {
  if (master == selected_) return;
  if (selected_) {
    for (UnicastKind k : {UnicastKind::kSync, UnicastKind::kDelayResp}) {
      Grant& g = masters_[*selected_].grants[static_cast<size_t>(k)];
      if (g.granted || g.requested) cancels_.emplace_back(*selected_, k);
      g = Grant{};
    }
  }
  selected_ = master;
  if (selected_) {
    for (UnicastKind k : {UnicastKind::kSync, UnicastKind::kDelayResp}) {
      masters_[*selected_].grants[static_cast<size_t>(k)].next_action = now;
    }
  }
}

std::vector<UnicastRequester::Outgoing> UnicastRequester::poll(int64_t now) {
  std::vector<Outgoing> out;
  auto message_for = [&](size_t master) -> Outgoing& {
    for (auto& o : out) {
      if (o.master == master) return o;
    }
    out.push_back(Outgoing{master, {}});
    return out.back();
  };
  for (const auto& [master, kind] : cancels_) {
    message_for(master).tlvs.push_back(
        UnicastTlv{TlvType::kCancelUnicastTransmission, message_of(kind), 0, 0, false});
  }
  cancels_.clear();
  for (size_t i = 0; i < masters_.size(); ++i) {
    for (UnicastKind k : kKinds) {
      Grant& g = masters_[i].grants[static_cast<size_t>(k)];
      if (g.granted && now >= g.expires) g.granted = false;  // lapsed: ask again below
      if (!wanted(i, k) || now < g.next_action) continue;
      message_for(i).tlvs.push_back(
          UnicastTlv{TlvType::kRequestUnicastTransmission, message_of(k), log_period(k), policy_.duration_s, false});
      g.requested = true;
      g.next_action = now + query_interval();  // unanswered: ask again then
    }
  }
  return out;
}

std::optional<UnicastRequester::Outgoing> UnicastRequester::on_signaling(const Message& m, const PeerAddress& from,
                                                                          int64_t now) {
  const auto master = index_of(from);
  if (!master) return std::nullopt;
  Outgoing acks{*master, {}};
  for (const UnicastTlv& tlv : m.unicast) {
    const auto kind = kind_of(tlv.message);
    if (!kind) continue;
    Grant& g = masters_[*master].grants[static_cast<size_t>(*kind)];
    switch (tlv.type) {
      case TlvType::kGrantUnicastTransmission:
        if (!g.requested && !g.granted) break;  // not asked for (or cancelled since)
        g.requested = false;
        if (tlv.duration_s == 0) {
          ++denials_;
          g.granted = false;
          g.next_action = now + query_interval();
          break;
        }
        {
          // A master may grant less than asked, never more: the duration
          // becomes our renewal timer, so a peer's value is capped by ours.
          const int64_t duration_s = std::min(tlv.duration_s, policy_.duration_s);
          g.granted = true;
          g.log_period = tlv.log_period;
          g.expires = now + duration_s * 1'000'000'000;
          g.next_action = now + duration_s * 500'000'000;  // renew at half time
        }
        break;
      case TlvType::kCancelUnicastTransmission:
        g.granted = false;
        g.requested = false;
        g.next_action = now + query_interval();
        acks.tlvs.push_back(
            UnicastTlv{TlvType::kAcknowledgeCancelUnicastTransmission, tlv.message, 0, 0, false});
        break;
      default:
        break;  // REQUEST from a master, or ACK_CANCEL: nothing to do
    }
  }
  if (acks.tlvs.empty()) return std::nullopt;
  return acks;
}

}  // namespace meridian::ptp
