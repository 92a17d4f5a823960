// DPDK port bring-up from a PortConfig, and the port's live facts and
// counters as JSON for the API.
#pragma once

#include <cstdint>
#include <string>

#include <rte_ether.h>
#include <rte_mempool.h>
#include <nlohmann/json.hpp>

#include "model.h"

namespace meridian::dataplane {

struct PortRuntime {
  std::string name;
  std::string devargs;
  uint16_t port_id = 0;
  std::string driver;
  uint16_t rx_queues = 0;
  uint16_t tx_queues = 0;        // workers, plus the control queue when the PMD has one
  int control_tx_queue = -1;     // -1: PMD offers no spare TX queue for control
  bool rss_requested = false;
  uint64_t rss_hf = 0;           // hash functions actually enabled, 0 = no RSS
  unsigned mtu = 0;
  bool promiscuous = false;
  bool hotplugged = false;       // probed by us after EAL init; detached at close
  rte_ether_addr mac{};
};

/// Finds (or hot-plugs) the device, configures queues for `workers` workers
/// plus a control TX queue, sets MTU/promiscuous/RSS and starts it.
/// Returns "" or a message naming what failed.
std::string port_setup(const config::PortConfig& cfg, unsigned workers, rte_mempool* pool,
                       PortRuntime& out);
/// Stops and closes the port (and detaches a hot-plugged device).
void port_close(PortRuntime& port);

/// Static facts, link state, rte_eth_stats incl. per-queue, and xstats.
nlohmann::json port_json(const PortRuntime& port);
/// "up"/"down", speed in Mbit/s (0 when unknown).
bool port_link(const PortRuntime& port, uint32_t& speed_mbps);

std::string mac_string(const rte_ether_addr& mac);

}  // namespace meridian::dataplane
