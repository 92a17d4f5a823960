// Prometheus text exposition (format 0.0.4): families with HELP/TYPE once,
// escaped label values, counters named *_total, values in base units.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace meridian::config {

using Labels = std::vector<std::pair<std::string, std::string>>;

class MetricsWriter {
 public:
  /// Starts a counter family; `name` must end in "_total".
  void counter(const std::string& name, const std::string& help);
  void gauge(const std::string& name, const std::string& help);
  /// Adds a sample to the family started last.
  void sample(const Labels& labels, uint64_t value);
  void sample(const Labels& labels, double value);

  const std::string& text() const { return out_; }

 private:
  void family(const std::string& name, const std::string& help, const char* type);
  void sample_prefix(const Labels& labels);

  std::string out_;
  std::string current_;
  std::set<std::string> families_;
};

}  // namespace meridian::config
