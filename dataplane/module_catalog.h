// The built-in modules' DPDK-free parts, one line each: the config section
// every parsed document holds (meridiand, the benches, the unit tests and
// fuzzers register them from here) and the `meridianctl` commands. The
// modules' DPDK side, their factories, is dataplane/modules.cc: a module is a
// line there and a line here (meridianctl and the fuzzers link no DPDK).
#pragma once

#include <vector>

#include "config/cli.h"
#include "config/section.h"

namespace meridian::dataplane {

struct ModuleCatalogEntry {
  const char* name;
  config::SectionSpec (*section)();                       // null: no config section of its own
  std::vector<config::cli::Command> (*cli)();         // null: no meridianctl command
};

const std::vector<ModuleCatalogEntry>& module_catalog();

/// Registers the built-in modules' config sections; call before parsing a
/// document (meridiand, benches and tests do so first thing).
void register_builtin_sections();

/// Every built-in `meridianctl` command (show, clear) of the modules and of host/.
std::vector<config::cli::Command> builtin_cli_commands();

}  // namespace meridian::dataplane
