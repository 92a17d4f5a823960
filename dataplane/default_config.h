// The built-in default config: the embedded lab that `scripts/demo` builds
// (scripts/lab.py VxlanLab): hostA behind the access port, Meridian as the
// VTEP 10.1.0.1 / fd01::1 on the underlay port, bridge domain VNI 100
// flooding to two Linux kernel VTEPs.
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
    {"name": "access", "devargs": "net_af_packet0,iface=mvx-a,qpairs=2"},
    {"name": "underlay", "devargs": "net_af_packet1,iface=mvx-u,qpairs=2"}
  ],
  "punt": {"ethertypes": ["0x88cc"]},
  "vxlan": {
    "vtep": {"interfaces": [{"port": "underlay", "ipv4": "10.1.0.1/24", "ipv6": "fd01::1/64"}]},
    "bridge_domains": [{
      "vni": 100,
      "name": "media",
      "attachments": [{"port": "access", "vlan": 0}],
      "flood": ["10.1.0.2", "10.1.0.3"]
    }]
  }
})json";

}  // namespace meridian::dataplane
