// Exporting Meridian's clock to the host without touching the host clock:
// the NTP shared-memory refclock ("SHM"), the segment gpsd writes and
// chrony (refclock SHM <unit>) and ntpd (127.127.28.<unit>) read. Each
// sample pairs our clock's UTC time with CLOCK_REALTIME read at the same
// instant; the time daemon filters the samples and decides whether and how
// to steer the host clock. Off by default (ptp.host_clock_export).
// Linux System V shared memory, no DPDK.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace meridian::ptp {

/// The segment's layout, as chrony's refclock_shm.c and ntpd's
/// refclock_shm.c define it (mode 1: the count brackets every write).
struct NtpShmSegment {
  int mode;
  volatile int count;
  long clock_sec;  // time_t: the reference clock (ours)
  int clock_usec;
  long receive_sec;  // the host clock when ours read clock_*
  int receive_usec;
  int leap;
  int precision;
  int nsamples;
  volatile int valid;
  unsigned clock_nsec;
  unsigned receive_nsec;
  int dummy[8];
};

/// The System V key of SHM unit `unit` ("NTP0" + unit).
inline constexpr int ntp_shm_key(unsigned unit) { return 0x4e545030 + static_cast<int>(unit); }

class NtpShmExport {
 public:
  /// Attaches unit `unit`'s segment, creating it when absent: units 0 and 1
  /// readable by root only, the others by anyone (the refclock driver's
  /// convention). Null and `why` when it cannot.
  static std::unique_ptr<NtpShmExport> open(unsigned unit, std::string& why);
  ~NtpShmExport();
  NtpShmExport(const NtpShmExport&) = delete;
  NtpShmExport& operator=(const NtpShmExport&) = delete;

  /// One sample: our clock (UTC ns) and the host clock (CLOCK_REALTIME ns)
  /// at the same instant; `leap` 0 none, 1 a leap second is inserted at
  /// the end of the UTC day, 2 one is deleted; `precision` log2 seconds.
  void write(int64_t clock_utc_ns, int64_t host_ns, int leap, int precision);
  unsigned unit() const { return unit_; }
  uint64_t samples() const { return samples_; }

 private:
  NtpShmExport(unsigned unit, NtpShmSegment* segment) : unit_(unit), segment_(segment) {}
  unsigned unit_;
  NtpShmSegment* segment_;
  uint64_t samples_ = 0;
};

}  // namespace meridian::ptp
