// The one registration list: every built-in module, in the order the
// engine asks them (prepare, punt claims, ticks, views). PTP comes before
// VXLAN because both claim ARP/ND: PTP answers for its ports' addresses,
// VXLAN for the VTEP's.
#include "dataplane/module.h"
#include "dataplane/xconnect.h"
#include "ptp/module.h"
#include "qos/module.h"
#include "vxlan/module.h"

namespace meridian::dataplane {

const std::vector<ModuleRegistration>& builtin_modules() {
  static const std::vector<ModuleRegistration> kModules = {
      {"xconnect", XconnectModule::create},
      {"ptp", ptp::PtpModule::create},
      {"vxlan", vxlan::VxlanModule::create},
      {"qos", qos::QosModule::create},
  };
  return kModules;
}

}  // namespace meridian::dataplane
