// EAL bootstrap from the config document: lcores, memory (hugepages when
// reserved, --no-huge otherwise), file prefix and devices.
#pragma once

#include <string>
#include <vector>

#include "config/model.h"

namespace meridian::dataplane {

/// True when the kernel has free hugepages reserved (HugePages_Free > 0).
bool hugepages_available();

/// The EAL argv (argv[0] included) for `config`.
std::vector<std::string> build_eal_args(const config::Config& config, bool hugepages,
                                        const std::string& log_level);

/// Routes DPDK's own log lines into the JSON log (module "dpdk").
void redirect_dpdk_log();

/// rte_eal_init with `args`; returns "" or the error.
std::string eal_init(const std::vector<std::string>& args);

}  // namespace meridian::dataplane
