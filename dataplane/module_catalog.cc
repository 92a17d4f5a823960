#include "dataplane/module_catalog.h"

#include "host/cli.h"
#include "ptp/cli.h"
#include "ptp/model.h"
#include "qos/cli.h"
#include "qos/model.h"
#include "vxlan/cli.h"
#include "vxlan/model.h"

namespace meridian::dataplane {

const std::vector<ModuleCatalogEntry>& module_catalog() {
  static const std::vector<ModuleCatalogEntry> kCatalog = {
      {"vxlan", config::vxlan_section_spec, vxlan::show_commands},
      {"qos", config::qos_section_spec, qos::show_commands},
      {"ptp", config::ptp_section_spec, ptp::show_commands},
  };
  return kCatalog;
}

void register_builtin_sections() {
  for (const auto& m : module_catalog()) {
    if (m.section) config::register_section(m.section());
  }
}

std::vector<config::cli::ShowCommand> builtin_show_commands() {
  std::vector<config::cli::ShowCommand> out = host::show_commands();
  for (const auto& m : module_catalog()) {
    if (!m.views) continue;
    for (auto& v : m.views()) out.push_back(std::move(v));
  }
  return out;
}

}  // namespace meridian::dataplane
