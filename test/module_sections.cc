// The built-in modules' config sections, registered before main() for the
// DPDK-free test binaries (unit tests, config fuzzers) that parse documents;
// meridiand registers them from dataplane/modules.cc.
#include "ptp/model.h"
#include "qos/model.h"
#include "vxlan/model.h"

namespace {

const bool kSectionsRegistered = [] {
  meridian::config::register_section(meridian::config::vxlan_section_spec());
  meridian::config::register_section(meridian::config::qos_section_spec());
  meridian::config::register_section(meridian::config::ptp_section_spec());
  return true;
}();

}  // namespace
