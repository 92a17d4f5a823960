// DPDK port bring-up from a PortConfig, and the port's live facts and
// counters as JSON for the API.
#pragma once

#include <cstdint>
#include <chrono>
#include <string>
#include <vector>

#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_mempool.h>
#include <nlohmann/json.hpp>

#include "config/model.h"

namespace meridian::dataplane {

/// A port's link as the appliance sees it. For a port backed by a Linux
/// interface (net_af_packet, net_tap, net_pcap on an interface) the PMD says
/// "up" whatever happens to the interface, so the interface itself is read.
enum class LinkState : uint8_t {
  kUp,
  kDown,    // no carrier, or administratively down
  kAbsent,  // the Linux interface does not exist (deleted)
};
const char* link_state_name(LinkState s);

struct LinkReading {
  /// False when the interface could not be read for another reason than its
  /// absence (e.g. out of file descriptors): the last state stands.
  bool known = true;
  LinkState state = LinkState::kUp;
  uint32_t speed_mbps = 0;  // 0 when unknown
  unsigned if_index = 0;    // the Linux interface's index now; 0 when none
};

struct PortRuntime {
  std::string name;
  std::string devargs;
  uint16_t port_id = 0;
  std::string driver;
  uint16_t rx_queues = 0;
  uint16_t tx_queues = 0;        // workers, plus the control queue when the PMD has one
  int control_tx_queue = -1;     // -1: PMD offers no spare TX queue for control
  /// net_af_packet: the packet socket behind the control TX queue (owned by
  /// the PMD), whose kernel Tx timestamps PTP reads; -1 otherwise.
  int kernel_tx_socket = -1;
  bool rss_requested = false;
  uint64_t rss_hf = 0;           // hash functions actually enabled, 0 = no RSS
  unsigned mtu = 0;
  bool promiscuous = false;
  bool hotplugged = false;       // probed by us after EAL init; detached at close
  bool started = false;
  rte_ether_addr mac{};
  uint16_t rx_descriptors = 0;   // per queue, after the PMD's adjustment
  uint16_t tx_descriptors = 0;
  uint64_t flow_type_rss_offloads = 0;
  uint64_t tx_offload_capa = 0;
  rte_eth_txconf default_txconf{};
  unsigned if_index = 0;         // the Linux interface's index at probe (0: none)
  /// net_af_packet: the PMD's packet sockets (one per queue pair), whose
  /// rings the kernel fills; frames it dropped on a full ring never reach
  /// rx_burst, so they are read from the sockets (PACKET_STATISTICS).
  std::vector<int> packet_fds;
  uint64_t kernel_rx_drops = 0;

  // Link tracking, by the control lcore (Dataplane::poll_links).
  LinkState link = LinkState::kUp;
  uint64_t link_changes = 0;     // transitions seen
  uint64_t recoveries = 0;       // times the device was re-created after its interface came back
  /// Out of the data path (its interface is gone, or it is being re-created):
  /// workers neither poll nor send to it (port_down), and after
  /// `offline_token` passed RCU the control lcore may close the device.
  bool offline = false;
  uint64_t offline_token = 0;
  /// A failed re-creation is retried after `retry_backoff` (1 s, doubling
  /// to 30 s), not at every link poll.
  std::chrono::steady_clock::time_point retry_at{};
  std::chrono::milliseconds retry_backoff{0};
};

/// Finds (or hot-plugs) the device and plans its queues for `workers`
/// workers plus a control TX queue. Touches no buffers, so the mempool can be
/// sized from the plan. Returns "" or a message naming what failed.
std::string port_probe(const config::PortConfig& cfg, unsigned workers, PortRuntime& out);
/// Configures the planned queues on `pool`, sets MTU/promiscuous/RSS and
/// starts the port. Returns "" or a message naming what failed.
std::string port_start(const config::PortConfig& cfg, rte_mempool* pool, PortRuntime& port);
/// The port called `name`, or null.
const PortRuntime* find_port(const std::vector<PortRuntime>& ports, const std::string& name);

/// Stops and closes a started port and detaches a hot-plugged device; a port
/// that was only probed is left untouched.
void port_close(PortRuntime& port);

/// Stops, closes and detaches the device whatever created it, so that the
/// same devargs can be probed again (port recovery).
void port_detach(PortRuntime& port);

/// Static facts, link state, rte_eth_stats incl. per-queue, and xstats.
nlohmann::json port_json(const PortRuntime& port);
/// The link now: the Linux interface's existence and flags (IFF_UP and
/// IFF_RUNNING) when the port has one, else the PMD's link status.
LinkReading read_link(const PortRuntime& port);
/// Adds what the kernel dropped on the port's packet-socket rings since the
/// last call (PACKET_STATISTICS clears on read) to kernel_rx_drops.
void read_kernel_drops(PortRuntime& port);

/// Whether a port whose interface was deleted is re-created when it
/// returns (net_af_packet: the interface belongs to someone else).
bool recoverable(const PortRuntime& port);

std::string mac_string(const rte_ether_addr& mac);

/// The Linux interface a kernel-backed port sends and receives through
/// (net_af_packet's or net_tap's iface= devarg, net_pcap's iface= or
/// rx_iface=), or "" for other drivers.
std::string linux_interface(const PortRuntime& port);

}  // namespace meridian::dataplane
