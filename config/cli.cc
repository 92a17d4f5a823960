#include "config/cli.h"

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace meridian::config::cli {

void print_table(const std::vector<std::string>& header, const Rows& rows) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) {
      std::cout << std::left << std::setw(static_cast<int>(width[i]) + 2) << cells[i];
    }
    std::cout << "\n";
  };
  line(header);
  for (const auto& r : rows) line(r);
}

std::string num(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "-";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

std::string fixed(double v, int digits) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << v;
  return out.str();
}

std::string human_rate(const json& j, const char* key) {
  const double v = j.value(key, 0.0);
  std::ostringstream out;
  out << std::fixed << std::setprecision(1);
  if (v >= 1e9) out << v / 1e9 << "G";
  else if (v >= 1e6) out << v / 1e6 << "M";
  else if (v >= 1e3) out << v / 1e3 << "K";
  else out << std::setprecision(0) << v;
  return out.str();
}

}  // namespace meridian::config::cli
