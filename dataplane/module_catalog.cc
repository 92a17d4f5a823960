#include "dataplane/module_catalog.h"

#include "host/cli.h"
#include "multicast_gw/cli.h"
#include "multicast_gw/model.h"
#include "ptp/cli.h"
#include "ptp/model.h"
#include "qos/cli.h"
#include "qos/model.h"
#include "vxlan/cli.h"
#include "vxlan/model.h"

namespace meridian::dataplane {

const std::vector<ModuleCatalogEntry>& module_catalog() {
  static const std::vector<ModuleCatalogEntry> kCatalog = {
      {"vxlan", config::vxlan_section_spec, vxlan::cli_commands},
      {"qos", config::qos_section_spec, qos::cli_commands},
      {"ptp", config::ptp_section_spec, ptp::cli_commands},
      {"multicast", config::multicast_section_spec, mcast::cli_commands},
  };
  return kCatalog;
}

void register_builtin_sections() {
  for (const auto& m : module_catalog()) {
    if (m.section) config::register_section(m.section());
  }
}

std::vector<config::cli::Command> builtin_cli_commands() {
  std::vector<config::cli::Command> out = host::cli_commands();
  for (const auto& m : module_catalog()) {
    if (!m.cli) continue;
    for (auto& c : m.cli()) out.push_back(std::move(c));
  }
  return out;
}

}  // namespace meridian::dataplane
