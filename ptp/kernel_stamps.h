// Kernel software timestamps for PTP event frames on ports backed by a
// Linux interface (net_af_packet, net_tap).
//
// Why: on such ports the frame really meets the "wire" inside the kernel.
// A poll-loop TSC trails reception by the softirq, the packet ring and the
// poll (6-20 us on veth here), and a TSC read before rte_eth_tx_burst leads
// the frame by the sendto path (1-5 us, outliers to 40 us). The kernel's
// own stamps are the ones a linuxptp peer uses with software timestamping:
// taken when the frame enters the receive path (netif_rx) and when it is
// handed to the driver (the packet tap in dev_queue_xmit).
//
// How:
// - Rx: DPDK 22.11's net_af_packet does not pass the ring header's stamp
//   on, so a second packet socket on the same interface, filtered (classic
//   BPF) to PTP event frames (EtherType 0x88F7 with messageType < 8, UDP to
//   port 319 over IPv4 or IPv6), receives a copy of each with
//   SO_TIMESTAMPNS: the stamp taken in netif_rx.
// - Tx: the PMD's own packet socket of the control TX queue gets
//   SO_TIMESTAMPING with SOF_TIMESTAMPING_TX_SOFTWARE, so the driver's
//   skb_tx_timestamp (veth_xmit) queues a stamped copy of every frame sent
//   on that queue to the socket's error queue, which only we read. This is
//   linuxptp's software Tx timestamp. Without that socket, the tap's
//   outgoing copies (stamped in the packet tap of dev_queue_xmit, a few us
//   earlier; seen only with qdisc_bypass=0) serve instead. The transparent
//   clock sends forwarded event messages through a KernelStampedSender for
//   the same driver stamp.
// Frames are matched to DPDK's copy by a fingerprint of their bytes.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

namespace meridian::ptp {

/// Identifies one frame on both paths (DPDK's copy and the tap's copy):
/// FNV-1a over the length and the first 256 bytes.
uint64_t frame_fingerprint(std::span<const uint8_t> frame);

enum class StampDirection : uint8_t { kReceived, kSent };

/// Recent kernel stamps by direction and fingerprint, oldest overwritten.
/// Pure logic; each stamp is handed out once.
class KernelStampTable {
 public:
  void add(StampDirection dir, uint64_t fingerprint, int64_t realtime_ns);
  std::optional<int64_t> take(StampDirection dir, uint64_t fingerprint);

 private:
  struct Entry {
    uint64_t fingerprint = 0;
    int64_t realtime_ns = 0;
    StampDirection dir = StampDirection::kReceived;
    bool valid = false;
  };
  std::array<Entry, 256> entries_{};
  size_t next_ = 0;
};

/// The filtered packet socket on one Linux interface.
class KernelTimestampTap {
 public:
  struct Counters {
    uint64_t frames = 0;       // event frames the tap read
    uint64_t unstamped = 0;    // read without a timestamp (not used)
    uint64_t rx_used = 0, rx_missed = 0;
    uint64_t tx_used = 0, tx_missed = 0;
  };
  /// Opens the tap on `interface` in this process's network namespace;
  /// null and `error` set when it cannot (no such interface, no
  /// CAP_NET_RAW, filter refused).
  static std::unique_ptr<KernelTimestampTap> open(const std::string& interface, std::string& error);
  ~KernelTimestampTap();
  KernelTimestampTap(const KernelTimestampTap&) = delete;
  KernelTimestampTap& operator=(const KernelTimestampTap&) = delete;

  /// Takes Tx stamps from `fd`, a packet socket the PMD sends this port's
  /// control TX queue through (not owned; PortRuntime::kernel_tx_socket): turns
  /// on its software Tx timestamps. False and `error` set when refused.
  bool attach_tx_socket(int fd, std::string& error);
  bool has_tx_socket() const { return tx_fd_ >= 0; }

  /// The kernel's CLOCK_REALTIME stamp of the frame with this fingerprint,
  /// reading what the kernel has queued first when it is not known yet.
  /// Counts a use or a miss.
  std::optional<int64_t> take(StampDirection dir, uint64_t fingerprint);
  const std::string& interface() const { return interface_; }
  const Counters& counters() const { return counters_; }

 private:
  explicit KernelTimestampTap(int fd, std::string interface) : fd_(fd), interface_(std::move(interface)) {}
  /// Reads every queued frame into the table (non-blocking): the tap's,
  /// and the Tx socket's error queue.
  void drain();
  void drain_socket(int fd, bool error_queue);

  int fd_ = -1;
  int tx_fd_ = -1;
  std::string interface_;
  KernelStampTable table_;
  Counters counters_;
};

/// The transparent clock's own way out on a net_af_packet port: a send-only
/// packet socket (protocol 0) on the interface with software Tx timestamps,
/// so a forwarded event message leaves with the driver's send stamp
/// (skb_tx_timestamp, linuxptp's software Tx stamp) instead of the earlier
/// packet-tap copy. The PMD's sockets must ignore outgoing frames
/// (dataplane's ignore_outgoing_frames) or they would receive it back.
class KernelStampedSender {
 public:
  struct Sent {
    bool sent = false;             // the kernel took the frame
    std::optional<int64_t> stamp;  // its driver send stamp (CLOCK_REALTIME ns)
  };
  struct Counters {
    uint64_t sent = 0, send_failed = 0;
    uint64_t stamped = 0, unstamped = 0;  // of the frames sent
  };
  /// Null and `error` set when the socket cannot be made.
  static std::unique_ptr<KernelStampedSender> open(const std::string& interface, std::string& error);
  ~KernelStampedSender();
  KernelStampedSender(const KernelStampedSender&) = delete;
  KernelStampedSender& operator=(const KernelStampedSender&) = delete;

  /// Sends `frame` (non-blocking) and reads its stamp from the error queue,
  /// where a driver that transmits inside send (veth, loopback) has put it.
  Sent send(std::span<const uint8_t> frame);
  const Counters& counters() const { return counters_; }

 private:
  explicit KernelStampedSender(int fd) : fd_(fd) {}
  int fd_;
  Counters counters_;
};

}  // namespace meridian::ptp
