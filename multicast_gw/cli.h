// The multicast gateway's `meridianctl` commands: show igmp groups,
// show mld groups, show igmp querier, show mroutes.
#pragma once

#include <vector>

#include "config/cli.h"

namespace meridian::mcast {

std::vector<config::cli::Command> cli_commands();

}  // namespace meridian::mcast
