// The VTEP's `meridianctl` commands: show fdb, neighbors, vteps, vxlan; clear vxlan.
#pragma once

#include <vector>

#include "config/cli.h"

namespace meridian::vxlan {

std::vector<config::cli::Command> cli_commands();

}  // namespace meridian::vxlan
