// Module config sections: each module's part of the document, declared by
// the module (its `<module>/model.*`) and registered at start-up, so that
// `config/` parses, validates, compares and writes sections it does not know.
//
// A section is a plain struct T with `operator==`; the module gives its
// parse (structure and ranges, with JSON-pointer paths), its JSON writer and
// its validation against the whole document (ports, other sections).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/field_error.h"

namespace meridian::config {

struct Config;

/// A section's value, type-erased.
class Section {
 public:
  virtual ~Section() = default;
  virtual std::unique_ptr<Section> clone() const = 0;
  virtual bool equals(const Section& other) const = 0;
};

template <class T>
class SectionOf final : public Section {
 public:
  T value{};
  std::unique_ptr<Section> clone() const override { return std::make_unique<SectionOf>(*this); }
  bool equals(const Section& other) const override {
    const auto* o = dynamic_cast<const SectionOf*>(&other);
    return o && o->value == value;
  }
};

struct SectionSpec {
  /// The document key ("vxlan").
  std::string name;
  /// The value of an absent section.
  std::function<std::unique_ptr<Section>()> make;
  /// Structure and value ranges, each error with its path under `path`.
  std::function<void(const nlohmann::json& j, const std::string& path, Section& out, FieldErrors& errors)> parse;
  /// The normalised section, every default written out.
  std::function<nlohmann::json(const Section&)> to_json;
  /// Rules that need the whole document; `warnings` are accepted but shown.
  std::function<void(const Config& config, FieldErrors& errors, FieldErrors& warnings)> validate;
};

/// Adds (or replaces, by name) a section every document may hold from now on.
void register_section(SectionSpec spec);
void unregister_section(const std::string& name);
/// In registration order.
const std::vector<SectionSpec>& registered_sections();

/// The module sections of one document, by name; copies are deep.
class Sections {
 public:
  /// Every registered section, at its defaults.
  Sections();
  Sections(const Sections& other);
  Sections& operator=(const Sections& other);
  Sections(Sections&&) noexcept = default;
  Sections& operator=(Sections&&) noexcept = default;
  bool operator==(const Sections& other) const;

  const Section* find(const std::string& name) const;
  Section* find(const std::string& name);
  void set(const std::string& name, std::unique_ptr<Section> section) { by_name_[name] = std::move(section); }

 private:
  std::map<std::string, std::unique_ptr<Section>> by_name_;
};

}  // namespace meridian::config
