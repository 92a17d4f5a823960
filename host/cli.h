// host/'s `meridianctl show host` view: our addresses, the next-hop table,
// and what each client module asked and got.
#pragma once

#include <vector>

#include "config/cli.h"

namespace meridian::host {

std::vector<config::cli::Command> cli_commands();

}  // namespace meridian::host
