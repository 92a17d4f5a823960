// Per-bridge-domain state that outlives config generations: the FDB (MAC ->
// local attachment or remote VTEP) and the ARP/ND suppression table (IP ->
// MAC), both on rte_hash with lock-free readers, plus counters.
//
// Writers: the control lcore only (it applies learn events that workers
// post on a ring). Readers: workers, lock-free. A deleted FDB key's slot is
// handed back to rte_hash only after an RCU grace period, so a worker that
// found the key reads a stale-but-valid entry, never a recycled one.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <rte_hash.h>
#include <rte_rcu_qsbr.h>

#include "config/net_types.h"
#include "dataplane/counter_set.h"
#include "dataplane/counters.h"
#include "vxlan/drop_reasons.h"

namespace meridian::vxlan {

using config::IpAddress;
using config::MacAddress;
using dataplane::SingleWriterCounter;

/// Where a MAC lives, packed in 64 bits so one atomic store moves it.
/// 0 means "no entry yet" (a reader that races an insert treats it as a miss).
namespace location {
inline constexpr uint64_t kLocal = 1ULL << 62;
inline constexpr uint64_t kRemote = 1ULL << 61;
inline constexpr uint64_t local(uint16_t port, uint16_t vlan) { return kLocal | uint64_t{vlan} << 16 | port; }
inline constexpr uint64_t remote(uint16_t vtep_slot) { return kRemote | vtep_slot; }
/// "Behind some remote VTEP, slot not known here" (decap learning compares by IP).
inline constexpr uint64_t kRemoteUnknownSlot = kRemote | 0xffff;
inline constexpr bool is_local(uint64_t l) { return l & kLocal; }
inline constexpr bool is_remote(uint64_t l) { return l & kRemote; }
inline constexpr uint16_t port(uint64_t l) { return static_cast<uint16_t>(l); }
inline constexpr uint16_t vlan(uint64_t l) { return static_cast<uint16_t>(l >> 16 & 0xfff); }
inline constexpr uint16_t vtep(uint64_t l) { return static_cast<uint16_t>(l); }
}  // namespace location

struct FdbEntry {
  std::atomic<uint64_t> location{0};
  std::atomic<uint32_t> last_seen{0};  // seconds on the TSC clock; refreshed by workers
  std::atomic<bool> is_static{false};  // written by the control lcore only
};

// A bridge domain's counters, as one counter set (dataplane/counter_set.h):
// the JSON names of /api/v1/vxlan/bridge_domains and the families of
// /metrics (each with a `vni` label). Workers write the data-path ones in
// their own block; the control lcore, which applies learn events and ages,
// writes learns, moves, ages, learn_limit and mac_move_held in its block.
#define MERIDIAN_VXLAN_BD_COUNTERS(X)                                                                        \
  X(encap_packets, "encap_packets", "meridian_vxlan_encap_packets_total", "",                                \
    "Frames encapsulated towards remote VTEPs")                                                              \
  X(encap_bytes, "encap_bytes", "meridian_vxlan_encap_bytes_total", "", "Inner bytes encapsulated")          \
  X(decap_packets, "decap_packets", "meridian_vxlan_decap_packets_total", "",                                \
    "Frames decapsulated from remote VTEPs")                                                                 \
  X(decap_bytes, "decap_bytes", "meridian_vxlan_decap_bytes_total", "", "Inner bytes decapsulated")          \
  X(flood_packets, "flood_packets", "meridian_vxlan_flood_packets_total", "",                                \
    "Broadcast/unknown/multicast frames flooded")                                                            \
  X(replicas, "replicas", "meridian_vxlan_replicas_total", "", "Copies sent by flooding (local and head-end)") \
  X(arp_suppressed, "arp_suppressed", "meridian_vxlan_arp_suppressed_total", "",                             \
    "ARP/ND requests answered locally")                                                                      \
  X(learns, "learns", "meridian_vxlan_fdb_learns_total", "", "MAC addresses learned")                        \
  X(moves, "moves", "meridian_vxlan_fdb_moves_total", "", "MAC addresses that moved")                        \
  X(ages, "ages", "meridian_vxlan_fdb_ages_total", "", "MAC addresses aged out")                             \
  X(learn_limit, "learn_limit", "meridian_vxlan_fdb_learn_limit_total", "",                                  \
    "Learns refused because the FDB was full")                                                               \
  X(icmp_too_big, "icmp_too_big", "meridian_vxlan_icmp_too_big_total", "",                                   \
    "ICMP Fragmentation Needed / Packet Too Big sent for oversize frames")                                   \
  X(learn_events_lost, "learn_events_lost", "meridian_vxlan_learn_events_lost_total", "",                    \
    "Learn events lost to a full learn ring")                                                                \
  X(mac_move_held, "mac_move_held", "meridian_vxlan_mac_move_held_total", "",                                \
    "Moves of a MAC still active on a local attachment to a remote VTEP, held back")
MERIDIAN_DEFINE_COUNTER_SET(BdCounters, MERIDIAN_VXLAN_BD_COUNTERS);

/// The block one worker (or the control lcore) writes for one bridge domain:
/// the set, and drops by reason.
struct BdWorkerCounters : BdCounters {
  std::array<SingleWriterCounter, kDropCount> drops;          // frames
  std::array<SingleWriterCounter, kDropCount> replica_drops;  // flood replicas not made or not sent
};

/// Plain sums, for the API and /metrics.
struct BdCounterTotals {
  BdCounters::Totals counters;
  std::array<uint64_t, kDropCount> drops{};
  std::array<uint64_t, kDropCount> replica_drops{};
  BdCounterTotals minus(const BdCounterTotals& baseline) const;
};

/// Packs a MAC into the 48 low bits of a hash data word.
inline uint64_t pack_mac(const uint8_t* m) {
  return uint64_t{m[0]} << 40 | uint64_t{m[1]} << 32 | uint64_t{m[2]} << 24 | uint64_t{m[3]} << 16 |
         uint64_t{m[4]} << 8 | m[5];
}
inline void unpack_mac(uint64_t v, uint8_t* m) {
  for (int i = 5; i >= 0; --i, v >>= 8) m[i] = static_cast<uint8_t>(v);
}
/// FDB key: the MAC in 8 bytes (two zero pad bytes), so keys compare as one word.
inline uint64_t fdb_key(const uint8_t* mac) {
  // Two whole loads, not a 6-byte copy into a zeroed word: partial stores
  // followed by an 8-byte load stall store-to-load forwarding.
  uint32_t lo;
  uint16_t hi;
  __builtin_memcpy(&lo, mac, 4);
  __builtin_memcpy(&hi, mac + 4, 2);
  return uint64_t{lo} | uint64_t{hi} << 32;
}
/// Neighbour key: IPv6, or IPv4-mapped IPv6 (::ffff:a.b.c.d).
struct NeighborKey {
  uint8_t bytes[16];
};
NeighborKey neighbor_key(const uint8_t* ip, bool ipv6);

class BridgeDomainState {
 public:
  /// Creates the hash tables; null and `error` set on failure.
  static std::shared_ptr<BridgeDomainState> create(uint32_t vni, unsigned max_fdb_entries, unsigned workers,
                                                   rte_rcu_qsbr* qsbr, std::string& error);
  ~BridgeDomainState();
  BridgeDomainState(const BridgeDomainState&) = delete;
  BridgeDomainState& operator=(const BridgeDomainState&) = delete;

  uint32_t vni() const { return vni_; }

  // ---- worker side (lock-free reads) ----
  /// The entry for `mac`, or null. The entry's location may still read 0.
  const FdbEntry* lookup(const uint8_t* mac) const { return lookup_mutable(mac); }
  /// Workers write only `last_seen` through it.
  FdbEntry* lookup_mutable(const uint8_t* mac) const {
    const uint64_t key = fdb_key(mac);
    const int32_t pos = rte_hash_lookup(fdb_, &key);
    return pos >= 0 ? &entries_[pos] : nullptr;
  }
  /// Bulk lookup of up to 64 keys (fdb_key values): positions < 0 are misses.
  void lookup_bulk(const void** keys, unsigned n, int32_t* positions) const {
    rte_hash_lookup_bulk(fdb_, keys, n, positions);
  }
  FdbEntry* entry_at(int32_t position) const { return position >= 0 ? &entries_[position] : nullptr; }
  /// One process-wide generation, advanced whenever any FDB deletes a key
  /// (its position may be reused) and whenever a bridge domain is created or
  /// destroyed (its cache tag may be reused): per-worker caches of
  /// key -> position are valid only within one generation. Deletes are rare
  /// (aging runs once a second), so invalidating every cache costs nothing.
  uint32_t generation() const;
  /// 1..65535, a tag for cache keys (recycled; see generation()).
  uint64_t id() const { return id_; }
  /// Packed MAC (bit 48 = static) or nullopt.
  std::optional<uint64_t> neighbor(const uint8_t* ip, bool ipv6) const {
    const NeighborKey key = neighbor_key(ip, ipv6);
    void* data = nullptr;
    if (rte_hash_lookup_data(neighbors_, &key, &data) < 0) return std::nullopt;
    return reinterpret_cast<uintptr_t>(data);
  }
  BdWorkerCounters& counters(unsigned worker) { return worker_counters_[worker]; }

  // ---- control side (single writer) ----
  enum class LearnResult { kAdded, kMoved, kRefreshed, kStaticKept, kHeld, kLimit, kFailed };
  /// Learns or moves a dynamic entry, `now_s` on the workers' clock. A MAC
  /// on a local attachment seen there within `hold_s` does not move to a
  /// remote VTEP (kHeld, counted as mac_move_held).
  LearnResult learn(const MacAddress& mac, uint64_t loc, uint32_t now_s, uint32_t hold_s = 0);
  /// Installs a static entry (replacing a dynamic one; at the limit, a
  /// dynamic entry is evicted to make room: configuration wins over learning).
  bool add_static(const MacAddress& mac, uint64_t loc);
  void remove(const MacAddress& mac);
  /// Removes dynamic entries idle longer than `aging_s`; returns how many.
  unsigned age(uint32_t now_s, uint32_t aging_s);
  /// Drops dynamic entries (all, or those pointing at `loc` when set).
  unsigned flush_dynamic(std::optional<uint64_t> only_loc = std::nullopt);
  /// Hands slots of deleted keys back to rte_hash once readers moved on.
  void reclaim();
  /// Learned entries are refused at the limit; static ones evict a learned one.
  bool set_neighbor(const IpAddress& ip, const MacAddress& mac, bool is_static);
  void remove_neighbor(const IpAddress& ip);

  struct FdbRecord {
    MacAddress mac;
    uint64_t location;
    uint32_t last_seen;
    bool is_static;
  };
  std::vector<FdbRecord> fdb_records() const;
  struct NeighborRecord {
    IpAddress ip;
    MacAddress mac;
    bool is_static;
  };
  std::vector<NeighborRecord> neighbor_records() const;
  size_t fdb_size() const { return fdb_count_; }
  size_t neighbor_size() const { return neighbor_count_; }
  unsigned max_entries() const { return max_entries_; }
  void set_max_entries(unsigned n) { max_entries_ = n; }
  /// mac_move_hold_seconds of the bridge domain's config, set at commit.
  uint32_t move_hold_s() const { return move_hold_s_; }
  void set_move_hold_s(uint32_t s) { move_hold_s_ = s; }
  /// Counts the FDB references to each VTEP slot (for slot garbage collection).
  void count_vtep_refs(std::vector<unsigned>& refs) const;

  BdCounterTotals totals() const;
  BdCounterTotals baseline;  // set by "clear"; the API subtracts it, /metrics does not
  unsigned max_entries_at_creation = 0;

 private:
  BridgeDomainState() = default;
  void erase_at(int32_t pos, const uint64_t& key);
  unsigned erase_dynamic_if(const std::function<bool(const FdbEntry&)>& doomed);

  uint32_t vni_ = 0;
  unsigned max_entries_ = 0;
  uint32_t move_hold_s_ = 0;
  unsigned workers_ = 0;
  rte_hash* fdb_ = nullptr;
  rte_hash* neighbors_ = nullptr;
  rte_rcu_qsbr* qsbr_ = nullptr;
  std::unique_ptr<FdbEntry[]> entries_;
  uint64_t id_ = 0;
  size_t fdb_count_ = 0;
  size_t neighbor_count_ = 0;
  std::unique_ptr<BdWorkerCounters[]> worker_counters_;  // workers, then the control lcore's
  BdWorkerCounters& control_counters() { return worker_counters_[workers_]; }
  struct PendingFree {
    uint64_t token;
    int32_t position;
    rte_hash* table;
  };
  std::deque<PendingFree> pending_free_;
};

}  // namespace meridian::vxlan
