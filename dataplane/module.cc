#include "dataplane/module.h"

namespace meridian::dataplane {
namespace {

std::vector<ModuleRegistration>& extra_modules() {
  static std::vector<ModuleRegistration> modules;
  return modules;
}

}  // namespace

void register_module(ModuleRegistration registration) {
  if (registration.section) config::register_section(registration.section());
  extra_modules().push_back(std::move(registration));
}

void unregister_module(const std::string& name) {
  auto& modules = extra_modules();
  for (const auto& m : modules) {
    if (m.name == name && m.section) config::unregister_section(m.section().name);
  }
  std::erase_if(modules, [&name](const ModuleRegistration& r) { return r.name == name; });
}

std::vector<ModuleRegistration> registered_modules() {
  std::vector<ModuleRegistration> all = builtin_modules();
  all.insert(all.end(), extra_modules().begin(), extra_modules().end());
  return all;
}

}  // namespace meridian::dataplane
