#include "config/section.h"

#include <algorithm>

namespace meridian::config {
namespace {

std::vector<SectionSpec>& registry() {
  static std::vector<SectionSpec> specs;
  return specs;
}

}  // namespace

void register_section(SectionSpec spec) {
  auto& specs = registry();
  auto it = std::find_if(specs.begin(), specs.end(), [&spec](const SectionSpec& s) { return s.name == spec.name; });
  if (it != specs.end()) *it = std::move(spec);
  else specs.push_back(std::move(spec));
}

void unregister_section(const std::string& name) {
  std::erase_if(registry(), [&name](const SectionSpec& s) { return s.name == name; });
}

const std::vector<SectionSpec>& registered_sections() { return registry(); }

Sections::Sections() {
  for (const auto& spec : registry()) by_name_[spec.name] = spec.make();
}

Sections::Sections(const Sections& other) {
  for (const auto& [name, section] : other.by_name_) by_name_[name] = section->clone();
}

Sections& Sections::operator=(const Sections& other) {
  if (this != &other) {
    Sections copy(other);
    by_name_ = std::move(copy.by_name_);
  }
  return *this;
}

bool Sections::operator==(const Sections& other) const {
  // An absent section equals its registered defaults (a Config built before
  // the registration, or moved from).
  auto same = [](const std::string& name, const Section& a, const Section* b) {
    if (b) return a.equals(*b);
    for (const auto& spec : registry()) {
      if (spec.name == name) return a.equals(*spec.make());
    }
    return false;
  };
  for (const auto& [name, section] : by_name_) {
    if (!same(name, *section, other.find(name))) return false;
  }
  for (const auto& [name, section] : other.by_name_) {
    if (!find(name) && !same(name, *section, nullptr)) return false;
  }
  return true;
}

const Section* Sections::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second.get();
}

Section* Sections::find(const std::string& name) {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second.get();
}

}  // namespace meridian::config
