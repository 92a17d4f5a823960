#include "multicast_gw/router.h"

#include <algorithm>
#include <array>

#include "net/wire.h"

namespace meridian::mcast {

std::string_view ignore_name(Ignore i) {
  switch (i) {
#define X(id, name, help) \
  case Ignore::id: return name;
    MERIDIAN_MCAST_IGNORES(X)
#undef X
    case Ignore::kCount: break;
  }
  return "?";
}

uint8_t GroupState::compatibility(Millis now, uint8_t family, uint8_t newest) const {
  if (v1_host_until > now) return 1;
  if (family == 4 && v2_host_until > now) return 2;
  return newest;
}

bool GroupState::wants(const IpAddress& source, Millis now) const {
  const auto it = sources.find(source);
  if (mode == FilterMode::kInclude) return it != sources.end() && it->second.expires > now;
  return it == sources.end() || it->second.expires > now;  // only the Y list (stopped timers) is blocked
}

namespace {

bool host_wants(const HostRecord& h, const IpAddress& s) {
  const bool listed = std::binary_search(h.sources.begin(), h.sources.end(), s);
  return h.mode == FilterMode::kInclude ? listed : !listed;
}

std::vector<IpAddress> sorted_unique(std::vector<IpAddress> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

}  // namespace

MembershipRouter::MembershipRouter(RouterConfig cfg, Millis now) : cfg_(std::move(cfg)), timers_(cfg_.timers) {
  if (cfg_.querier) {
    // RFC 3376 §6.6.2: a router starts as the querier, with its startup queries.
    querier_ = true;
    startup_left_ = timers_.startup_count();
    next_general_ = now;
  }
  last_tick_ = now;
}

const GroupState* MembershipRouter::group(const IpAddress& g) const {
  const auto it = groups_.find(g);
  return it == groups_.end() ? nullptr : &it->second;
}

bool MembershipRouter::in_ssm(const IpAddress& g) const {
  for (const auto& r : cfg_.ssm_ranges) {
    if (r.contains(g)) return true;
  }
  return false;
}

bool SsmRange::contains(const IpAddress& group) const {
  if (group.family != prefix.address.family) return false;
  if (!any_scope) return prefix.contains(group);
  IpAddress g = group;
  g.bytes[1] = static_cast<uint8_t>((g.bytes[1] & 0xf0) | (prefix.address.bytes[1] & 0x0f));
  return prefix.contains(g);
}

std::optional<SsmRange> parse_ssm_range(const std::string& text) {
  SsmRange r;
  std::string t = text;
  if (t.size() > 4 && (t[0] == 'f' || t[0] == 'F') && (t[1] == 'f' || t[1] == 'F') && t[2] == '3' &&
      (t[3] == 'x' || t[3] == 'X')) {
    t[3] = '0';
    r.any_scope = true;
  }
  auto p = config::parse_prefix(t, false);
  if (!p || !p->address.is_multicast()) return std::nullopt;
  if (r.any_scope && (p->address.is_v4() || p->length < 16)) return std::nullopt;
  r.prefix = *p;
  return r;
}

std::string to_string(const SsmRange& r) {
  std::string s = config::to_string(r.prefix);
  if (r.any_scope) s[3] = 'x';
  return s;
}

std::vector<SsmRange> default_ssm_ranges() { return {*parse_ssm_range("232.0.0.0/8"), *parse_ssm_range("ff3x::/32")}; }

Query MembershipRouter::general_query() const {
  Query q;
  q.group.family = cfg_.family;
  q.max_response_ms = timers_.query_response_interval_ms;
  q.robustness = timers_.robustness <= 7 ? timers_.robustness : 0;
  q.interval_s = timers_.query_interval_ms / 1000;
  return q;
}

void MembershipRouter::on_membership(const Membership& m, const IpAddress& host, Millis now, RouterOutput& out) {
  if (m.family != cfg_.family) {
    ++counters_.ignored[static_cast<size_t>(Ignore::kWrongFamily)];
    return;
  }
  switch (m.kind) {
    case MessageKind::kQuery: return;
    case MessageKind::kReport: ++counters_.reports; break;
    case MessageKind::kJoin: ++counters_.joins; break;
    case MessageKind::kLeave: ++counters_.leaves; break;
  }
  for (const auto& r : m.records) {
    ++counters_.records;
    apply_record(r, host, m.kind == MessageKind::kReport ? cfg_.newest_version() : m.version, now, out);
  }
}

void MembershipRouter::apply_record(const GroupRecord& r, const IpAddress& host, uint8_t version, Millis now,
                                    RouterOutput& out) {
  auto ignore = [&](Ignore why) { ++counters_.ignored[static_cast<size_t>(why)]; };
  const IpAddress& g = r.group;
  if (g.family != cfg_.family) return ignore(Ignore::kWrongFamily);
  if (net::link_local_group(g.family, g.bytes.data())) return ignore(Ignore::kLinkLocalGroup);
  const uint8_t newest = cfg_.newest_version();
  const bool older = version < newest;
  RecordType t = r.type;
  // RFC 4604 §2.2.1: no any-source state in the SSM range.
  if (in_ssm(g) && (older || t == RecordType::kIsExclude || t == RecordType::kToExclude)) {
    return ignore(Ignore::kSsmExclude);
  }
  // Timers run out between ticks too: catch the group up before the record.
  expire(g, now, out);
  auto it = groups_.find(g);
  GroupState* gs = it == groups_.end() ? nullptr : &it->second;
  // §7.3.2: the group's compatibility mode (an older report switches it at once).
  uint8_t compat = std::min(cfg_.speaks(), gs ? gs->compatibility(now, cfg_.family, newest) : newest);
  if (older) compat = std::min(compat, version);
  std::vector<IpAddress> b = sorted_unique(r.sources);
  // A source no packet comes from would also read as (*,G) in the routes.
  const size_t listed = b.size();
  std::erase_if(b, [](const IpAddress& s) {
    const bool loopback = s.is_v4() ? s.bytes[0] == 127 : s == IpAddress::v6(std::array<uint8_t, 16>{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}.data());
    return s.is_unspecified() || s.is_multicast() || loopback;
  });
  if (b.size() != listed) {
    ignore(Ignore::kBadSource);
    // Only bad sources in an INCLUDE-side record: not a leave, nothing.
    if (b.empty() && t != RecordType::kIsExclude && t != RecordType::kToExclude) return;
  }
  if (compat < newest) {
    if (t == RecordType::kBlock) return ignore(Ignore::kCompatibility);
    if (t == RecordType::kToExclude) b.clear();
    // IGMPv1 mode also ignores leaves (TO_IN, RFC 9776 §7.3.2).
    if (cfg_.family == 4 && compat == 1 && t == RecordType::kToInclude) return ignore(Ignore::kCompatibility);
  }
  const bool excludes = t == RecordType::kIsExclude || t == RecordType::kToExclude;
  if (!gs) {
    // INCLUDE({}) is the state of an unknown group: only a record that adds
    // to it creates one.
    if (!excludes && (b.empty() || t == RecordType::kBlock)) return;
    if (cfg_.max_groups && groups_.size() >= cfg_.max_groups) return ignore(Ignore::kGroupLimit);
    gs = &groups_.emplace(g, GroupState{}).first->second;
    gs->created = now;
  }
  // An older report (a join; not a leave) starts its host-present timer.
  if (older && t == RecordType::kIsExclude) {
    (version == 1 ? gs->v1_host_until : gs->v2_host_until) = now + timers_.older_host_present_interval();
  }

  const Millis gmi = now + timers_.group_membership_interval();
  auto& src = gs->sources;
  auto in_b = [&](const IpAddress& s) { return std::binary_search(b.begin(), b.end(), s); };
  bool limit_hit = false;
  auto set = [&](const IpAddress& s, Millis expires) {
    if (auto at = src.find(s); at != src.end()) {
      at->second.expires = expires;
    } else if (cfg_.max_sources && src.size() >= cfg_.max_sources) {
      limit_hit = true;
    } else {
      src.emplace(s, SourceRecord{expires, 0});
    }
  };
  auto erase_not_in_b = [&] { std::erase_if(src, [&](const auto& kv) { return !in_b(kv.first); }); };
  std::vector<IpAddress> query;  // Send Q(G, query)
  bool query_g = false;          // Send Q(G)
  if (gs->mode == FilterMode::kInclude) {
    switch (t) {
      case RecordType::kIsInclude:
      case RecordType::kAllow:  // INCLUDE(A+B), (B)=GMI
        for (const auto& s : b) set(s, gmi);
        break;
      case RecordType::kToInclude:  // INCLUDE(A+B), (B)=GMI, Q(G,A-B)
        for (const auto& [s, rec] : src) {
          if (!in_b(s)) query.push_back(s);
        }
        for (const auto& s : b) set(s, gmi);
        break;
      case RecordType::kBlock:  // INCLUDE(A), Q(G,A*B)
        for (const auto& s : b) {
          if (src.count(s)) query.push_back(s);
        }
        break;
      case RecordType::kIsExclude:
      case RecordType::kToExclude:  // EXCLUDE(A*B,B-A), (B-A)=0, Delete(A-B), [Q(G,A*B)], GT=GMI
        for (const auto& s : b) {
          if (src.count(s)) {
            if (t == RecordType::kToExclude) query.push_back(s);
          } else {
            set(s, now);
          }
        }
        erase_not_in_b();
        gs->mode = FilterMode::kExclude;
        gs->group_timer = gmi;
        break;
    }
  } else {
    auto running = [&](const IpAddress& s) {
      const auto at = src.find(s);
      return at != src.end() && at->second.expires > now;
    };
    switch (t) {
      case RecordType::kIsInclude:
      case RecordType::kAllow:  // EXCLUDE(X+A,Y-A), (A)=GMI
        for (const auto& s : b) set(s, gmi);
        break;
      case RecordType::kToInclude:  // EXCLUDE(X+A,Y-A), (A)=GMI, Q(G,X-A), Q(G)
        for (const auto& [s, rec] : src) {
          if (rec.expires > now && !in_b(s)) query.push_back(s);
        }
        for (const auto& s : b) set(s, gmi);
        query_g = true;
        break;
      case RecordType::kBlock:  // EXCLUDE(X+(A-Y),Y), (A-X-Y)=GT, Q(G,A-Y)
        for (const auto& s : b) {
          if (!src.count(s)) set(s, gs->group_timer);
          if (running(s)) query.push_back(s);
        }
        break;
      case RecordType::kIsExclude:  // EXCLUDE(A-Y,Y*A), (A-X-Y)=GMI, Delete(X-A), Delete(Y-A), GT=GMI
        for (const auto& s : b) {
          if (!src.count(s)) set(s, gmi);
        }
        erase_not_in_b();
        gs->group_timer = gmi;
        break;
      case RecordType::kToExclude:  // EXCLUDE(A-Y,Y*A), (A-X-Y)=GT, Delete(X-A), Delete(Y-A), Q(G,A-Y), GT=GMI
        for (const auto& s : b) {
          if (!src.count(s)) set(s, gs->group_timer);
        }
        erase_not_in_b();
        for (const auto& s : b) {
          if (running(s)) query.push_back(s);
        }
        gs->group_timer = gmi;
        break;
    }
  }
  if (limit_hit) ignore(Ignore::kSourceLimit);
  // Fast leave needs every reporter tracked: newest-version hosts (older ones
  // suppress each other's reports) with an address of their own.
  // One reporter that cannot be tracked turns fast leave off for the
  // group's life: a leave could otherwise drop what it still wants.
  if (cfg_.fast_leave && !gs->untracked) {
    const bool trackable = compat == newest && !host.is_unspecified();
    const bool tracked = trackable && track_host(*gs, {t, g, b}, host, now);
    if (!tracked) {
      if (trackable) ignore(Ignore::kHostLimit);
      gs->untracked = true;
      gs->hosts.clear();
    }
  }
  const bool fast = cfg_.fast_leave && !gs->untracked;
  if (fast) {
    fast_leave(*gs, query, query_g, now);
  } else if (querier_ && (query_g || !query.empty())) {
    // Only the querier sends (and lowers its timers for) specific queries;
    // the others lower theirs when the querier's query arrives (on_query).
    if (!query.empty()) query_sources(*gs, query, now);
    if (query_g) query_group(*gs, now);
    send_specific(g, *gs, now, out);
  }
  out.note_change(g);
  expire(g, now, out);
}

bool MembershipRouter::track_host(GroupState& gs, const GroupRecord& r, const IpAddress& host, Millis now) {
  auto at = gs.hosts.find(host);
  if (at == gs.hosts.end() && gs.hosts.size() >= cfg_.max_hosts) return false;
  HostRecord h = at == gs.hosts.end() ? HostRecord{} : at->second;
  std::vector<IpAddress> merged;
  auto unite = [&] {
    std::set_union(h.sources.begin(), h.sources.end(), r.sources.begin(), r.sources.end(), std::back_inserter(merged));
  };
  auto subtract = [&] {
    std::set_difference(h.sources.begin(), h.sources.end(), r.sources.begin(), r.sources.end(),
                        std::back_inserter(merged));
  };
  switch (r.type) {
    case RecordType::kIsInclude:
    case RecordType::kToInclude: h.mode = FilterMode::kInclude; merged = r.sources; break;
    case RecordType::kIsExclude:
    case RecordType::kToExclude: h.mode = FilterMode::kExclude; merged = r.sources; break;
    case RecordType::kAllow: h.mode == FilterMode::kInclude ? unite() : subtract(); break;
    case RecordType::kBlock: h.mode == FilterMode::kInclude ? subtract() : unite(); break;
  }
  if (cfg_.max_sources && merged.size() > cfg_.max_sources) merged.resize(cfg_.max_sources);
  h.sources = std::move(merged);
  h.expires = now + timers_.group_membership_interval();
  if (h.mode == FilterMode::kInclude && h.sources.empty()) {
    if (at != gs.hosts.end()) gs.hosts.erase(at);
  } else {
    gs.hosts[host] = std::move(h);
  }
  return true;
}

/// Explicit tracking answers the specific queries at once: what no tracked
/// host still wants stops now, what one does is refreshed; nothing is sent.
void MembershipRouter::fast_leave(GroupState& gs, const std::vector<IpAddress>& queried, bool query_g, Millis now) {
  auto wanted = [&](const IpAddress& s) {
    for (const auto& [addr, h] : gs.hosts) {
      if (h.expires > now && host_wants(h, s)) return true;
    }
    return false;
  };
  for (const auto& s : queried) {
    auto at = gs.sources.find(s);
    if (at == gs.sources.end()) continue;
    at->second.expires = wanted(s) ? now + timers_.group_membership_interval() : now;
    at->second.queries_left = 0;
  }
  if (query_g) {
    const bool excluder = std::any_of(gs.hosts.begin(), gs.hosts.end(), [&](const auto& kv) {
      return kv.second.expires > now && kv.second.mode == FilterMode::kExclude;
    });
    if (!excluder) gs.group_timer = now;
    gs.group_queries_left = 0;
  }
}

void MembershipRouter::query_sources(GroupState& gs, const std::vector<IpAddress>& sources, Millis now) {
  const Millis lmqt = now + timers_.last_member_query_time();
  for (const auto& s : sources) {
    auto at = gs.sources.find(s);
    if (at == gs.sources.end() || at->second.expires <= lmqt) continue;  // RFC 9776 §6.6.3.2
    at->second.expires = lmqt;
    at->second.queries_left = timers_.last_member_query_count;
  }
}

void MembershipRouter::query_group(GroupState& gs, Millis now) {
  const Millis lmqt = now + timers_.last_member_query_time();
  if (gs.mode == FilterMode::kExclude && gs.group_timer > lmqt) gs.group_timer = lmqt;
  gs.group_queries_left = timers_.last_member_query_count;
}

/// Sends what is pending for the group: Q(G) (S set once a report has
/// refreshed the group timer past LMQT), then Q(G,S) split by the same
/// rule into a message with S set and one with S clear (§6.6.3.2).
void MembershipRouter::send_specific(const IpAddress& g, GroupState& gs, Millis now, RouterOutput& out) {
  const Millis lmqt = now + timers_.last_member_query_time();
  Query base = general_query();
  base.group = g;
  base.max_response_ms = timers_.last_member_query_interval_ms;
  bool more = false;
  if (gs.group_queries_left) {
    Query q = base;
    q.suppress_router_side = gs.mode == FilterMode::kExclude && gs.group_timer > lmqt;
    out.queries.push_back(std::move(q));
    ++counters_.queries_sent;
    more |= --gs.group_queries_left > 0;
  }
  Query with_s = base, without_s = base;
  with_s.suppress_router_side = true;
  for (auto& [s, rec] : gs.sources) {
    if (!rec.queries_left) continue;
    (rec.expires > lmqt ? with_s : without_s).sources.push_back(s);
    more |= --rec.queries_left > 0;
  }
  // RFC 3376 §4.1.8: as many sources as fit the MTU in one query.
  const size_t per_query = cfg_.family == 4 ? (cfg_.mtu - 24 - 12) / 4 : (cfg_.mtu - 48 - 28) / 16;
  for (Query* q : {&with_s, &without_s}) {
    for (size_t first = 0; first < q->sources.size(); first += per_query) {
      Query part = *q;
      part.sources.assign(q->sources.begin() + static_cast<long>(first),
                          q->sources.begin() + static_cast<long>(std::min(first + per_query, q->sources.size())));
      out.queries.push_back(std::move(part));
      ++counters_.queries_sent;
    }
  }
  gs.next_query = more ? now + timers_.last_member_query_interval_ms : 0;
}

void MembershipRouter::on_query(const Membership& m, const IpAddress& from, Millis now, RouterOutput& out) {
  if (m.family != cfg_.family || m.kind != MessageKind::kQuery) return;
  if (from == cfg_.address && !from.is_unspecified()) return;  // our own, looped back
  ++counters_.queries_received;
  const Query& q = m.query;
  // Election (§6.6.2): a lower address wins. A query from 0.0.0.0 / :: (a
  // snooping switch's) is honoured for its timers but elects nobody.
  if (!from.is_unspecified() && (cfg_.address.is_unspecified() || from < cfg_.address || !cfg_.querier)) {
    if (querier_) stop_querying();
    other_querier_ = from;
    // §4.1.6, §4.1.7: non-queriers adopt the querier's robustness and
    // interval; a 0 (or a value over 7) means our own.
    const bool advertises = m.version == cfg_.newest_version();  // older queries carry neither
    heard_robustness_ = advertises ? q.robustness : 0;
    heard_interval_ms_ = advertises ? q.interval_s * 1000 : 0;
    if (advertises) {
      timers_.robustness = heard_robustness_ ? heard_robustness_ : cfg_.timers.robustness;
      timers_.query_interval_ms = heard_interval_ms_ ? heard_interval_ms_ : cfg_.timers.query_interval_ms;
    }
    other_querier_until_ = now + timers_.other_querier_present_interval();
  }
  // §6.6.1: a specific query with S clear lowers the timers it names.
  if (q.general() || q.suppress_router_side) return;
  auto it = groups_.find(q.group);
  if (it == groups_.end()) return;
  GroupState& gs = it->second;
  const Millis lmqt = now + timers_.last_member_query_time();
  if (q.sources.empty()) {
    if (gs.mode == FilterMode::kExclude && gs.group_timer > lmqt) gs.group_timer = lmqt;
  } else {
    for (const auto& s : q.sources) {
      auto at = gs.sources.find(s);
      if (at != gs.sources.end() && at->second.expires > lmqt) at->second.expires = lmqt;
    }
  }
  (void)out;
}

void MembershipRouter::stop_querying() {
  querier_ = false;
  startup_left_ = 0;
  // Its pending specific queries are another querier's business now.
  for (auto& [g, gs] : groups_) {
    gs.group_queries_left = 0;
    gs.next_query = 0;
    for (auto& [s, rec] : gs.sources) rec.queries_left = 0;
  }
}

void MembershipRouter::reconfigure(RouterConfig cfg, Millis now, RouterOutput& out) {
  const bool fast_leave_was_off = !cfg_.fast_leave;
  cfg_ = std::move(cfg);
  // A non-querier keeps what the querier it hears advertised (§4.1.6-7).
  timers_ = cfg_.timers;
  const bool other_heard = !querier_ && other_querier_until_ > now;
  if (other_heard && heard_robustness_) timers_.robustness = heard_robustness_;
  if (other_heard && heard_interval_ms_) timers_.query_interval_ms = heard_interval_ms_;
  if (cfg_.fast_leave && fast_leave_was_off) {
    // Members that joined while no host was tracked are not in the lists:
    // one tracked leave must not end the group for them.
    for (auto& [g, gs] : groups_) gs.untracked = true;
  }
  if (!cfg_.querier) {
    if (querier_) stop_querying();
  } else if (querier_) {
    // A shorter interval takes effect now, not after the old one runs out.
    next_general_ = std::min(next_general_, now + (startup_left_ ? timers_.startup_interval() : timers_.query_interval_ms));
  } else if (!other_heard || (!cfg_.address.is_unspecified() && cfg_.address < other_querier_)) {
    // Enabled with no other querier heard, or our new address wins the
    // election: we are the querier, starting as a router does (§6.6.2).
    querier_ = true;
    timers_ = cfg_.timers;
    startup_left_ = timers_.startup_count();
    next_general_ = now;
    other_querier_until_ = 0;  // beaten (or long gone)
  }
  std::vector<IpAddress> now_ssm;
  for (const auto& [g, gs] : groups_) {
    if (gs.mode == FilterMode::kExclude && in_ssm(g)) now_ssm.push_back(g);
  }
  for (const auto& g : now_ssm) {
    GroupState& gs = groups_.at(g);
    gs.group_timer = now;  // as if it ran out: the requested sources stay, INCLUDE
    gs.v1_host_until = gs.v2_host_until = 0;  // older-version joins are (*,G) too
    gs.group_queries_left = 0;                // no Q(G) for state that is gone
    std::erase_if(gs.hosts, [](const auto& kv) { return kv.second.mode == FilterMode::kExclude; });
    out.note_change(g);
    expire(g, now, out);
  }
}

bool MembershipRouter::expire(const IpAddress& g, Millis now, RouterOutput& out) {
  auto it = groups_.find(g);
  if (it == groups_.end()) return true;
  GroupState& gs = it->second;
  bool changed = false;
  // §6.5: the group timer ends EXCLUDE mode; what still runs stays, INCLUDE.
  if (gs.mode == FilterMode::kExclude && gs.group_timer <= now) {
    gs.mode = FilterMode::kInclude;
    gs.group_timer = 0;
    changed = true;
  }
  if (gs.mode == FilterMode::kInclude) {
    changed |= std::erase_if(gs.sources, [&](const auto& kv) { return kv.second.expires <= now; }) > 0;
  } else {
    // An EXCLUDE-mode source whose timer ran out moves to the blocked list.
    for (const auto& [s, rec] : gs.sources) changed |= rec.expires > last_tick_ && rec.expires <= now;
  }
  std::erase_if(gs.hosts, [&](const auto& kv) { return kv.second.expires <= now; });
  if (changed) out.note_change(g);
  if (gs.mode == FilterMode::kInclude && gs.sources.empty()) {
    groups_.erase(it);
    out.note_change(g);
    return true;
  }
  return false;
}

void MembershipRouter::tick(Millis now, RouterOutput& out) {
  if (!querier_ && cfg_.querier && other_querier_until_ && now >= other_querier_until_) {
    // §6.6.2: the other querier went quiet; take over with our own timers.
    querier_ = true;
    timers_ = cfg_.timers;
    next_general_ = now;
  }
  if (querier_ && now >= next_general_) {
    out.queries.push_back(general_query());
    ++counters_.queries_sent;
    if (startup_left_) --startup_left_;
    next_general_ = now + (startup_left_ ? timers_.startup_interval() : timers_.query_interval_ms);
  }
  std::vector<IpAddress> names;
  names.reserve(groups_.size());
  for (const auto& [g, gs] : groups_) names.push_back(g);
  for (const auto& g : names) {
    GroupState& gs = groups_.at(g);
    if (gs.next_query && now >= gs.next_query) {
      if (querier_) send_specific(g, gs, now, out);
      else gs.next_query = 0;
    }
    expire(g, now, out);
  }
  last_tick_ = now;
}

Millis MembershipRouter::next_deadline() const {
  Millis next = INT64_MAX;
  auto consider = [&](Millis t) {
    if (t > last_tick_ && t < next) next = t;
  };
  if (querier_) next = std::min(next, next_general_);
  else if (cfg_.querier && other_querier_until_) next = std::min(next, other_querier_until_);
  for (const auto& [g, gs] : groups_) {
    if (gs.mode == FilterMode::kExclude) consider(gs.group_timer);
    if (gs.next_query) next = std::min(next, gs.next_query);
    for (const auto& [s, rec] : gs.sources) consider(rec.expires);
    for (const auto& [h, rec] : gs.hosts) consider(rec.expires);
  }
  return next;
}

}  // namespace meridian::mcast
