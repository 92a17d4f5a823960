// QoS's `meridianctl show qos [port P]` view: each port's class tree.
#pragma once

#include <vector>

#include "config/cli.h"

namespace meridian::qos {

std::vector<config::cli::Command> cli_commands();

}  // namespace meridian::qos
