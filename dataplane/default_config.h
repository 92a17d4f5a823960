// The built-in default config: the embedded lab that `scripts/demo` builds
// (two host namespaces patched together through meridiand on af_packet).
#pragma once

namespace meridian::dataplane {

inline constexpr const char* kDefaultConfig = R"json({
  "dataplane": {
    "lcores": [0, 1],
    "main_lcore": 0,
    "memory_mb": 512,
    "file_prefix": "meridian-lab",
    "mbufs": 16384,
    "idle_sleep_us": 20
  },
  "ports": [
    {"name": "lab-a", "devargs": "net_af_packet0,iface=mlab-a,qpairs=2", "rx_descriptors": 1024},
    {"name": "lab-b", "devargs": "net_af_packet1,iface=mlab-b,qpairs=2", "rx_descriptors": 1024}
  ],
  "xconnect": [{"a": "lab-a", "b": "lab-b"}],
  "punt": {"ethertypes": ["0x88cc"]}
})json";

}  // namespace meridian::dataplane
