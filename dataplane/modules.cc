// The engine's registration list: every built-in module's factory, in the
// order the engine creates them and asks them to prepare, tick and show
// themselves. Their DPDK-free parts (config section, meridianctl views) are
// listed in dataplane/module_catalog.cc.
// PTP prepares last: building its service has effects outside the process
// (the NTP SHM segment, the PMD's send-stamp queue), so it is not built for
// a change another module refuses.
#include "dataplane/module.h"
#include "dataplane/xconnect.h"
#include "multicast_gw/module.h"
#include "ptp/module.h"
#include "qos/module.h"
#include "vxlan/module.h"

namespace meridian::dataplane {

const std::vector<ModuleRegistration>& builtin_modules() {
  static const std::vector<ModuleRegistration> kModules = {
      {"xconnect", XconnectModule::create},
      {"vxlan", vxlan::VxlanModule::create},
      {"multicast", mcast::MulticastModule::create},
      {"qos", qos::QosModule::create},
      {"ptp", ptp::PtpModule::create},
  };
  return kModules;
}

}  // namespace meridian::dataplane
