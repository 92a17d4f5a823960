#include "host/neighbor_resolver.h"

namespace meridian::host {

const char* NeighborResolver::state_name(State s) {
  switch (s) {
    case State::kIncomplete: return "incomplete";
    case State::kReachable: return "reachable";
    case State::kProbing: return "probing";
    case State::kFailed: return "failed";
    case State::kStatic: return "static";
  }
  return "?";
}

void NeighborResolver::want(const IpAddress& ip, uint16_t port, double now, double reachable_time) {
  auto [it, inserted] = entries_.try_emplace(HopKey{port, ip});
  Entry& e = it->second;
  if (!inserted) {
    if (e.state == State::kStatic) return;
    e.reachable_time = reachable_time;
    // Shorter than what the current answer was trusted for: re-probe sooner.
    const double until = e.resolved_at + (reachable_time > 0 ? reachable_time : timing_.reachable_time);
    if (e.state == State::kReachable && until < e.next_action) e.next_action = until;
    return;
  }
  e.port = port;
  e.next_action = now;  // solicit on the next tick
  e.reachable_time = reachable_time;
}

void NeighborResolver::set_static(const IpAddress& ip, uint16_t port, const MacAddress& mac) {
  Entry& e = entries_[HopKey{port, ip}];
  e = Entry{};
  e.port = port;
  e.state = State::kStatic;
  e.mac = mac;
  e.has_mac = true;
}

void NeighborResolver::retain(const std::set<HopKey>& keep) {
  std::erase_if(entries_, [&keep](const auto& kv) {
    return kv.second.state != State::kStatic && !keep.count(kv.first);
  });
}

bool NeighborResolver::on_reply(const IpAddress& ip, uint16_t port, const MacAddress& mac, double now) {
  auto it = entries_.find(HopKey{port, ip});
  if (it == entries_.end() || it->second.state == State::kStatic) return false;
  Entry& e = it->second;
  const bool changed = !e.has_mac || e.mac != mac || e.state == State::kFailed || e.state == State::kIncomplete;
  e.mac = mac;
  e.has_mac = true;
  e.state = State::kReachable;
  e.tries = 0;
  e.resolved_at = now;
  e.next_action = now + (e.reachable_time > 0 ? e.reachable_time : timing_.reachable_time);
  return changed;
}

bool NeighborResolver::tick(double now, std::vector<Solicit>& out) {
  bool changed = false;
  for (auto& [key, e] : entries_) {
    if (e.state == State::kStatic || now < e.next_action) continue;
    switch (e.state) {
      case State::kReachable:
        e.state = State::kProbing;
        e.tries = 0;
        [[fallthrough]];
      case State::kProbing:
      case State::kIncomplete:
        if (e.tries >= timing_.max_tries) {
          changed = changed || e.has_mac;
          e.state = State::kFailed;
          e.has_mac = false;
          e.next_action = now + timing_.failed_retry;
          break;
        }
        ++e.tries;
        out.push_back({key.ip, e.port, e.state == State::kProbing ? std::optional(e.mac) : std::nullopt});
        e.next_action = now + timing_.retry_interval;
        break;
      case State::kStatic:
        break;
      case State::kFailed:
        e.state = State::kIncomplete;
        e.tries = 1;
        out.push_back({key.ip, e.port, std::nullopt});
        e.next_action = now + timing_.retry_interval;
        break;
    }
  }
  return changed;
}

std::optional<MacAddress> NeighborResolver::lookup(const IpAddress& ip, uint16_t port) const {
  auto it = entries_.find(HopKey{port, ip});
  if (it == entries_.end() || !it->second.has_mac) return std::nullopt;
  return it->second.mac;
}

}  // namespace meridian::host
