#include "vxlan/bridge_domain.h"

#include <cstring>

#include <rte_errno.h>
#include <rte_hash_crc.h>

namespace meridian::vxlan {
namespace {

std::atomic<unsigned> g_tables{0};
std::atomic<uint32_t> g_fdb_generation{1};

rte_hash* make_hash(const std::string& name, unsigned entries, unsigned key_len) {
  rte_hash_parameters p{};
  p.name = name.c_str();
  p.entries = entries;
  p.key_len = key_len;
  p.hash_func = rte_hash_crc;
  p.hash_func_init_val = 0;
  p.socket_id = SOCKET_ID_ANY;
  // Lock-free readers; the extendable table keeps inserts from failing on
  // bucket collisions before the table is really full.
  p.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
  return rte_hash_create(&p);
}

}  // namespace

NeighborKey neighbor_key(const uint8_t* ip, bool ipv6) {
  NeighborKey k{};
  if (ipv6) {
    std::memcpy(k.bytes, ip, 16);
  } else {
    k.bytes[10] = 0xff;
    k.bytes[11] = 0xff;
    std::memcpy(k.bytes + 12, ip, 4);
  }
  return k;
}

BdCounterTotals BdCounterTotals::minus(const BdCounterTotals& b) const {
  BdCounterTotals r;
  r.counters = counters.minus(b.counters);
  for (size_t i = 0; i < kDropCount; ++i) {
    r.drops[i] = drops[i] >= b.drops[i] ? drops[i] - b.drops[i] : 0;
    r.replica_drops[i] = replica_drops[i] >= b.replica_drops[i] ? replica_drops[i] - b.replica_drops[i] : 0;
  }
  return r;
}

std::shared_ptr<BridgeDomainState> BridgeDomainState::create(uint32_t vni, unsigned max_fdb_entries,
                                                             unsigned workers, rte_rcu_qsbr* qsbr,
                                                             std::string& error) {
  std::shared_ptr<BridgeDomainState> bd(new BridgeDomainState());
  bd->vni_ = vni;
  bd->max_entries_ = max_fdb_entries;
  bd->max_entries_at_creation = max_fdb_entries;
  bd->workers_ = workers;
  bd->qsbr_ = qsbr;
  const unsigned id = g_tables.fetch_add(1);
  bd->id_ = (id % 0xffff) + 1;  // never 0: empty cache entries carry tag 0
  g_fdb_generation.fetch_add(1, std::memory_order_release);
  // Slack above the limit: deleted slots wait out a grace period before reuse.
  const unsigned capacity = max_fdb_entries + 256;
  bd->fdb_ = make_hash("mrd_fdb_" + std::to_string(id), capacity, sizeof(uint64_t));
  bd->neighbors_ = make_hash("mrd_nbr_" + std::to_string(id), capacity, sizeof(NeighborKey));
  if (!bd->fdb_ || !bd->neighbors_) {
    error = "cannot create the FDB of VNI " + std::to_string(vni) + " (" + std::to_string(max_fdb_entries) +
            " entries): " + rte_strerror(rte_errno);
    return nullptr;
  }
  bd->entries_ = std::make_unique<FdbEntry[]>(static_cast<size_t>(rte_hash_max_key_id(bd->fdb_)) + 1);
  bd->worker_counters_ = std::make_unique<BdWorkerCounters[]>(workers + 1);
  return bd;
}

uint32_t BridgeDomainState::generation() const { return g_fdb_generation.load(std::memory_order_acquire); }

BridgeDomainState::~BridgeDomainState() {
  g_fdb_generation.fetch_add(1, std::memory_order_release);
  rte_hash_free(fdb_);
  rte_hash_free(neighbors_);
}

void BridgeDomainState::erase_at(int32_t pos, const uint64_t& key) {
  if (rte_hash_del_key(fdb_, &key) < 0) return;
  g_fdb_generation.fetch_add(1, std::memory_order_release);
  entries_[pos].location.store(0, std::memory_order_release);
  entries_[pos].is_static.store(false, std::memory_order_relaxed);
  --fdb_count_;
  // Readers that found the key before the delete may still read entries_[pos].
  pending_free_.push_back({rte_rcu_qsbr_start(qsbr_), pos, fdb_});
}

void BridgeDomainState::reclaim() {
  while (!pending_free_.empty() && rte_rcu_qsbr_check(qsbr_, pending_free_.front().token, false) == 1) {
    rte_hash_free_key_with_position(pending_free_.front().table, pending_free_.front().position);
    pending_free_.pop_front();
  }
}

BridgeDomainState::LearnResult BridgeDomainState::learn(const MacAddress& mac, uint64_t loc, uint32_t now_s,
                                                        uint32_t hold_s) {
  const uint64_t key = fdb_key(mac.bytes.data());
  const int32_t found = rte_hash_lookup(fdb_, &key);
  if (found >= 0) {
    FdbEntry& e = entries_[found];
    if (e.is_static.load(std::memory_order_relaxed)) return LearnResult::kStaticKept;
    const uint64_t current = e.location.load(std::memory_order_relaxed);
    // A host still talking on its local port has not moved behind a remote
    // VTEP: a frame claiming so is held (EVPN would want a newer sequence).
    const uint32_t seen = e.last_seen.load(std::memory_order_relaxed);
    if (location::is_local(current) && location::is_remote(loc) && now_s >= seen && now_s - seen < hold_s) {
      ++control_counters().mac_move_held;
      return LearnResult::kHeld;
    }
    e.last_seen.store(now_s, std::memory_order_relaxed);
    if (current == loc) return LearnResult::kRefreshed;
    e.location.store(loc, std::memory_order_release);
    ++control_counters().moves;
    return LearnResult::kMoved;
  }
  if (fdb_count_ >= max_entries_) {
    ++control_counters().learn_limit;
    return LearnResult::kLimit;
  }
  reclaim();
  const int32_t pos = rte_hash_add_key(fdb_, &key);
  if (pos < 0) {
    ++control_counters().learn_limit;
    return LearnResult::kFailed;
  }
  FdbEntry& e = entries_[pos];
  e.is_static.store(false, std::memory_order_relaxed);
  e.last_seen.store(now_s, std::memory_order_relaxed);
  e.location.store(loc, std::memory_order_release);
  ++fdb_count_;
  ++control_counters().learns;
  return LearnResult::kAdded;
}

bool BridgeDomainState::add_static(const MacAddress& mac, uint64_t loc) {
  const uint64_t key = fdb_key(mac.bytes.data());
  int32_t pos = rte_hash_lookup(fdb_, &key);
  if (pos < 0 && fdb_count_ >= max_entries_) {
    const void* k;
    void* data;
    uint32_t next = 0;
    int32_t victim;
    while ((victim = rte_hash_iterate(fdb_, &k, &data, &next)) >= 0) {
      if (entries_[victim].is_static.load(std::memory_order_relaxed)) continue;
      erase_at(victim, *static_cast<const uint64_t*>(k));
      break;
    }
  }
  if (pos < 0) {
    if (fdb_count_ >= max_entries_) return false;
    reclaim();
    pos = rte_hash_add_key(fdb_, &key);
    if (pos < 0) return false;
    ++fdb_count_;
  }
  FdbEntry& e = entries_[pos];
  e.is_static.store(true, std::memory_order_relaxed);
  e.location.store(loc, std::memory_order_release);
  return true;
}

void BridgeDomainState::remove(const MacAddress& mac) {
  const uint64_t key = fdb_key(mac.bytes.data());
  const int32_t pos = rte_hash_lookup(fdb_, &key);
  if (pos >= 0) erase_at(pos, key);
}

unsigned BridgeDomainState::erase_dynamic_if(const std::function<bool(const FdbEntry&)>& doomed) {
  const void* key;
  void* data;
  uint32_t next = 0;
  std::vector<std::pair<int32_t, uint64_t>> victims;  // collected first: no deletes while iterating
  int32_t pos;
  while ((pos = rte_hash_iterate(fdb_, &key, &data, &next)) >= 0) {
    const FdbEntry& e = entries_[pos];
    if (!e.is_static.load(std::memory_order_relaxed) && doomed(e)) {
      victims.emplace_back(pos, *static_cast<const uint64_t*>(key));
    }
  }
  for (const auto& [p, k] : victims) erase_at(p, k);
  return static_cast<unsigned>(victims.size());
}

unsigned BridgeDomainState::age(uint32_t now_s, uint32_t aging_s) {
  const unsigned aged = erase_dynamic_if([&](const FdbEntry& e) {
    const uint32_t seen = e.last_seen.load(std::memory_order_relaxed);
    return now_s > seen && now_s - seen >= aging_s;
  });
  control_counters().ages.add(aged);
  reclaim();
  return aged;
}

unsigned BridgeDomainState::flush_dynamic(std::optional<uint64_t> only_loc) {
  return erase_dynamic_if([&](const FdbEntry& e) {
    return !only_loc || e.location.load(std::memory_order_relaxed) == *only_loc;
  });
}

bool BridgeDomainState::set_neighbor(const IpAddress& ip, const MacAddress& mac, bool is_static) {
  const NeighborKey key = neighbor_key(ip.bytes.data(), !ip.is_v4());
  void* old = nullptr;
  const bool exists = rte_hash_lookup_data(neighbors_, &key, &old) >= 0;
  const uint64_t old_value = reinterpret_cast<uintptr_t>(old);
  if (exists && (old_value >> 48 & 1) && !is_static) return false;  // learning never overrides config
  if (!exists && neighbor_count_ >= max_entries_ && is_static) {
    const void* k;
    void* data;
    uint32_t next = 0;
    while (rte_hash_iterate(neighbors_, &k, &data, &next) >= 0) {
      if (reinterpret_cast<uintptr_t>(data) >> 48 & 1) continue;
      NeighborKey victim;
      std::memcpy(&victim, k, sizeof victim);
      const int32_t pos = rte_hash_del_key(neighbors_, &victim);
      if (pos >= 0) {
        --neighbor_count_;
        pending_free_.push_back({rte_rcu_qsbr_start(qsbr_), pos, neighbors_});
      }
      break;
    }
  }
  if (!exists && neighbor_count_ >= max_entries_) return false;
  const uint64_t value = pack_mac(mac.bytes.data()) | (is_static ? 1ULL << 48 : 0);
  if (exists && old_value == value) return true;  // already installed as asked
  if (rte_hash_add_key_data(neighbors_, &key, reinterpret_cast<void*>(static_cast<uintptr_t>(value))) < 0) {
    return false;
  }
  if (!exists) ++neighbor_count_;
  return true;
}

void BridgeDomainState::remove_neighbor(const IpAddress& ip) {
  const NeighborKey key = neighbor_key(ip.bytes.data(), !ip.is_v4());
  // The data is the value itself, so readers racing the delete see either
  // the old MAC or a miss; the key slot is recycled after a grace period.
  const int32_t pos = rte_hash_del_key(neighbors_, &key);
  if (pos >= 0) {
    --neighbor_count_;
    pending_free_.push_back({rte_rcu_qsbr_start(qsbr_), pos, neighbors_});
  }
}

std::vector<BridgeDomainState::FdbRecord> BridgeDomainState::fdb_records() const {
  std::vector<FdbRecord> out;
  const void* key;
  void* data;
  uint32_t next = 0;
  int32_t pos;
  while ((pos = rte_hash_iterate(fdb_, &key, &data, &next)) >= 0) {
    const FdbEntry& e = entries_[pos];
    FdbRecord r;
    std::memcpy(r.mac.bytes.data(), key, 6);
    r.location = e.location.load(std::memory_order_acquire);
    r.last_seen = e.last_seen.load(std::memory_order_relaxed);
    r.is_static = e.is_static.load(std::memory_order_relaxed);
    if (r.location) out.push_back(r);
  }
  return out;
}

std::vector<BridgeDomainState::NeighborRecord> BridgeDomainState::neighbor_records() const {
  std::vector<NeighborRecord> out;
  const void* key;
  void* data;
  uint32_t next = 0;
  while (rte_hash_iterate(neighbors_, &key, &data, &next) >= 0) {
    const auto* k = static_cast<const NeighborKey*>(key);
    const uint64_t v = reinterpret_cast<uintptr_t>(data);
    NeighborRecord r;
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    r.ip = std::memcmp(k->bytes, kMapped, 12) == 0 ? IpAddress::v4(k->bytes + 12) : IpAddress::v6(k->bytes);
    unpack_mac(v, r.mac.bytes.data());
    r.is_static = v >> 48 & 1;
    out.push_back(r);
  }
  return out;
}

void BridgeDomainState::count_vtep_refs(std::vector<unsigned>& refs) const {
  for (const auto& r : fdb_records()) {
    if (location::is_remote(r.location) && location::vtep(r.location) < refs.size()) ++refs[location::vtep(r.location)];
  }
}

BdCounterTotals BridgeDomainState::totals() const {
  BdCounterTotals t;
  for (unsigned w = 0; w <= workers_; ++w) {
    const BdWorkerCounters& c = worker_counters_[w];
    t.counters.add(c);
    for (size_t i = 0; i < kDropCount; ++i) {
      t.drops[i] += c.drops[i].load();
      t.replica_drops[i] += c.replica_drops[i].load();
    }
  }
  return t;
}

}  // namespace meridian::vxlan
