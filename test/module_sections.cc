// The built-in modules' config sections, registered before main() for the
// DPDK-free test binaries (unit tests, config fuzzers) that parse documents:
// the same catalog meridiand registers from (dataplane/module_catalog.cc).
#include "dataplane/module_catalog.h"

namespace {

const bool kSectionsRegistered = [] {
  meridian::dataplane::register_builtin_sections();
  return true;
}();

}  // namespace
