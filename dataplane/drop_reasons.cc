#include "dataplane/drop_reasons.h"

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace meridian::dataplane {
namespace {

/// Registration (rare: once per list) takes the mutex; readers do not:
/// entries below `count` never change once it is published (release).
struct Registry {
  std::mutex mutex;
  std::array<DropReasonInfo, kMaxDropReasons> infos{};
  std::atomic<size_t> count{0};

  Registry() {
    size_t n = 0;
    for (const DropReasonInfo& r : {MERIDIAN_DROP_REASONS(MERIDIAN_DROP_INFO_)}) infos[n++] = r;
    count.store(n, std::memory_order_release);
  }
};

constexpr DropReasonInfo kUnknown{"unknown", DropStage::kIngress, "not a registered drop reason"};

Registry& registry() {
  static Registry r;
  return r;
}

[[noreturn]] void die(const char* what, const char* name) {
  std::fprintf(stderr, "meridian: drop reason '%s': %s\n", name, what);
  std::abort();
}

}  // namespace

DropId register_drop_reasons(std::initializer_list<DropReasonInfo> reasons) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  const size_t first = r.count.load(std::memory_order_relaxed);
  size_t n = first;
  for (const DropReasonInfo& info : reasons) {
    for (size_t i = 0; i < n; ++i) {
      if (std::strcmp(r.infos[i].name, info.name) == 0) die("declared twice (names are shared by all modules)", info.name);
    }
    if (n == kMaxDropReasons) die("no room left: raise kMaxDropReasons", info.name);
    r.infos[n++] = info;
  }
  r.count.store(n, std::memory_order_release);
  return static_cast<DropId>(first);
}

size_t drop_reason_count() { return registry().count.load(std::memory_order_acquire); }

const DropReasonInfo& drop_reason(DropId id) {
  return id < drop_reason_count() ? registry().infos[id] : kUnknown;
}

std::optional<DropId> find_drop_reason(std::string_view name) {
  const size_t n = drop_reason_count();
  for (size_t i = 0; i < n; ++i) {
    if (name == registry().infos[i].name) return static_cast<DropId>(i);
  }
  return std::nullopt;
}

}  // namespace meridian::dataplane
