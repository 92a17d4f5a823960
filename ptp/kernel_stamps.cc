#include "ptp/kernel_stamps.h"

#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace meridian::ptp {
namespace {

constexpr size_t kFingerprintBytes = 256;
constexpr unsigned kBatch = 16;
constexpr unsigned kMaxDrainRounds = 32;  // 512 frames a call: twice the stamp table
constexpr size_t kFrameBuffer = 2048;

// Classic BPF: accept PTP event frames only (see the header).
//   L2:   EtherType 0x88F7 and messageType (low nibble of byte 14) < 8
//   IPv4: UDP, first fragment, destination port 319
//   IPv6: next header UDP (no extension headers), destination port 319
constexpr uint32_t kAccept = 18, kReject = 19;
#define MERIDIAN_JUMP(from, to) static_cast<uint8_t>((to) - (from) - 1)
const sock_filter kEventFrameFilter[] = {
    /* 0 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),
    /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_1588, MERIDIAN_JUMP(1, 4), 0),
    /* 2 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, MERIDIAN_JUMP(2, 7), 0),
    /* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, MERIDIAN_JUMP(3, 14), MERIDIAN_JUMP(3, kReject)),
    /* 4 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 14),
    /* 5 */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x0f),
    /* 6 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 8, MERIDIAN_JUMP(6, kReject), MERIDIAN_JUMP(6, kAccept)),
    /* 7 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 23),
    /* 8 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 17, 0, MERIDIAN_JUMP(8, kReject)),
    /* 9 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 20),
    /* 10 */ BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, MERIDIAN_JUMP(10, kReject), 0),
    /* 11 */ BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 14),
    /* 12 */ BPF_STMT(BPF_LD | BPF_H | BPF_IND, 16),
    /* 13 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 319, MERIDIAN_JUMP(13, kAccept), MERIDIAN_JUMP(13, kReject)),
    /* 14 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 20),
    /* 15 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 17, 0, MERIDIAN_JUMP(15, kReject)),
    /* 16 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 56),
    /* 17 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 319, MERIDIAN_JUMP(17, kAccept), MERIDIAN_JUMP(17, kReject)),
    /* 18 */ BPF_STMT(BPF_RET | BPF_K, 0xffff),
    /* 19 */ BPF_STMT(BPF_RET | BPF_K, 0),
};
#undef MERIDIAN_JUMP

/// The software stamp in a received message's control data: SCM_TIMESTAMPNS
/// (the tap), or the first of SCM_TIMESTAMPING's three (Tx error queues).
std::optional<int64_t> software_stamp(msghdr& h) {
  std::optional<int64_t> stamp;
  for (cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c)) {
    if (c->cmsg_level != SOL_SOCKET || (c->cmsg_type != SCM_TIMESTAMPNS && c->cmsg_type != SCM_TIMESTAMPING)) continue;
    timespec ts{};
    std::memcpy(&ts, CMSG_DATA(c), sizeof(ts));
    if (ts.tv_sec || ts.tv_nsec) stamp = static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  }
  return stamp;
}

}  // namespace

uint64_t frame_fingerprint(std::span<const uint8_t> frame) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](uint8_t b) {
    h ^= b;
    h *= 0x100000001b3ull;
  };
  const size_t len = frame.size();
  for (int i = 0; i < 4; ++i) mix(static_cast<uint8_t>(len >> (8 * i)));
  const size_t n = len < kFingerprintBytes ? len : kFingerprintBytes;
  for (size_t i = 0; i < n; ++i) mix(frame[i]);
  return h;
}

void KernelStampTable::add(StampDirection dir, uint64_t fingerprint, int64_t realtime_ns) {
  entries_[next_] = Entry{fingerprint, realtime_ns, dir, true};
  next_ = (next_ + 1) % entries_.size();
}

std::optional<int64_t> KernelStampTable::take(StampDirection dir, uint64_t fingerprint) {
  // Newest first: a retransmitted identical frame matches its latest copy.
  for (size_t k = 1; k <= entries_.size(); ++k) {
    Entry& e = entries_[(next_ + entries_.size() - k) % entries_.size()];
    if (e.valid && e.dir == dir && e.fingerprint == fingerprint) {
      e.valid = false;
      return e.realtime_ns;
    }
  }
  return std::nullopt;
}

std::unique_ptr<KernelTimestampTap> KernelTimestampTap::open(const std::string& interface, std::string& error) {
  const unsigned ifindex = if_nametoindex(interface.c_str());
  if (ifindex == 0) {
    error = "no interface '" + interface + "' in this network namespace";
    return nullptr;
  }
  const int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd < 0) {
    error = std::string("packet socket: ") + std::strerror(errno);
    return nullptr;
  }
  std::unique_ptr<KernelTimestampTap> tap(new KernelTimestampTap(fd, interface));
  const sock_fprog prog{static_cast<unsigned short>(sizeof(kEventFrameFilter) / sizeof(kEventFrameFilter[0])),
                        const_cast<sock_filter*>(kEventFrameFilter)};
  const int on = 1;
  const int rcvbuf = 1 << 18;
  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = htons(ETH_P_ALL);
  addr.sll_ifindex = static_cast<int>(ifindex);
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) != 0 ||
      bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    error = "packet socket on '" + interface + "': " + std::strerror(errno);
    return nullptr;
  }
  tap->drain();  // anything queued before the filter was attached
  tap->table_ = KernelStampTable{};
  tap->counters_ = Counters{};
  return tap;
}

KernelTimestampTap::~KernelTimestampTap() {
  if (fd_ >= 0) close(fd_);
}

void KernelTimestampTap::drain() {
  drain_socket(fd_, false);
  if (tx_fd_ >= 0) drain_socket(tx_fd_, true);
}

void KernelTimestampTap::drain_socket(int fd, bool error_queue) {
  struct Slot {
    std::array<uint8_t, kFrameBuffer> data;
    // SCM_TIMESTAMPNS (tap) or SCM_TIMESTAMPING + the extended error (Tx)
    alignas(cmsghdr) std::array<uint8_t, 256> control;
    sockaddr_ll from;
    iovec iov;
  };
  static thread_local std::array<Slot, kBatch> slots;
  std::array<mmsghdr, kBatch> msgs{};
  // Bounded: the table keeps the newest stamps anyway, and workers call
  // this under a lock; a flood of PTP frames waits in the socket buffer.
  for (unsigned round = 0; round < kMaxDrainRounds; ++round) {
    for (unsigned i = 0; i < kBatch; ++i) {
      Slot& s = slots[i];
      s.iov = iovec{s.data.data(), s.data.size()};
      msgs[i].msg_hdr = msghdr{};
      msgs[i].msg_hdr.msg_name = &s.from;
      msgs[i].msg_hdr.msg_namelen = sizeof(s.from);
      msgs[i].msg_hdr.msg_iov = &s.iov;
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_control = s.control.data();
      msgs[i].msg_hdr.msg_controllen = s.control.size();
    }
    const int n = recvmmsg(fd, msgs.data(), kBatch, MSG_DONTWAIT | (error_queue ? MSG_ERRQUEUE : 0), nullptr);
    if (n <= 0) return;
    for (int i = 0; i < n; ++i) {
      msghdr& h = msgs[static_cast<size_t>(i)].msg_hdr;
      const Slot& s = slots[static_cast<size_t>(i)];
      const std::optional<int64_t> stamp = software_stamp(h);
      const bool outgoing = error_queue || s.from.sll_pkttype == PACKET_OUTGOING;
      // With the Tx socket, its driver-time stamps replace the tap's
      // earlier outgoing copies.
      if (outgoing && !error_queue && tx_fd_ >= 0) continue;
      ++counters_.frames;
      if (!stamp) {
        ++counters_.unstamped;
        continue;
      }
      const auto len = std::min<size_t>(msgs[static_cast<size_t>(i)].msg_len, s.data.size());
      table_.add(outgoing ? StampDirection::kSent : StampDirection::kReceived, frame_fingerprint({s.data.data(), len}),
                 *stamp);
    }
    if (static_cast<unsigned>(n) < kBatch) return;
  }
}

bool KernelTimestampTap::attach_tx_socket(int fd, std::string& error) {
  const int flags = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof(flags)) != 0) {
    error = std::string("SO_TIMESTAMPING on the PMD's socket: ") + std::strerror(errno);
    return false;
  }
  tx_fd_ = fd;
  drain_socket(tx_fd_, true);
  return true;
}

std::optional<int64_t> KernelTimestampTap::take(StampDirection dir, uint64_t fingerprint) {
  auto stamp = table_.take(dir, fingerprint);
  if (!stamp) {
    drain();
    stamp = table_.take(dir, fingerprint);
  }
  uint64_t& used = dir == StampDirection::kSent ? counters_.tx_used : counters_.rx_used;
  uint64_t& missed = dir == StampDirection::kSent ? counters_.tx_missed : counters_.rx_missed;
  ++(stamp ? used : missed);
  return stamp;
}

std::unique_ptr<KernelStampedSender> KernelStampedSender::open(const std::string& interface, std::string& error) {
  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_ifindex = static_cast<int>(if_nametoindex(interface.c_str()));
  if (addr.sll_ifindex == 0) {
    error = "no interface '" + interface + "' in this network namespace";
    return nullptr;
  }
  // Protocol 0: it sends only, and receives nothing.
  const int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("packet socket: ") + std::strerror(errno);
    return nullptr;
  }
  std::unique_ptr<KernelStampedSender> sender(new KernelStampedSender(fd));
  const int flags = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof(flags)) != 0) {
    error = "stamping socket on '" + interface + "': " + std::strerror(errno);
    return nullptr;
  }
  return sender;
}

KernelStampedSender::~KernelStampedSender() { close(fd_); }

KernelStampedSender::Sent KernelStampedSender::send(std::span<const uint8_t> frame) {
  Sent out;
  if (::send(fd_, frame.data(), frame.size(), MSG_DONTWAIT) != static_cast<ssize_t>(frame.size())) {
    ++counters_.send_failed;
    return out;
  }
  out.sent = true;
  ++counters_.sent;
  // Copies left behind by an earlier send whose stamp came late (a
  // queueing qdisc) are read past and dropped.
  const uint64_t wanted = frame_fingerprint(frame);
  for (int i = 0; i < 4 && !out.stamp; ++i) {
    std::array<uint8_t, kFrameBuffer> data;
    alignas(cmsghdr) std::array<uint8_t, 256> control;
    iovec iov{data.data(), data.size()};
    msghdr h{};
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    h.msg_control = control.data();
    h.msg_controllen = control.size();
    const ssize_t n = recvmsg(fd_, &h, MSG_DONTWAIT | MSG_ERRQUEUE);
    if (n < 0) break;
    if (frame_fingerprint({data.data(), std::min<size_t>(static_cast<size_t>(n), data.size())}) != wanted) continue;
    out.stamp = software_stamp(h);
  }
  ++(out.stamp ? counters_.stamped : counters_.unstamped);
  return out;
}

}  // namespace meridian::ptp
