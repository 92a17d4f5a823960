// The VTEP's `meridianctl show` views: fdb, neighbors, vteps, vxlan.
#pragma once

#include <vector>

#include "config/cli.h"

namespace meridian::vxlan {

std::vector<config::cli::ShowCommand> show_commands();

}  // namespace meridian::vxlan
