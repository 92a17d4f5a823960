#include "multicast_gw/host.h"

#include <algorithm>
#include <iterator>

namespace meridian::mcast {

namespace {

std::vector<IpAddress> set_op(const std::vector<IpAddress>& a, const std::vector<IpAddress>& b, char op) {
  std::vector<IpAddress> out;
  switch (op) {
    case '+': std::set_union(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out)); break;
    case '*': std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out)); break;
    default: std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out)); break;
  }
  return out;
}

}  // namespace

void merge_subscription(Subscription& into, const Subscription& more) {
  const bool ex_into = into.mode == FilterMode::kExclude, ex_more = more.mode == FilterMode::kExclude;
  if (!ex_into && !ex_more) {
    into.sources = set_op(into.sources, more.sources, '+');
  } else if (!ex_into) {
    into.sources = set_op(more.sources, into.sources, '-');
  } else if (!ex_more) {
    into.sources = set_op(into.sources, more.sources, '-');
  } else {
    into.sources = set_op(into.sources, more.sources, '*');
  }
  into.mode = ex_into || ex_more ? FilterMode::kExclude : FilterMode::kInclude;
}

Interest interest_of(const MembershipRouter& downstream, Millis now) { return interest_of(downstream.groups(), now); }

std::optional<Subscription> subscription_of(const GroupState& gs, Millis now) {
  Subscription s;
  s.mode = gs.mode;
  for (const auto& [src, rec] : gs.sources) {
    // INCLUDE: the sources wanted; EXCLUDE: the ones every host blocks (Y).
    if ((rec.expires > now) == (gs.mode == FilterMode::kInclude)) s.sources.push_back(src);
  }
  if (s.mode == FilterMode::kInclude && s.sources.empty()) return std::nullopt;
  return s;
}

Interest interest_of(const std::map<IpAddress, GroupState>& groups, Millis now) {
  Interest out;
  for (const auto& [g, gs] : groups) {
    if (auto s = subscription_of(gs, now)) out.emplace(g, std::move(*s));
  }
  return out;
}

Interest merge_interest(std::span<const MembershipRouter* const> downstream, Millis now) {
  std::vector<const std::map<IpAddress, GroupState>*> groups;
  for (const MembershipRouter* r : downstream) groups.push_back(&r->groups());
  return merge_interest(std::span<const std::map<IpAddress, GroupState>* const>(groups), now);
}

Interest merge_interest(std::span<const std::map<IpAddress, GroupState>* const> downstream,
                        std::span<const IpAddress> groups, Millis now) {
  Interest out;
  for (const auto& g : groups) {
    for (const auto* link : downstream) {
      auto it = link->find(g);
      if (it == link->end()) continue;
      auto s = subscription_of(it->second, now);
      if (!s) continue;
      auto [at, fresh] = out.emplace(g, *s);
      if (!fresh) merge_subscription(at->second, *s);
    }
  }
  return out;
}

Interest merge_interest(std::span<const std::map<IpAddress, GroupState>* const> downstream, Millis now) {
  Interest out;
  for (const auto* groups : downstream) {
    for (auto& [g, s] : interest_of(*groups, now)) {
      auto [at, fresh] = out.emplace(g, s);
      if (!fresh) merge_subscription(at->second, s);
    }
  }
  return out;
}

MembershipHost::MembershipHost(HostConfig cfg, uint64_t seed) : cfg_(cfg), rng_(seed) {}

Millis MembershipHost::random_delay(uint32_t max_ms) {
  // RFC 3376 §5.2: a random time in (0, Max Response Time].
  if (max_ms <= 1) return 1;
  return std::uniform_int_distribution<Millis>(1, max_ms)(rng_);
}

uint8_t MembershipHost::compatibility(Millis now) const {
  if (v1_querier_until_ > now) return 1;
  if (cfg_.family == 4 && v2_querier_until_ > now) return 2;
  return cfg_.speaks();
}

void MembershipHost::set_interest(const Interest& wanted, Millis now, HostOutput& out) {
  const Interest before = state_;
  state_ = wanted;
  auto a = before.begin(), b = wanted.begin();
  while (a != before.end() || b != wanted.end()) {
    if (b == wanted.end() || (a != before.end() && a->first < b->first)) {
      state_change(a->first, &a->second, nullptr, now, out);
      ++a;
    } else if (a == before.end() || b->first < a->first) {
      state_change(b->first, nullptr, &b->second, now, out);
      ++b;
    } else {
      if (a->second != b->second) state_change(a->first, &a->second, &b->second, now, out);
      ++a;
      ++b;
    }
  }
}

void MembershipHost::set_interest(const Interest& wanted, std::span<const IpAddress> groups, Millis now,
                                  HostOutput& out) {
  for (const auto& g : groups) {
    auto before = state_.find(g);
    auto after = wanted.find(g);
    std::optional<Subscription> was;
    if (before != state_.end()) was = before->second;
    const Subscription* is = after == wanted.end() ? nullptr : &after->second;
    if (was ? is && *was == *is : !is) continue;
    if (is) {
      state_[g] = *is;  // before the change: its records are read from the new state
    } else {
      state_.erase(before);
    }
    state_change(g, was ? &*was : nullptr, is, now, out);
  }
}

void MembershipHost::older_change(const IpAddress& g, bool joined, Millis now, HostOutput& out) {
  const uint8_t version = compatibility(now);
  if (joined) {
    out.older.push_back({g, MessageKind::kJoin, version});
    // RFC 2236 §3: the unsolicited report is repeated.
    Pending& p = pending_[g];
    p.filter_changes = static_cast<uint8_t>(cfg_.robustness - 1);
    p.allow.clear();
    p.block.clear();
    p.next = p.filter_changes ? now + random_delay(cfg_.unsolicited_report_interval_ms) : 0;
  } else {
    pending_.erase(g);
    // IGMPv1 has no leave (the membership times out at the router).
    if (!(cfg_.family == 4 && version == 1)) out.older.push_back({g, MessageKind::kLeave, version});
  }
  ++reports_sent_;
}

/// RFC 3376 §5.1: INCLUDE(A)→INCLUDE(B): ALLOW(B-A), BLOCK(A-B);
/// EXCLUDE(A)→EXCLUDE(B): ALLOW(A-B), BLOCK(B-A); a filter-mode change:
/// TO_EX(B) / TO_IN(B). Each is sent now and [Robustness Variable] - 1 more
/// times; a later change folds into what is still pending.
void MembershipHost::state_change(const IpAddress& g, const Subscription* before, const Subscription* after,
                                  Millis now, HostOutput& out) {
  if (compatibility(now) < cfg_.newest_version()) {
    if (!before || !after) older_change(g, after != nullptr, now, out);
    return;
  }
  static const Subscription kNothing{};
  const Subscription& b = before ? *before : kNothing;
  const Subscription& a = after ? *after : kNothing;
  Pending& p = pending_[g];
  const uint8_t rv = cfg_.robustness;
  if (a.mode != b.mode) {
    p.filter_changes = rv;
    p.allow.clear();
    p.block.clear();
  } else {
    const bool include = a.mode == FilterMode::kInclude;
    for (const auto& s : set_op(include ? a.sources : b.sources, include ? b.sources : a.sources, '-')) {
      p.allow[s] = rv;
      p.block.erase(s);
    }
    for (const auto& s : set_op(include ? b.sources : a.sources, include ? a.sources : b.sources, '-')) {
      p.block[s] = rv;
      p.allow.erase(s);
    }
  }
  send_changes(g, p, out);
  const bool more = p.filter_changes || !p.allow.empty() || !p.block.empty();
  p.next = more ? now + random_delay(cfg_.unsolicited_report_interval_ms) : 0;
}

void MembershipHost::send_changes(const IpAddress& g, Pending& p, HostOutput& out) {
  const auto at = state_.find(g);
  if (p.filter_changes) {
    const bool exclude = at != state_.end() && at->second.mode == FilterMode::kExclude;
    out.records.push_back({exclude ? RecordType::kToExclude : RecordType::kToInclude, g,
                           at != state_.end() ? at->second.sources : std::vector<IpAddress>{}});
    --p.filter_changes;
  } else {
    for (auto* list : {&p.allow, &p.block}) {
      if (list->empty()) continue;
      GroupRecord r{list == &p.allow ? RecordType::kAllow : RecordType::kBlock, g, {}};
      for (auto it = list->begin(); it != list->end();) {
        r.sources.push_back(it->first);
        it = --it->second ? std::next(it) : list->erase(it);
      }
      out.records.push_back(std::move(r));
    }
  }
  ++reports_sent_;
}

void MembershipHost::current_state(const IpAddress& g, const std::vector<IpAddress>& only, HostOutput& out) const {
  const auto at = state_.find(g);
  if (at == state_.end()) return;
  const Subscription& s = at->second;
  if (only.empty()) {
    out.records.push_back({s.mode == FilterMode::kExclude ? RecordType::kIsExclude : RecordType::kIsInclude, g,
                           s.sources});
    return;
  }
  // §5.2 table: INCLUDE(A) answers IS_IN(A*Q), EXCLUDE(A) answers IS_IN(Q-A).
  auto wanted = s.mode == FilterMode::kInclude ? set_op(s.sources, only, '*') : set_op(only, s.sources, '-');
  if (!wanted.empty()) out.records.push_back({RecordType::kIsInclude, g, std::move(wanted)});
}

void MembershipHost::on_query(const Membership& m, Millis now) {
  if (m.kind != MessageKind::kQuery || m.family != cfg_.family) return;
  const Query& q = m.query;
  // §7.2.1: an older general query switches the interface for the Older
  // Version Querier Present Interval; an older specific query does not.
  const Millis older_until = now + Millis{cfg_.robustness} * cfg_.query_interval_ms + q.max_response_ms;
  if (q.general() && m.version < cfg_.newest_version()) {
    (m.version == 1 ? v1_querier_until_ : v2_querier_until_) = older_until;
  }
  const Millis answer_at = now + random_delay(q.max_response_ms);
  // §5.2: an earlier pending general answer covers this query too.
  if (general_answer_at_ && general_answer_at_ <= answer_at) return;
  if (q.general()) {
    general_answer_at_ = answer_at;
    return;
  }
  if (!state_.count(q.group)) return;  // nothing to report
  Pending& p = pending_[q.group];
  std::vector<IpAddress> sources = q.sources;
  std::sort(sources.begin(), sources.end());
  if (!p.answer) {
    p.answer_sources = std::move(sources);
  } else if (sources.empty() || p.answer_sources.empty()) {
    p.answer_sources.clear();  // the whole group
  } else {
    p.answer_sources = set_op(p.answer_sources, sources, '+');
  }
  p.answer_at = p.answer ? std::min(p.answer_at, answer_at) : answer_at;
  p.answer = true;
}

void MembershipHost::tick(Millis now, HostOutput& out) {
  const bool older = compatibility(now) < cfg_.newest_version();
  if (general_answer_at_ && now >= general_answer_at_) {
    general_answer_at_ = 0;
    for (const auto& [g, s] : state_) {
      if (older) out.older.push_back({g, MessageKind::kJoin, compatibility(now)});
      else current_state(g, {}, out);
    }
    if (!state_.empty()) ++reports_sent_;
  }
  for (auto it = pending_.begin(); it != pending_.end();) {
    const IpAddress& g = it->first;
    Pending& p = it->second;
    if (p.next && now >= p.next) {
      if (older) {
        if (state_.count(g)) out.older.push_back({g, MessageKind::kJoin, compatibility(now)});
        if (p.filter_changes) --p.filter_changes;
        p.allow.clear();
        p.block.clear();
      } else {
        send_changes(g, p, out);
      }
      const bool more = p.filter_changes || !p.allow.empty() || !p.block.empty();
      p.next = more ? now + random_delay(cfg_.unsolicited_report_interval_ms) : 0;
    }
    if (p.answer && now >= p.answer_at) {
      p.answer = false;
      if (older) {
        if (state_.count(g)) out.older.push_back({g, MessageKind::kJoin, compatibility(now)});
      } else {
        current_state(g, p.answer_sources, out);
      }
      p.answer_sources.clear();
    }
    it = !p.next && !p.answer ? pending_.erase(it) : std::next(it);
  }
}

Millis MembershipHost::next_deadline() const {
  Millis next = general_answer_at_ ? general_answer_at_ : INT64_MAX;
  for (const auto& [g, p] : pending_) {
    if (p.next) next = std::min(next, p.next);
    if (p.answer) next = std::min(next, p.answer_at);
  }
  return next;
}

}  // namespace meridian::mcast
