// Counter sets: a module declares its counters once, as an X-macro list
// beside its code, and gets from it the per-worker storage (single-writer,
// one cache-line-aligned block per worker), the sum over workers, the JSON
// object and the Prometheus families. Nothing is spelled out twice.
//
//   X(field, "json_name", "prometheus_family_total", "label=value" or "", "help"),
//   e.g. a list MY_COUNTERS(X) of
//     X(sent, "sent", "meridian_my_frames_total", "result=sent", "Frames, by result")
//     X(lost, "lost", "meridian_my_frames_total", "result=lost", "")
//   and MERIDIAN_DEFINE_COUNTER_SET(MyCounters, MY_COUNTERS);
//
//   workers: ++counters[w].sent;  control lcore: auto t = sum_counters(span);
//   counters_json(t), write_counters<MyCounters>(out, t)
//
// Consecutive counters naming the same family form one family, told apart by
// their label; the first one's help describes it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/metrics.h"
#include "dataplane/counters.h"

namespace meridian::dataplane {

struct CounterInfo {
  const char* name;    // JSON key
  const char* family;  // Prometheus family (a counter: ends in _total)
  const char* label;   // "key=value" telling the family's members apart, or ""
  const char* help;    // the family's help (on its first member)
};

#define MERIDIAN_COUNTER_FIELD_(f, name, family, label, help) ::meridian::dataplane::SingleWriterCounter f;
#define MERIDIAN_COUNTER_INFO_(f, name, family, label, help) ::meridian::dataplane::CounterInfo{name, family, label, help},
#define MERIDIAN_COUNTER_TOTAL_(f, name, family, label, help) uint64_t f = 0;
#define MERIDIAN_COUNTER_ADD_(f, name, family, label, help) f += c.f.load();
#define MERIDIAN_COUNTER_VALUE_(f, name, family, label, help) f,
#define MERIDIAN_COUNTER_SUB_(f, name, family, label, help) r.f = f >= b.f ? f - b.f : 0;
#define MERIDIAN_DEFINE_COUNTER_SET(Name, LIST)                                                 \
  struct alignas(::meridian::dataplane::kCacheLine) Name {                                     \
    LIST(MERIDIAN_COUNTER_FIELD_)                                                               \
    static constexpr ::meridian::dataplane::CounterInfo kInfo[] = {LIST(MERIDIAN_COUNTER_INFO_)}; \
    static constexpr size_t kCount = std::size(kInfo);                                          \
    /* Plain sums, read on the control lcore. */                                                \
    struct Totals {                                                                             \
      LIST(MERIDIAN_COUNTER_TOTAL_)                                                             \
      void add(const Name& c) { LIST(MERIDIAN_COUNTER_ADD_) }                                   \
      std::array<uint64_t, kCount> values() const { return {LIST(MERIDIAN_COUNTER_VALUE_)}; }  \
      /* Since a baseline ("clear"); never below zero. */                                       \
      Totals minus(const Totals& b) const {                                                     \
        Totals r;                                                                               \
        LIST(MERIDIAN_COUNTER_SUB_)                                                             \
        return r;                                                                               \
      }                                                                                         \
    };                                                                                          \
  };

/// Sums the workers' blocks.
template <class Set>
typename Set::Totals sum_counters(std::span<const Set> blocks) {
  typename Set::Totals t;
  for (const Set& b : blocks) t.add(b);
  return t;
}

/// {json_name: value, ...} for every counter of the set.
template <class Set>
nlohmann::json counters_json(const typename Set::Totals& totals) {
  nlohmann::json out = nlohmann::json::object();
  const auto values = totals.values();
  for (size_t i = 0; i < Set::kCount; ++i) out[Set::kInfo[i].name] = values[i];
  return out;
}

/// The set's Prometheus families for several instances of it (a bridge
/// domain each, told apart by their labels): each family once, with every
/// instance's samples under it.
template <class Set>
void write_counter_instances(config::MetricsWriter& out,
                             const std::vector<std::pair<config::Labels, typename Set::Totals>>& instances) {
  std::vector<std::array<uint64_t, Set::kCount>> values;
  for (const auto& [labels, totals] : instances) values.push_back(totals.values());
  for (size_t i = 0; i < Set::kCount;) {
    const CounterInfo& first = Set::kInfo[i];
    out.counter(first.family, first.help);
    size_t end = i;
    while (end < Set::kCount && std::string(Set::kInfo[end].family) == first.family) ++end;
    for (size_t k = 0; k < instances.size(); ++k) {
      for (size_t j = i; j < end; ++j) {
        config::Labels labels = instances[k].first;
        if (const std::string label = Set::kInfo[j].label; !label.empty()) {
          const size_t eq = label.find('=');
          labels.push_back({label.substr(0, eq), label.substr(eq + 1)});
        }
        out.sample(labels, values[k][j]);
      }
    }
    i = end;
  }
}

/// The set's Prometheus families, each sample also carrying `extra` labels.
template <class Set>
void write_counters(config::MetricsWriter& out, const typename Set::Totals& totals, const config::Labels& extra = {}) {
  write_counter_instances<Set>(out, {{extra, totals}});
}

}  // namespace meridian::dataplane
