// The one registration list: every built-in module, in the order the
// engine creates them and asks them to prepare, tick and show themselves.
// PTP prepares last: building its service has effects outside the process
// (the NTP SHM segment, the PMD's send-stamp queue), so it is not built for
// a change another module refuses.
#include "dataplane/module.h"
#include "dataplane/xconnect.h"
#include "ptp/module.h"
#include "qos/module.h"
#include "vxlan/module.h"

namespace meridian::dataplane {

const std::vector<ModuleRegistration>& builtin_modules() {
  static const std::vector<ModuleRegistration> kModules = {
      {"xconnect", XconnectModule::create},
      {"vxlan", vxlan::VxlanModule::create, config::vxlan_section_spec},
      {"qos", qos::QosModule::create, config::qos_section_spec},
      {"ptp", ptp::PtpModule::create, config::ptp_section_spec},
  };
  return kModules;
}

}  // namespace meridian::dataplane
