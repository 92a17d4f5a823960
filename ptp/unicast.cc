#include "unicast.h"

#include <algorithm>
#include <cstring>

namespace meridian::ptp {

size_t UnicastServer::AddressHash::operator()(const PeerAddress& a) const {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the address bytes
  for (uint8_t b : a.ip) h = (h ^ b) * 1099511628211ull;
  for (uint8_t b : a.mac) h = (h ^ b) * 1099511628211ull;
  return static_cast<size_t>(h);
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
    UnicastTlv answer;
    answer.message = tlv.message;
    const auto kind = kind_of(tlv.message);
    if (tlv.type == TlvType::kRequestUnicastTransmission) {
      answer.type = TlvType::kGrantUnicastTransmission;
      answer.log_period = tlv.log_period;
      answer.renewal_invited = true;
      const bool room = it != index_.end() || clients_.size() < policy_.max_clients;
      if (!kind || !room || tlv.log_period < min_log(*kind) || tlv.duration_s == 0) {
        answer.duration_s = 0;  // denied
        ++denied_;
        reply.unicast.push_back(answer);
        continue;
      }
      if (it == index_.end()) {
        it = index_.emplace(from, static_cast<uint32_t>(clients_.size())).first;
        clients_.push_back(UnicastClient{from, m.header.source, port, {}});
      }
      UnicastClient& c = clients_[it->second];
      c.identity = m.header.source;
      c.port = port;
      UnicastGrant& g = c.grants[static_cast<size_t>(*kind)];
      const bool was_active = g.active && now < g.expires;
      const bool same_rate = was_active && g.log_period == tlv.log_period;
      answer.duration_s = std::min(tlv.duration_s, policy_.max_duration_s);
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
      if (it != index_.end() && kind) {
        UnicastGrant& g = clients_[it->second].grants[static_cast<size_t>(*kind)];
        g.active = false;
        ++g.generation;
      }
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
  return static_cast<size_t>(std::count_if(clients_.begin(), clients_.end(), [&](const UnicastClient& c) {
    return std::any_of(c.grants.begin(), c.grants.end(), [&](const UnicastGrant& g) { return g.active && now < g.expires; });
  }));
}

}  // namespace meridian::ptp
