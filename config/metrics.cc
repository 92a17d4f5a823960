#include "config/metrics.h"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace meridian::config {
namespace {

std::string escape(const std::string& s, bool quote) {
  std::string out;
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (quote && c == '"') out += "\\\"";
    else out += c;
  }
  return out;
}

}  // namespace

void MetricsWriter::family(const std::string& name, const std::string& help, const char* type) {
  if (!families_.insert(name).second) throw std::logic_error("metric family twice: " + name);
  current_ = name;
  out_ += "# HELP " + name + " " + escape(help, false) + "\n";
  out_ += "# TYPE " + name + " " + type + "\n";
}

void MetricsWriter::counter(const std::string& name, const std::string& help) {
  if (name.size() < 6 || name.compare(name.size() - 6, 6, "_total") != 0) {
    throw std::logic_error("counter without _total: " + name);
  }
  family(name, help, "counter");
}

void MetricsWriter::gauge(const std::string& name, const std::string& help) {
  family(name, help, "gauge");
}

void MetricsWriter::sample_prefix(const Labels& labels) {
  out_ += current_;
  if (!labels.empty()) {
    out_ += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i) out_ += ',';
      out_ += labels[i].first + "=\"" + escape(labels[i].second, true) + "\"";
    }
    out_ += '}';
  }
  out_ += ' ';
}

void MetricsWriter::sample(const Labels& labels, uint64_t value) {
  sample_prefix(labels);
  out_ += std::to_string(value) + "\n";
}

void MetricsWriter::sample(const Labels& labels, double value) {
  sample_prefix(labels);
  if (std::isnan(value)) {
    out_ += "NaN\n";
  } else if (std::isinf(value)) {
    out_ += value > 0 ? "+Inf\n" : "-Inf\n";
  } else {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", value);
    out_ += std::string(buf) + "\n";
  }
}

}  // namespace meridian::config
