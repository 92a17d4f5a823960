// PTP's `meridianctl show ptp` view: the clock, its parent and its ports.
#pragma once

#include <vector>

#include "config/cli.h"

namespace meridian::ptp {

std::vector<config::cli::Command> cli_commands();

}  // namespace meridian::ptp
