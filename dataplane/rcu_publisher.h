// Control -> data publication: the control lcore swaps in a new immutable
// version with one release store and frees the old one only after every
// worker has reported a quiescent state (rte_rcu_qsbr) since the swap.
#pragma once

#include <atomic>
#include <memory>
#include <utility>
#include <vector>

#include <rte_rcu_qsbr.h>

namespace meridian::dataplane {

template <class T>
class RcuPublisher {
 public:
  RcuPublisher(rte_rcu_qsbr* qsbr, std::unique_ptr<const T> initial)
      : qsbr_(qsbr), current_(initial.release()) {}
  ~RcuPublisher() {
    // Callers stop the workers first; nothing can still read these.
    delete current_.load();
  }
  RcuPublisher(const RcuPublisher&) = delete;
  RcuPublisher& operator=(const RcuPublisher&) = delete;

  /// Worker side: the version to use until the next quiescent report.
  const T* load() const { return current_.load(std::memory_order_acquire); }

  /// Control side: room for `n` more retirements, so `publish` cannot fail
  /// to allocate after the swap (which would free a version still in use).
  void reserve_retired(size_t n) { retired_.reserve(retired_.size() + n); }

  /// Control side: makes `next` current; the old version waits for quiescence.
  void publish(std::unique_ptr<const T> next) {
    reserve_retired(1);
    const T* old = current_.exchange(next.release(), std::memory_order_acq_rel);
    retired_.emplace_back(rte_rcu_qsbr_start(qsbr_), std::unique_ptr<const T>(old));
  }

  /// Control side, non-blocking: frees retired versions every worker is past.
  /// Returns how many are still waiting.
  size_t reclaim() {
    std::erase_if(retired_, [this](auto& r) { return rte_rcu_qsbr_check(qsbr_, r.first, false) == 1; });
    return retired_.size();
  }

  /// Blocks until every retired version is freed (shutdown, tests).
  void synchronize() {
    for (auto& r : retired_) rte_rcu_qsbr_check(qsbr_, r.first, true);
    retired_.clear();
  }

  size_t retired() const { return retired_.size(); }

 private:
  rte_rcu_qsbr* qsbr_;
  std::atomic<const T*> current_;
  std::vector<std::pair<uint64_t, std::unique_ptr<const T>>> retired_;
};

}  // namespace meridian::dataplane
