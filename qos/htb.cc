#include "qos/htb.h"

#include <algorithm>
#include <bit>

namespace meridian::qos {

namespace {

/// Picoseconds per byte at `bps`, scaled by 2^20 (exact for round rates, and
/// within 1e-9 otherwise, so 100 Gbit/s with 64-byte packets stays accurate).
uint64_t ps_per_byte_mult(uint64_t bps) {
  const unsigned __int128 num = static_cast<unsigned __int128>(8 * kPicosPerSecond) << 20;
  return static_cast<uint64_t>((num + bps / 2) / bps);
}

int64_t cost_ps(uint64_t bytes, uint64_t mult) {
  return static_cast<int64_t>((static_cast<unsigned __int128>(bytes) * mult) >> 20);
}

uint64_t xorshift(uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

}  // namespace

uint64_t default_burst(uint64_t rate_bps) { return rate_bps / 8000 + 1600; }

std::string check_tree(const TreeSpec& tree) {
  const size_t n = tree.classes.size();
  if (n == 0) return "the tree has no classes";
  unsigned roots = 0;
  std::vector<bool> has_child(n, false);
  for (size_t i = 0; i < n; ++i) {
    const ClassSpec& c = tree.classes[i];
    if (c.parent == kNone) {
      ++roots;
    } else if (c.parent >= n || c.parent == i) {
      return "class " + std::to_string(i) + ": unknown parent";
    } else {
      has_child[c.parent] = true;
    }
    if (c.rate_bps < 8) return "class " + std::to_string(i) + ": rate below 8 bit/s";
    if (c.ceil_bps < c.rate_bps) return "class " + std::to_string(i) + ": ceil below rate";
    if (c.prio >= kPrios) return "class " + std::to_string(i) + ": prio above 7";
    if (c.limit_packets == 0) return "class " + std::to_string(i) + ": queue limit of 0 packets";
    if (c.ecn && (c.ecn->kmin_bytes >= c.ecn->kmax_bytes || !(c.ecn->pmax > 0 && c.ecn->pmax <= 1))) {
      return "class " + std::to_string(i) + ": ECN needs kmin < kmax and 0 < pmax <= 1";
    }
  }
  if (roots != 1) return "the tree needs exactly one root, found " + std::to_string(roots);
  for (size_t i = 0; i < n; ++i) {
    uint32_t x = static_cast<uint32_t>(i);
    size_t depth = 0;
    while (tree.classes[x].parent != kNone) {
      x = tree.classes[x].parent;
      if (++depth > n) return "class " + std::to_string(i) + ": parent cycle";
    }
    if (depth >= kMaxLevels) return "class " + std::to_string(i) + ": deeper than 8 levels";
  }
  if (tree.default_class >= n || has_child[tree.default_class]) return "the default class must be a leaf";
  return {};
}

void fill_default_quanta(TreeSpec& tree) {
  const size_t n = tree.classes.size();
  std::vector<uint64_t> min_child_rate(n + 1, UINT64_MAX);  // [n] stands for "no parent"
  auto slot = [&](const ClassSpec& c) { return c.parent == kNone ? n : c.parent; };
  for (const auto& c : tree.classes) min_child_rate[slot(c)] = std::min(min_child_rate[slot(c)], c.rate_bps);
  for (auto& c : tree.classes) {
    if (c.quantum) continue;
    const unsigned __int128 q = static_cast<unsigned __int128>(1600) * c.rate_bps / min_child_rate[slot(c)];
    c.quantum = static_cast<uint32_t>(std::min<unsigned __int128>(q, 1u << 20));
  }
}

HtbScheduler::HtbScheduler(TreeSpec tree, uint32_t capacity, uint64_t now_ps)
    : classes_(tree.classes.size()),
      specs_(tree.classes.size()),
      default_class_(tree.default_class),
      wheel_(kWheelSlots),
      capacity_(capacity) {
  static_assert(sizeof(Class) == 256, "a class is four cache lines");
  fill_default_quanta(tree);
  for (auto& r : row_) r.fill(kNone);
  std::vector<unsigned> depth(classes_.size(), 0);
  for (uint32_t i = 0; i < classes_.size(); ++i) {
    for (uint32_t x = i; tree.classes[x].parent != kNone; x = tree.classes[x].parent) ++depth[i];
  }
  for (uint32_t i = 0; i < classes_.size(); ++i) {
    const uint32_t parent = tree.classes[i].parent;
    classes_[i].parent = parent;
    if (parent != kNone && classes_[parent].leaf) {
      classes_[parent].leaf = false;
      classes_[parent].inner = static_cast<uint32_t>(inner_.size());
      inner_.emplace_back().feed.fill(kNone);
    }
  }
  for (uint32_t i = 0; i < classes_.size(); ++i) {
    Class& c = classes_[i];
    configure(i, tree.classes[i]);
    c.tokens = c.burst_ps;
    c.ctokens = c.cburst_ps;
    c.t_c = now_ps;
    c.level = c.leaf ? 0 : static_cast<uint8_t>(kMaxLevels - 1 - depth[i]);
  }
  // A leaf holding q packets from offset o spans ceil((o + q) / 4) chunks,
  // at most q / 4 + 2 (o <= 3): enough for `capacity` packets spread over any
  // number of leaves.
  const uint64_t leaves = static_cast<uint64_t>(classes_.size() - inner_.size());
  const uint64_t n_chunks = capacity / kChunkPackets + 2 * std::min<uint64_t>(leaves, capacity) + 1;
  chunks_.resize(n_chunks);
  for (uint64_t i = 0; i < n_chunks; ++i) chunks_[i].next = i + 1 < n_chunks ? static_cast<uint32_t>(i + 1) : kNone;
  free_chunk_ = 0;
  wheel_now_slot_ = now_ps >> kWheelShift;
}

void HtbScheduler::configure(uint32_t ci, const ClassSpec& spec) {
  Class& c = classes_[ci];
  ClassSpec& s = specs_[ci];
  s = spec;
  if (s.quantum == 0) s.quantum = 1600;
  c.rate_mult = ps_per_byte_mult(s.rate_bps);
  c.ceil_mult = ps_per_byte_mult(s.ceil_bps);
  c.burst_ps = cost_ps(s.burst_bytes, c.rate_mult);
  c.cburst_ps = cost_ps(s.cburst_bytes, c.ceil_mult);
  c.tokens = std::min(c.tokens, c.burst_ps);
  c.ctokens = std::min(c.ctokens, c.cburst_ps);
  c.prio = s.prio;
  c.quantum = s.quantum;
  c.overhead = s.overhead;
  c.limit_packets = s.limit_packets;
  c.byte_limit = s.limit_bytes != 0;
  c.ecn = s.ecn.has_value();
}

void HtbScheduler::refresh(Class& c, uint64_t now) {
  if (now <= c.t_c) return;
  const int64_t elapsed = static_cast<int64_t>(std::min<uint64_t>(now - c.t_c, uint64_t{1} << 60));
  c.tokens = std::min(c.tokens + elapsed, c.burst_ps);
  c.ctokens = std::min(c.ctokens + elapsed, c.cburst_ps);
  c.t_c = now;
}

HtbScheduler::Mode HtbScheduler::compute_mode(const Class& c) const {
  if (c.ctokens < 0) return Mode::kRed;
  if (c.tokens >= 0) return Mode::kGreen;
  // A root has nobody to borrow from: over its rate it waits like a red class.
  return c.parent == kNone ? Mode::kRed : Mode::kYellow;
}

uint8_t HtbScheduler::demand(const Class& c) const {
  if (!c.leaf) return c.feed_mask;
  return c.q_packets ? static_cast<uint8_t>(1u << c.prio) : 0;
}

HtbScheduler::ListNode& HtbScheduler::node(uint32_t ci, ListKind kind, uint8_t prio) {
  Class& c = classes_[ci];
  const auto k = static_cast<size_t>(kind);
  return c.leaf ? c.own[k] : inner_[c.inner].nodes[k][prio];
}

void HtbScheduler::list_insert(uint32_t& head, uint32_t c, ListKind kind, uint8_t prio) {
  ListNode& n = node(c, kind, prio);
  // A class keeps what is left of its deficit (capped at one quantum) when
  // it rejoins a list.
  n.deficit = std::min<int32_t>(n.deficit, static_cast<int32_t>(classes_[c].quantum));
  if (head == kNone) {
    n.prev = n.next = c;
    head = c;
    return;
  }
  ListNode& h = node(head, kind, prio);
  const uint32_t tail = h.prev;
  n.prev = tail;
  n.next = head;
  node(tail, kind, prio).next = c;
  h.prev = c;
}

void HtbScheduler::list_remove(uint32_t& head, uint32_t c, ListKind kind, uint8_t prio) {
  ListNode& n = node(c, kind, prio);
  if (n.next == c) {
    head = kNone;
  } else {
    node(n.prev, kind, prio).next = n.next;
    node(n.next, kind, prio).prev = n.prev;
    if (head == c) head = n.next;
  }
  n.prev = n.next = kNone;
}

void HtbScheduler::prefetch_class(uint32_t ci) const {
  const Class& c = classes_[ci];
  __builtin_prefetch(&c.tokens);
  __builtin_prefetch(&c.q_head);
}

uint32_t HtbScheduler::drr_pick(uint32_t& head, ListKind kind, uint8_t prio) {
  uint32_t c = head;
  for (ListNode* n = &node(c, kind, prio); n->deficit <= 0; n = &node(c, kind, prio)) {
    n->deficit += static_cast<int32_t>(classes_[c].quantum);
    head = n->next;
    c = head;
  }
  // The class after this one is likely served soon: start loading it.
  prefetch_class(node(c, kind, prio).next);
  return c;
}

void HtbScheduler::look_ahead(Lookahead& l) {
  if (l.cls == kNone) return;
  const Class& c = classes_[l.cls];  // prefetched by the previous step
  if (c.leaf) {
    if (c.q_head != kNone) __builtin_prefetch(&chunks_[c.q_head]);
    l.cls = kNone;
    return;
  }
  const uint32_t& feed = inner_[c.inner].feed[l.prio];
  if (!l.feeds_loaded) {
    __builtin_prefetch(&feed);
    l.feeds_loaded = true;
    return;
  }
  l.feeds_loaded = false;
  l.cls = feed;
  if (feed != kNone) prefetch_class(feed);
}

void HtbScheduler::row_remove(uint32_t ci, uint8_t p) {
  const uint8_t level = classes_[ci].level;
  list_remove(row_[level][p], ci, ListKind::kRow, p);
  if (row_[level][p] == kNone) {
    row_mask_[level] &= static_cast<uint8_t>(~(1u << p));
    if (!row_mask_[level]) level_mask_ &= static_cast<uint8_t>(~(1u << level));
  }
}

void HtbScheduler::feed_remove(uint32_t ci, uint8_t p) {
  const uint32_t parent = classes_[ci].parent;
  uint32_t& head = feed_head(parent, p);
  list_remove(head, ci, ListKind::kFeed, p);
  if (head == kNone) classes_[parent].feed_mask &= static_cast<uint8_t>(~(1u << p));
}

void HtbScheduler::detach(uint32_t ci) {
  Class& c = classes_[ci];
  for (uint8_t mask = c.row_mask; mask; mask &= mask - 1) row_remove(ci, static_cast<uint8_t>(std::countr_zero(mask)));
  for (uint8_t mask = c.offer_mask; mask; mask &= mask - 1) {
    feed_remove(ci, static_cast<uint8_t>(std::countr_zero(mask)));
  }
  c.row_mask = c.offer_mask = 0;
}

bool HtbScheduler::place(uint32_t ci, uint64_t now) {
  Class& c = classes_[ci];
  refresh(c, now);
  const Mode m = compute_mode(c);
  c.mode = m;
  const uint8_t want = demand(c);
  const bool held = now < c.held_until;
  if ((m != Mode::kGreen || held) && want) {
    uint64_t wait;
    if (c.ctokens < 0) wait = static_cast<uint64_t>(-c.ctokens);
    else if (c.tokens < 0) wait = static_cast<uint64_t>(-c.tokens);
    else wait = c.held_until - now;
    wheel_schedule(ci, now + wait);
  } else if (c.on_wheel) {
    wheel_cancel(ci);
  }
  // Green (and not held by an ancestor's ceil): in the rows of its level.
  // Not red: in the parent's feeds too, so its place in the parent's DRR
  // round survives green/yellow flips and holds. A green class is never
  // reached through a feed: lower levels are served first. A held class is
  // only reachable through a lender below the red ancestor, which would be
  // red itself and out of the feeds.
  const uint8_t row = m == Mode::kGreen && !held ? want : 0;
  const uint8_t offer = m != Mode::kRed && c.parent != kNone ? want : 0;
  if (row != c.row_mask) {
    for (uint8_t mask = c.row_mask & ~row; mask; mask &= mask - 1) {
      row_remove(ci, static_cast<uint8_t>(std::countr_zero(mask)));
    }
    for (uint8_t mask = row & ~c.row_mask; mask; mask &= mask - 1) {
      const uint8_t p = static_cast<uint8_t>(std::countr_zero(mask));
      list_insert(row_[c.level][p], ci, ListKind::kRow, p);
      row_mask_[c.level] |= static_cast<uint8_t>(1u << p);
      level_mask_ |= static_cast<uint8_t>(1u << c.level);
    }
    c.row_mask = row;
  }
  if (offer == c.offer_mask) return false;
  for (uint8_t mask = c.offer_mask & ~offer; mask; mask &= mask - 1) {
    feed_remove(ci, static_cast<uint8_t>(std::countr_zero(mask)));
  }
  for (uint8_t mask = offer & ~c.offer_mask; mask; mask &= mask - 1) {
    const uint8_t p = static_cast<uint8_t>(std::countr_zero(mask));
    list_insert(feed_head(c.parent, p), ci, ListKind::kFeed, p);
    classes_[c.parent].feed_mask |= static_cast<uint8_t>(1u << p);
  }
  c.offer_mask = offer;
  return true;
}

void HtbScheduler::place_upwards(uint32_t c, uint64_t now) {
  while (c != kNone && place(c, now)) c = classes_[c].parent;
}

void HtbScheduler::wheel_schedule(uint32_t ci, uint64_t when) {
  const uint64_t width = uint64_t{1} << kWheelShift;
  uint64_t slot = (when + width - 1) >> kWheelShift;  // never early
  slot = std::clamp(slot, wheel_now_slot_, wheel_now_slot_ + kWheelSlots - 1);
  Class& c = classes_[ci];
  if (c.on_wheel) {
    if (c.w_slot == slot) return;
  } else {
    c.on_wheel = true;
    ++wheel_count_;
  }
  c.w_slot = slot;
  const uint32_t pos = static_cast<uint32_t>(slot & (kWheelSlots - 1));
  wheel_[pos].push_back(ci);
  wheel_bits_[pos >> 6] |= uint64_t{1} << (pos & 63);
}

void HtbScheduler::wheel_cancel(uint32_t ci) {
  Class& c = classes_[ci];
  if (!c.on_wheel) return;
  c.on_wheel = false;
  --wheel_count_;
}

void HtbScheduler::wheel_advance(uint64_t now) {
  const uint64_t target = now >> kWheelShift;  // slots starting at or before now are due
  if (target < wheel_now_slot_) return;
  // Take every due class off first, then move the wheel past `target`, so a
  // class re-scheduled while being placed lands in a future slot.
  due_.clear();
  const uint64_t last = std::min(target, wheel_now_slot_ + kWheelSlots - 1);
  for (uint64_t s = wheel_now_slot_; s <= last && wheel_count_;) {
    const uint32_t pos = static_cast<uint32_t>(s & (kWheelSlots - 1));
    const uint64_t word = wheel_bits_[pos >> 6] >> (pos & 63);
    if (!word) {
      s += 64 - (pos & 63);
      continue;
    }
    s += std::countr_zero(word);
    if (s > last) break;
    const uint32_t p = static_cast<uint32_t>(s & (kWheelSlots - 1));
    std::vector<uint32_t>& entries = wheel_[p];
    constexpr size_t kAhead = 8;
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i + kAhead < entries.size()) __builtin_prefetch(&classes_[entries[i + kAhead]].w_slot);
      Class& c = classes_[entries[i]];
      if (c.on_wheel && c.w_slot == s) {
        c.on_wheel = false;
        --wheel_count_;
        due_.push_back(entries[i]);
      }
    }
    entries.clear();
    wheel_bits_[p >> 6] &= ~(uint64_t{1} << (p & 63));
    ++s;
  }
  wheel_now_slot_ = target + 1;
  constexpr size_t kAhead = 4;
  for (size_t i = 0; i < due_.size(); ++i) {
    if (i + kAhead < due_.size()) {
      const Class& next = classes_[due_[i + kAhead]];
      __builtin_prefetch(&next.tokens);
      __builtin_prefetch(&next.q_head);
    }
    place_upwards(due_[i], now);
  }
}

uint64_t HtbScheduler::next_wakeup() const {
  if (!wheel_count_) return UINT64_MAX;
  for (uint64_t s = wheel_now_slot_; s < wheel_now_slot_ + kWheelSlots;) {
    const uint32_t pos = static_cast<uint32_t>(s & (kWheelSlots - 1));
    const uint64_t word = wheel_bits_[pos >> 6] >> (pos & 63);
    if (!word) {
      s += 64 - (pos & 63);
      continue;
    }
    return (s + std::countr_zero(word)) << kWheelShift;
  }
  return UINT64_MAX;
}

EnqueueResult HtbScheduler::enqueue(uint32_t leaf, uintptr_t packet, uint32_t length, bool ect, uint64_t now) {
  Class& c = classes_[leaf];
  if (!c.leaf || queued_ >= capacity_ || c.q_packets >= c.limit_packets ||
      (c.byte_limit && c.q_bytes + length > specs_[leaf].limit_bytes)) {
    ++c.stats.drops;
    return EnqueueResult::kDropped;
  }
  EnqueueResult result = EnqueueResult::kQueued;
  if (c.ecn && ect) {
    const EcnProfile& e = *specs_[leaf].ecn;
    bool mark = c.q_bytes >= e.kmax_bytes;
    if (!mark && c.q_bytes > e.kmin_bytes) {
      const double p = e.pmax * static_cast<double>(c.q_bytes - e.kmin_bytes) /
                       static_cast<double>(e.kmax_bytes - e.kmin_bytes);
      mark = static_cast<double>(xorshift(rng_) >> 11) * 0x1.0p-53 < p;
    }
    if (mark) {
      ++c.stats.ecn_marks;
      result = EnqueueResult::kQueuedMarkCe;
    }
  }
  const unsigned pos = (c.q_offset + c.q_packets) % kChunkPackets;
  if (c.q_packets == 0 || pos == 0) {  // a fresh chunk at the tail
    const uint32_t k = free_chunk_;
    free_chunk_ = chunks_[k].next;
    chunks_[k].next = kNone;
    if (c.q_packets == 0) {
      c.q_head = k;
      c.q_offset = 0;
    } else {
      chunks_[c.q_tail].next = k;
    }
    c.q_tail = k;
  }
  Chunk& tail = chunks_[c.q_tail];
  tail.packet[pos] = packet;
  tail.length[pos] = length;
  ++c.q_packets;
  c.q_bytes += length;
  ++queued_;
  if (c.q_packets == 1) place_upwards(leaf, now);
  return result;
}

Dequeued HtbScheduler::pop(uint32_t leaf) {
  Class& c = classes_[leaf];
  const uint32_t k = c.q_head;
  Chunk& head = chunks_[k];
  const Dequeued d{head.packet[c.q_offset], head.length[c.q_offset], leaf};
  // Entering a chunk: start loading the next one, four packets ahead.
  if (c.q_offset == 0 && head.next != kNone) __builtin_prefetch(&chunks_[head.next]);
  --c.q_packets;
  c.q_bytes -= d.length;
  --queued_;
  if (++c.q_offset == kChunkPackets || c.q_packets == 0) {
    c.q_head = head.next;
    c.q_offset = 0;
    if (c.q_packets == 0) c.q_tail = c.q_head = kNone;
    head.next = free_chunk_;
    free_chunk_ = k;
  }
  return d;
}

uint32_t HtbScheduler::red_ancestor(uint32_t ci, uint64_t now) {
  for (uint32_t a = classes_[ci].parent; a != kNone; a = classes_[a].parent) {
    refresh(classes_[a], now);
    if (classes_[a].ctokens < 0) return a;
  }
  return kNone;
}

bool HtbScheduler::charge(uint32_t leaf, uint8_t lend_level, uint32_t wire, uint64_t now, RunPath* record) {
  // One walk up: charge, then re-place only a class whose mode moved or whose
  // demand changed (a child's offer to it changed). A class left in place
  // whose tokens fell further just wakes early from the wheel and is
  // re-placed then. A leaf that emptied stays in its lists (dequeue_run).
  bool demand_changed = false;
  bool changed = false;
  for (uint32_t ci = leaf; ci != kNone;) {
    Class& c = classes_[ci];
    refresh(c, now);
    const Mode before = compute_mode(c);
    int64_t cost_tokens = 0;
    if (c.level >= lend_level) {
      if (c.level == lend_level) ++c.stats.lends;
      cost_tokens = cost_ps(wire, c.rate_mult);
      c.tokens -= cost_tokens;
    } else {
      ++c.stats.borrows;
    }
    const int64_t cost_ctokens = cost_ps(wire, c.ceil_mult);
    c.ctokens -= cost_ctokens;
    if (record) {
      const unsigned i = record->size++;
      if (c.level <= lend_level) record->lender = i;
      record->cls[i] = &c;
      record->cost_tokens[i] = cost_tokens;
      record->cost_ctokens[i] = cost_ctokens;
      record->wire = wire;
    }
    c.stats.bytes += wire;
    ++c.stats.packets;
    const Mode after = compute_mode(c);
    if (after > before) ++c.stats.overlimits;
    const uint32_t parent = c.parent;
    if (demand_changed || after != c.mode) {
      demand_changed = place(ci, now);
      changed = true;  // rows or feeds may have moved
    } else {
      demand_changed = false;
      changed |= after != before;  // e.g. an ancestor whose placement was already stale
    }
    ci = parent;
  }
  return changed;
}

bool HtbScheduler::charge_in_run(RunPath& path, uint32_t wire) {
  if (wire != path.wire) {
    for (unsigned i = 0; i < path.size; ++i) {
      path.cost_tokens[i] = i >= path.lender ? cost_ps(wire, path.cls[i]->rate_mult) : 0;
      path.cost_ctokens[i] = cost_ps(wire, path.cls[i]->ceil_mult);
    }
    path.wire = wire;
  }
  // Same `now` as the run's first charge: nothing to refresh. A mode moves
  // only when a non-negative bucket would go negative.
  for (unsigned i = 0; i < path.size; ++i) {
    const Class& c = *path.cls[i];
    if (c.ctokens < path.cost_ctokens[i]) return false;
    if (c.tokens >= 0 && c.tokens < path.cost_tokens[i]) return false;
  }
  for (unsigned i = 0; i < path.size; ++i) {
    path.cls[i]->tokens -= path.cost_tokens[i];
    path.cls[i]->ctokens -= path.cost_ctokens[i];
  }
  return true;
}

void HtbScheduler::count_run(const RunPath& path, uint64_t packets, uint64_t wire_bytes) {
  if (!packets) return;
  for (unsigned i = 0; i < path.size; ++i) {
    ClassStats& s = path.cls[i]->stats;
    s.packets += packets;
    s.bytes += wire_bytes;
    if (i < path.lender) s.borrows += packets;
    if (i == path.lender) s.lends += packets;
  }
}

unsigned HtbScheduler::dequeue_run(uint64_t now, Dequeued* out, unsigned max) {
  while (level_mask_) {
    const uint8_t level = static_cast<uint8_t>(std::countr_zero(level_mask_));
    const uint8_t prio = static_cast<uint8_t>(std::countr_zero(row_mask_[level]));
    const uint32_t top = drr_pick(row_[level][prio], ListKind::kRow, prio);
    // Ceil holds at every level: an ancestor over its ceil holds the class
    // back until that ancestor's ctokens recover.
    if (const uint32_t a = red_ancestor(top, now); a != kNone) {
      classes_[top].held_until = now + static_cast<uint64_t>(-classes_[a].ctokens);
      ++classes_[top].stats.overlimits;
      place_upwards(top, now);
      continue;
    }
    uint32_t path[kMaxLevels];  // the feed nodes from the leaf up to below `top`
    unsigned depth = 0;
    uint32_t c = top;
    while (!classes_[c].leaf) {
      c = drr_pick(feed_head(c, prio), ListKind::kFeed, prio);
      path[depth++] = c;
    }
    Class& leaf = classes_[c];
    if (!leaf.q_packets) {  // emptied earlier and not refilled: leave the lists now
      place_upwards(c, now);
      continue;
    }
    if (const uint32_t k = chunks_[leaf.q_head].next; k != kNone) __builtin_prefetch(&chunks_[k]);
    if (ahead_[0].cls == kNone) ahead_[0] = {node(c, depth ? ListKind::kFeed : ListKind::kRow, prio).next, prio, false};
    if (ahead_[1].cls == kNone && depth) ahead_[1] = {node(top, ListKind::kRow, prio).next, prio, false};
    look_ahead(ahead_[0]);
    look_ahead(ahead_[1]);
    // Send from this leaf while the next dequeue would pick it again: at one
    // `now`, that holds until a charge moves some mode on the path (or
    // re-places a class), the leaf empties, or a DRR deficit on the path runs
    // out. Exactly the per-packet decisions, without re-selecting each time.
    // The first packet takes the full charge(); while that changes nothing,
    // the next ones only subtract their costs (charge_in_run), which is the
    // same arithmetic, until one would move a mode or empty the leaf.
    ListNode& row_node = node(top, ListKind::kRow, prio);
    const uint16_t overhead = leaf.overhead;
    RunPath run_path;
    uint64_t in_run = 0, in_run_bytes = 0;  // packets charged by charge_in_run
    unsigned n = 0;
    for (;;) {
      out[n] = pop(c);
      const uint32_t wire = out[n].length + overhead;
      ++n;
      int32_t min_deficit = row_node.deficit -= static_cast<int32_t>(wire);
      for (unsigned i = 0; i < depth; ++i) {
        min_deficit = std::min(min_deficit, node(path[i], ListKind::kFeed, prio).deficit -= static_cast<int32_t>(wire));
      }
      bool changed;
      if (n > 1 && charge_in_run(run_path, wire)) {
        changed = false;
        ++in_run;
        in_run_bytes += wire;
      } else {
        changed = charge(c, level, wire, now, n == 1 ? &run_path : nullptr);
      }
      if (!leaf.q_packets) {
        // An emptied leaf stays where it is in its lists, and the DRR round
        // moves past it: refilled before its next turn (the common case
        // under load), it costs no list operations at all; still empty
        // then, it leaves the lists when picked (above).
        uint32_t& head = depth ? feed_head(leaf.parent, prio) : row_[level][prio];
        if (head == c) head = node(c, depth ? ListKind::kFeed : ListKind::kRow, prio).next;
        changed = true;
      }
      if (changed || n == max || min_deficit <= 0) {
        count_run(run_path, in_run, in_run_bytes);
        return n;
      }
    }
  }
  return 0;
}

std::optional<Dequeued> HtbScheduler::dequeue(uint64_t now) {
  wheel_advance(now);
  Dequeued d;
  if (!dequeue_run(now, &d, 1)) return std::nullopt;
  return d;
}

unsigned HtbScheduler::dequeue_burst(uint64_t now, Dequeued* out, unsigned max) {
  wheel_advance(now);
  unsigned n = 0;
  while (n < max) {
    const unsigned got = dequeue_run(now, out + n, max - n);
    if (!got) break;
    n += got;
  }
  return n;
}

void HtbScheduler::update_class(uint32_t ci, const ClassSpec& spec, uint64_t now) {
  Class& c = classes_[ci];
  // Take the class out of its lists under its old prio, then re-place it.
  const bool offered = c.offer_mask != 0;
  refresh(c, now);
  detach(ci);
  ClassSpec s = spec;
  s.parent = specs_[ci].parent;
  if (!s.quantum) s.quantum = specs_[ci].quantum;
  configure(ci, s);
  if (offered) place_upwards(c.parent, now);
  place_upwards(ci, now);
}

int64_t HtbScheduler::tokens_bytes(uint32_t ci) const {
  const Class& c = classes_[ci];
  return static_cast<int64_t>((static_cast<__int128>(c.tokens) << 20) / static_cast<__int128>(c.rate_mult));
}

int64_t HtbScheduler::ctokens_bytes(uint32_t ci) const {
  const Class& c = classes_[ci];
  return static_cast<int64_t>((static_cast<__int128>(c.ctokens) << 20) / static_cast<__int128>(c.ceil_mult));
}

}  // namespace meridian::qos
