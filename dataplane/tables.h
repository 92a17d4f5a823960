// The forwarding state workers read: one immutable snapshot per config
// generation, published with a single pointer store (see rcu_publisher.h).
// The engine's own fields are named here; each module keeps its state in a
// type of its own folder, in a slot of `modules` (ForwardingTables::set and
// ::get), so this file names no module.
#pragma once

#include <array>
#include <atomic>
#include <bitset>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <type_traits>

#include "dataplane/counters.h"

namespace meridian::dataplane {

inline constexpr uint16_t kNoPort = 0xffff;
inline constexpr size_t kMaxModuleTables = 16;

namespace detail {
inline std::atomic<uint8_t> g_next_module_table_slot{0};
/// One slot per module table type, handed out on the type's first set or
/// get (on the control lcore: tables are built before workers read them).
/// More types than slots is a build mistake, stopped at once. Every
/// translation unit of the (statically linked) binary shares the one static.
template <class T>
uint8_t module_table_slot() {
  static const uint8_t slot = [] {
    const uint8_t s = g_next_module_table_slot.fetch_add(1);
    if (s >= kMaxModuleTables) std::abort();
    return s;
  }();
  return slot;
}
}  // namespace detail

struct ForwardingTables {
  /// Increments with every publication (not the config generation).
  uint64_t version = 0;
  /// xconnect_peer[p] is the port that frames received on p leave by.
  std::array<uint16_t, kMaxPorts> xconnect_peer;
  /// Frames with these EtherTypes (after VLAN tags) go to the control lcore.
  std::bitset<65536> punt_ethertype;
  /// punt_ethertype.any(), precomputed: scanning 8 KiB per burst is not free.
  bool punt_enabled = false;
  /// Each module's own state for this version (VXLAN's bridge domains,
  /// QoS's plans, PTP's ports), set in Module::contribute and read by its
  /// stages; null for a module that set none. The engine never looks inside.
  std::array<std::shared_ptr<const void>, kMaxModuleTables> modules{};
  template <class T>
  void set(std::shared_ptr<const T> state) {
    modules[detail::module_table_slot<std::remove_cv_t<T>>()] = std::move(state);
  }
  template <class T>
  const T* get() const {
    return static_cast<const T*>(modules[detail::module_table_slot<std::remove_cv_t<T>>()].get());
  }

  /// The overlay's UDP port (ModuleHost::overlay_udp_port): frames to it
  /// are read as VXLAN in the packet metadata (PacketBatch::meta).
  uint16_t overlay_udp_port = 4789;

  /// The pipeline positions of the stages with work under this version
  /// (Stage::active), in pipeline order: what the workers run.
  std::array<uint8_t, kMaxStages> stages{};
  uint8_t stage_count = 0;

  /// Ports whose sends go through the worker's PortScheduler (QoS shapes
  /// them); any_shaped: any of them set.
  std::array<bool, kMaxPorts> shaped{};
  bool any_shaped = false;

  /// Ports out of the data path (interface gone, device being re-created):
  /// not polled, and what is sent to them is dropped as port_down.
  std::array<bool, kMaxPorts> port_offline{};
  bool any_offline = false;

  bool offline(uint16_t port) const { return any_offline && port < kMaxPorts && port_offline[port]; }

  ForwardingTables() { xconnect_peer.fill(kNoPort); }
};

}  // namespace meridian::dataplane
