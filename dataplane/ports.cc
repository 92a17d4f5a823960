#include "dataplane/ports.h"

#include <dirent.h>
#include <net/if.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_ethdev.h>

#include "config/log.h"

namespace meridian::dataplane {
namespace {

std::string errstr(int rc) { return std::strerror(rc < 0 ? -rc : rc); }

/// These PMDs create their queues at probe time (af_packet qpairs= sockets
/// in one fanout group, one pcap file per queue, one ring per queue) and
/// deliver to all of them, so every queue they offer must be polled.
bool queues_fixed_at_probe(const std::string& driver) {
  for (const char* p : {"net_af_packet", "net_pcap", "net_ring"}) {
    if (driver == p) return true;
  }
  return false;
}

/// This process's AF_PACKET sockets bound to `interface`, lowest fd first.
/// net_af_packet opens one socket per queue pair, in queue order, and fds
/// are handed out lowest first, so the nth is queue n's. `existing`: sockets
/// on the interface from before the probe (the transparent clock's or PTP's
/// taps, when a port is re-created), which are not the PMD's.
std::vector<int> packet_sockets(const std::string& interface, const std::vector<int>& existing = {}) {
  std::vector<int> fds;
  const unsigned ifindex = if_nametoindex(interface.c_str());
  if (ifindex == 0) return fds;
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return fds;
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == dirfd(dir)) continue;
    struct stat st{};
    if (fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    sockaddr_ll addr{};
    socklen_t len = sizeof(addr);
    if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&addr), &len) != 0) continue;
    if (addr.sll_family == AF_PACKET && addr.sll_ifindex == static_cast<int>(ifindex) &&
        std::find(existing.begin(), existing.end(), fd) == existing.end()) {
      fds.push_back(static_cast<int>(fd));
    }
  }
  closedir(dir);
  std::sort(fds.begin(), fds.end());
  return fds;
}

/// net_af_packet's sockets see every frame the interface carries, leaving
/// ones included (the packet taps), and its Rx path does not look at the
/// direction: a frame another local socket sends out of the interface (the
/// kernel's own IPv6 link-local chatter, the transparent clock's stamping
/// socket) would come back as received and be forwarded. A classic BPF
/// filter on each of them keeps only arriving frames. Its own sends never
/// come back: the kernel skips the sender's fanout group.
std::string ignore_outgoing_frames(const std::vector<int>& fds, const std::string& interface) {
  static const sock_filter kArrivingOnly[] = {
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_PKTTYPE)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0),
      BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),
  };
  const sock_fprog prog{static_cast<unsigned short>(sizeof(kArrivingOnly) / sizeof(kArrivingOnly[0])),
                        const_cast<sock_filter*>(kArrivingOnly)};
  if (fds.empty()) return "no packet socket of net_af_packet on '" + interface + "'";
  for (int fd : fds) {
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) != 0) {
      return "cannot filter outgoing frames on '" + interface + "': " + std::strerror(errno);
    }
  }
  return "";
}

}  // namespace

std::string mac_string(const rte_ether_addr& mac) {
  char buf[RTE_ETHER_ADDR_FMT_SIZE];
  rte_ether_format_addr(buf, sizeof buf, &mac);
  return buf;
}

std::string linux_interface(const PortRuntime& port) {
  const bool pcap = port.driver == "net_pcap";
  if (port.driver != "net_af_packet" && port.driver != "net_tap" && !pcap) return "";
  const std::string& d = port.devargs;
  for (const char* key : {"iface=", "rx_iface="}) {
    if (!pcap && std::string_view(key) != "iface=") continue;
    const size_t key_len = std::strlen(key);
    for (size_t at = d.find(','); at != std::string::npos; at = d.find(',', at + 1)) {
      if (d.compare(at + 1, key_len, key) != 0) continue;
      const size_t start = at + 1 + key_len, end = d.find(',', start);
      return d.substr(start, end == std::string::npos ? std::string::npos : end - start);
    }
  }
  return "";
}

const char* link_state_name(LinkState s) {
  switch (s) {
    case LinkState::kUp: return "up";
    case LinkState::kDown: return "down";
    case LinkState::kAbsent: return "absent";
  }
  return "?";
}

bool recoverable(const PortRuntime& port) { return port.driver == "net_af_packet"; }

void read_kernel_drops(PortRuntime& port) {
  if (!port.started) return;
  for (int fd : port.packet_fds) {
    tpacket_stats stats{};
    socklen_t len = sizeof(stats);
    if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &stats, &len) == 0) port.kernel_rx_drops += stats.tp_drops;
  }
}

LinkReading read_link(const PortRuntime& port) {
  LinkReading r;
  rte_eth_link link{};
  if (port.started && rte_eth_link_get_nowait(port.port_id, &link) == 0) {
    r.speed_mbps = link.link_speed == RTE_ETH_SPEED_NUM_UNKNOWN ? 0 : link.link_speed;
    r.state = link.link_status == RTE_ETH_LINK_UP ? LinkState::kUp : LinkState::kDown;
  } else {
    r.state = LinkState::kDown;
  }
  const std::string interface = linux_interface(port);
  if (interface.empty()) return r;
  // Only "no such device" means the interface is gone; any other failure
  // leaves the state unknown rather than taking a live port offline.
  const auto failed = [&r](int error) {
    if (error == ENODEV || error == ENXIO) r.state = LinkState::kAbsent;
    else r.known = false;
    return r;
  };
  r.if_index = if_nametoindex(interface.c_str());
  if (r.if_index == 0) return failed(errno);
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return failed(errno);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, interface.c_str(), IFNAMSIZ - 1);
  const bool read = ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
  const int error = errno;
  close(fd);
  if (!read) return failed(error);
  // IFF_RUNNING is the operational state: carrier (for veth, the peer is up).
  if (!(ifr.ifr_flags & IFF_UP) || !(ifr.ifr_flags & IFF_RUNNING)) r.state = LinkState::kDown;
  else if (port.started) r.state = LinkState::kUp;
  return r;
}

std::string port_probe(const config::PortConfig& cfg, unsigned workers, PortRuntime& out) {
  out = PortRuntime{};
  out.name = cfg.name;
  out.devargs = cfg.devargs;
  const std::string device = config::device_name(cfg.devargs);
  uint16_t port_id;
  std::vector<int> sockets_before;
  if (rte_eth_dev_get_port_by_name(device.c_str(), &port_id) != 0) {
    // Not created by the EAL arguments: hot-plug it (tests, or EAL run by an
    // embedder, or a re-created port: whatever of ours listens there already
    // is not the PMD's).
    PortRuntime planned;
    planned.driver = "net_af_packet";
    planned.devargs = cfg.devargs;
    if (const std::string interface = linux_interface(planned); !interface.empty()) {
      sockets_before = packet_sockets(interface);
    }
    const bool pci = config::is_pci_address(device);
    const std::string probe = pci ? "pci:" + cfg.devargs : "vdev:" + cfg.devargs;
    int rc = rte_dev_probe(probe.c_str());
    if (rc != 0 || rte_eth_dev_get_port_by_name(device.c_str(), &port_id) != 0) {
      return "cannot probe device '" + cfg.devargs + "': " + (rc ? errstr(rc) : "no ethdev created");
    }
    out.hotplugged = true;
  }
  out.port_id = port_id;
  if (port_id >= 32) return "port id " + std::to_string(port_id) + " beyond the supported 32 ports";

  rte_eth_dev_info info{};
  if (int rc = rte_eth_dev_info_get(port_id, &info); rc != 0) return "dev_info: " + errstr(rc);
  out.driver = info.driver_name ? info.driver_name : "";

  // RX: every queue of a PMD whose queues exist from probe; otherwise one per
  // worker (RSS spreads flows over them).
  unsigned rxq = cfg.rx_queues ? cfg.rx_queues
                               : (queues_fixed_at_probe(out.driver)
                                      ? info.max_rx_queues
                                      : std::min<unsigned>(workers, info.max_rx_queues));
  if (rxq == 0 || rxq > info.max_rx_queues) {
    return "needs " + std::to_string(rxq) + " RX queues but the device offers " +
           std::to_string(info.max_rx_queues);
  }
  rxq = std::min<unsigned>(rxq, 64);
  // TX: one per worker (lock-free), plus one for the control lcore when offered.
  if (info.max_tx_queues < workers) {
    return "needs " + std::to_string(workers) + " TX queues (one per worker) but the device offers " +
           std::to_string(info.max_tx_queues) + " (for net_af_packet raise qpairs=)";
  }
  const unsigned txq = info.max_tx_queues > workers ? workers + 1 : workers;
  out.rx_queues = static_cast<uint16_t>(rxq);
  out.tx_queues = static_cast<uint16_t>(txq);
  out.control_tx_queue = txq > workers ? static_cast<int>(workers) : -1;
  if (out.driver == "net_af_packet") {
    const std::string interface = linux_interface(out);
    out.packet_fds = packet_sockets(interface, sockets_before);
    if (out.control_tx_queue >= 0) {
      const auto q = static_cast<size_t>(out.control_tx_queue);
      out.kernel_tx_socket = q < out.packet_fds.size() ? out.packet_fds[q] : -1;
    }
    if (!interface.empty()) {
      if (std::string e = ignore_outgoing_frames(out.packet_fds, interface); !e.empty()) return e;
    }
  }
  out.rx_descriptors = static_cast<uint16_t>(cfg.rx_descriptors);
  out.tx_descriptors = static_cast<uint16_t>(cfg.tx_descriptors);
  if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &out.rx_descriptors, &out.tx_descriptors); rc != 0) {
    return "descriptor counts: " + errstr(rc);
  }
  out.if_index = info.if_index;
  if (!linux_interface(out).empty() && out.if_index == 0) out.if_index = if_nametoindex(linux_interface(out).c_str());
  out.flow_type_rss_offloads = info.flow_type_rss_offloads;
  out.tx_offload_capa = info.tx_offload_capa;
  out.default_txconf = info.default_txconf;
  return "";
}

std::string port_start(const config::PortConfig& cfg, rte_mempool* pool, PortRuntime& out) {
  const uint16_t port_id = out.port_id;
  rte_eth_conf conf{};
  out.rss_requested = cfg.rss;
  const uint64_t wanted = RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_TCP;
  if (cfg.rss && out.rx_queues > 1 && (out.flow_type_rss_offloads & wanted) != 0) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = out.flow_type_rss_offloads & wanted;
    out.rss_hf = conf.rx_adv_conf.rss_conf.rss_hf;
  }
  // No MBUF_FAST_FREE: head-end replication sends reference-counted clones
  // and chained header segments, which that offload does not allow.
  if (int rc = rte_eth_dev_configure(port_id, out.rx_queues, out.tx_queues, &conf); rc != 0) {
    return "configure: " + errstr(rc);
  }
  const uint16_t nb_rxd = out.rx_descriptors, nb_txd = out.tx_descriptors;
  const int socket = rte_eth_dev_socket_id(port_id);
  const unsigned sock = socket < 0 ? 0 : static_cast<unsigned>(socket);
  for (uint16_t q = 0; q < out.rx_queues; ++q) {
    if (int rc = rte_eth_rx_queue_setup(port_id, q, nb_rxd, sock, nullptr, pool); rc != 0) {
      return "rx queue " + std::to_string(q) + ": " + errstr(rc);
    }
  }
  rte_eth_txconf txconf = out.default_txconf;
  txconf.offloads = conf.txmode.offloads;
  for (uint16_t q = 0; q < out.tx_queues; ++q) {
    if (int rc = rte_eth_tx_queue_setup(port_id, q, nb_txd, sock, &txconf); rc != 0) {
      return "tx queue " + std::to_string(q) + ": " + errstr(rc);
    }
  }
  uint16_t current_mtu = 0;
  rte_eth_dev_get_mtu(port_id, &current_mtu);
  if (current_mtu != cfg.mtu) {
    if (int rc = rte_eth_dev_set_mtu(port_id, static_cast<uint16_t>(cfg.mtu)); rc != 0) {
      if (rc != -ENOTSUP) return "set MTU " + std::to_string(cfg.mtu) + ": " + errstr(rc);
      log::warn("port", "PMD cannot set MTU; keeping the device's", {{"port", cfg.name}, {"mtu", current_mtu}});
    }
  }
  rte_eth_dev_get_mtu(port_id, &current_mtu);
  out.mtu = current_mtu;
  if (int rc = rte_eth_dev_start(port_id); rc != 0) return "start: " + errstr(rc);
  out.started = true;
  // Like a live change, a PMD that refuses the mode is reported, not fatal:
  // the API shows the device's actual state.
  int prc = cfg.promiscuous ? rte_eth_promiscuous_enable(port_id) : rte_eth_promiscuous_disable(port_id);
  out.promiscuous = rte_eth_promiscuous_get(port_id) == 1;
  if (prc != 0 || out.promiscuous != cfg.promiscuous) {
    log::warn("port", "promiscuous mode not set by the PMD",
              {{"port", cfg.name}, {"wanted", cfg.promiscuous}, {"rc", prc}});
  }
  rte_eth_macaddr_get(port_id, &out.mac);
  log::info("port", "started",
            {{"port", cfg.name}, {"port_id", port_id}, {"driver", out.driver},
             {"rx_queues", out.rx_queues}, {"tx_queues", out.tx_queues},
             {"control_tx_queue", out.control_tx_queue}, {"rss", out.rss_hf != 0},
             {"mtu", out.mtu}, {"mac", mac_string(out.mac)}});
  return "";
}

const PortRuntime* find_port(const std::vector<PortRuntime>& ports, const std::string& name) {
  for (const auto& p : ports) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

namespace {
/// Stops and closes the device; detaches it from its bus when `remove`.
void close_device(PortRuntime& port, bool remove) {
  rte_eth_dev_info info{};
  rte_device* dev = rte_eth_dev_info_get(port.port_id, &info) == 0 ? info.device : nullptr;
  if (port.started) rte_eth_dev_stop(port.port_id);
  rte_eth_dev_close(port.port_id);
  if (remove && dev) rte_dev_remove(dev);
  port.started = false;
}
}  // namespace

void port_close(PortRuntime& port) {
  // A port only probed (startup failed before it was configured) is left as
  // the EAL made it: a failed start has no side effects on existing devices.
  if (!port.started && !port.hotplugged) return;
  close_device(port, port.hotplugged);
}

void port_detach(PortRuntime& port) { close_device(port, true); }

nlohmann::json port_json(const PortRuntime& p) {
  rte_eth_link link{};
  rte_eth_link_get_nowait(p.port_id, &link);
  rte_eth_stats st{};
  rte_eth_stats_get(p.port_id, &st);

  nlohmann::json rxq = nlohmann::json::array(), txq = nlohmann::json::array();
  for (uint16_t q = 0; q < p.rx_queues && q < RTE_ETHDEV_QUEUE_STAT_CNTRS; ++q) {
    rxq.push_back({{"queue", q}, {"packets", st.q_ipackets[q]}, {"bytes", st.q_ibytes[q]},
                   {"errors", st.q_errors[q]}});
  }
  for (uint16_t q = 0; q < p.tx_queues && q < RTE_ETHDEV_QUEUE_STAT_CNTRS; ++q) {
    txq.push_back({{"queue", q}, {"packets", st.q_opackets[q]}, {"bytes", st.q_obytes[q]}});
  }
  nlohmann::json xstats = nlohmann::json::object();
  const int n = rte_eth_xstats_get(p.port_id, nullptr, 0);
  if (n > 0) {
    std::vector<rte_eth_xstat> values(static_cast<size_t>(n));
    std::vector<rte_eth_xstat_name> names(static_cast<size_t>(n));
    const int got = rte_eth_xstats_get(p.port_id, values.data(), static_cast<unsigned>(n));
    const int got_names = rte_eth_xstats_get_names(p.port_id, names.data(), static_cast<unsigned>(n));
    for (int i = 0; i < std::min({got, got_names, n}); ++i) {
      if (values[i].id < static_cast<uint64_t>(got_names)) xstats[names[values[i].id].name] = values[i].value;
    }
  }
  uint32_t speed = link.link_speed == RTE_ETH_SPEED_NUM_UNKNOWN ? 0 : link.link_speed;
  nlohmann::json rss_functions = nlohmann::json::array();
  if (p.rss_hf & RTE_ETH_RSS_IP) rss_functions.push_back("ip");
  if (p.rss_hf & RTE_ETH_RSS_UDP) rss_functions.push_back("udp");
  if (p.rss_hf & RTE_ETH_RSS_TCP) rss_functions.push_back("tcp");
  return {
      {"name", p.name},
      {"port_id", p.port_id},
      {"devargs", p.devargs},
      {"driver", p.driver},
      {"mac", mac_string(p.mac)},
      {"mtu", p.mtu},
      {"promiscuous", rte_eth_promiscuous_get(p.port_id) == 1},
      {"rx_queues", p.rx_queues},
      {"tx_queues", p.tx_queues},
      {"control_tx_queue", p.control_tx_queue < 0 ? nlohmann::json(nullptr) : nlohmann::json(p.control_tx_queue)},
      {"rss", {{"requested", p.rss_requested}, {"active", p.rss_hf != 0}, {"hash", rss_functions}}},
      {"link",
       {{"up", p.link == LinkState::kUp},
        {"state", link_state_name(p.link)},
        {"in_data_path", !p.offline},
        {"changes", p.link_changes},
        {"recoveries", p.recoveries},
        {"speed_mbps", speed},
        {"duplex", link.link_duplex == RTE_ETH_LINK_FULL_DUPLEX ? "full" : "half"},
        {"autoneg", link.link_autoneg == RTE_ETH_LINK_AUTONEG}}},
      {"stats",
       {{"rx_packets", st.ipackets}, {"tx_packets", st.opackets}, {"rx_bytes", st.ibytes},
        {"tx_bytes", st.obytes}, {"rx_missed", st.imissed}, {"rx_errors", st.ierrors},
        {"tx_errors", st.oerrors}, {"rx_nombuf", st.rx_nombuf}}},
      {"queues", {{"rx", rxq}, {"tx", txq}}},
      {"xstats", xstats},
  };
}

}  // namespace meridian::dataplane
