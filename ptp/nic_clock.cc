#include "ptp/nic_clock.h"

#include <time.h>

#include <cstring>
#include <map>
#include <mutex>

#include <rte_cycles.h>
#include <rte_ethdev.h>

namespace meridian::ptp {
namespace {

std::mutex g_registry_mutex;
std::map<uint16_t, std::weak_ptr<NicClock>> g_registry;

int64_t to_ns(const timespec& t) { return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec; }

}  // namespace

std::shared_ptr<NicClock> NicClock::acquire(uint16_t port_id, uint64_t tsc_hz, std::string& why) {
  std::lock_guard lock(g_registry_mutex);
  if (auto live = g_registry[port_id].lock()) return live;
  const int rc = rte_eth_timesync_enable(port_id);
  if (rc != 0) {
    why = "rte_eth_timesync_enable returned " + std::to_string(rc) +
          (rc == -ENOTSUP ? " (the PMD has no PTP clock)" : " (" + std::string(strerror(-rc)) + ")");
    return nullptr;
  }
  std::shared_ptr<NicClock> clock(new NicClock(port_id, tsc_hz));
  g_registry[port_id] = clock;
  return clock;
}

NicClock::~NicClock() {
  std::lock_guard lock(g_registry_mutex);
  // Another holder may have acquired the port again after the last one let
  // go of this object: then the clock stays on for it.
  if (auto it = g_registry.find(port_id_); it != g_registry.end() && !it->second.expired()) return;
  rte_eth_timesync_disable(port_id_);
}

int64_t NicClock::read_locked() {
  timespec t{};
  if (rte_eth_timesync_read_time(port_id_, &t) == 0) return to_ns(t);
  ++read_errors_;
  return have_last_ ? last_.other_at(rte_rdtsc(), tsc_hz_) : 0;
}

int64_t NicClock::now() {
  rte_spinlock_lock(&lock_);
  const int64_t ns = read_locked();
  rte_spinlock_unlock(&lock_);
  return ns;
}

CrossTimestamp NicClock::cross_timestamp() {
  rte_spinlock_lock(&lock_);
  const CrossTimestamp pair = ptp::cross_timestamp([] { return rte_rdtsc(); }, [this] { return read_locked(); });
  last_ = pair;
  have_last_ = true;
  rte_spinlock_unlock(&lock_);
  return pair;
}

std::optional<int64_t> NicClock::rx_stamp(const rte_mbuf* m) const {
  if (!(m->ol_flags & RTE_MBUF_F_RX_IEEE1588_TMST)) return std::nullopt;
  timespec t{};
  rte_spinlock_lock(&lock_);
  const int rc = rte_eth_timesync_read_rx_timestamp(port_id_, &t, m->timesync);
  rte_spinlock_unlock(&lock_);
  if (rc != 0) return std::nullopt;
  return to_ns(t);
}

void NicClock::request_tx_stamp(rte_mbuf* m) {
  timespec stale{};
  rte_spinlock_lock(&lock_);
  rte_eth_timesync_read_tx_timestamp(port_id_, &stale);  // a late latch from an earlier frame
  rte_spinlock_unlock(&lock_);
  m->ol_flags |= RTE_MBUF_F_TX_IEEE1588_TMST;
}

std::optional<int64_t> NicClock::tx_stamp(unsigned wait_us) {
  timespec t{};
  for (unsigned waited = 0;; ++waited) {
    rte_spinlock_lock(&lock_);
    const int rc = rte_eth_timesync_read_tx_timestamp(port_id_, &t);
    rte_spinlock_unlock(&lock_);
    if (rc == 0) return to_ns(t);
    if (waited >= wait_us) return std::nullopt;
    rte_delay_us_block(1);
  }
}

}  // namespace meridian::ptp
