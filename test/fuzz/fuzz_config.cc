// libFuzzer: config documents as JSON or YAML text. Parsing must not crash,
// and any accepted document must round-trip through its normalised form.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "config/document.h"
#include "config/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace meridian::config;
  if (size > 64 * 1024) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::string error;
  for (bool yaml : {false, true}) {
    auto doc = yaml ? parse_yaml_text(text, error) : parse_json_text(text, error);
    if (!doc) continue;
    auto r = parse_config(*doc);
    if (r.config.has_value() != r.errors.empty()) std::abort();
    if (r.config) {
      auto again = parse_config(to_json(*r.config));
      if (!again.config || !(*again.config == *r.config)) std::abort();
    }
  }
  return 0;
}
