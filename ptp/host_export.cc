#include "ptp/host_export.h"

#include <sys/ipc.h>
#include <sys/shm.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace meridian::ptp {
namespace {

constexpr int64_t kNs = 1'000'000'000;

// Seconds and nanoseconds, the nanoseconds in [0, 1e9) also before 1970.
void split(int64_t ns, long& sec, unsigned& nsec) {
  int64_t s = ns / kNs, r = ns % kNs;
  if (r < 0) {
    r += kNs;
    --s;
  }
  sec = static_cast<long>(s);
  nsec = static_cast<unsigned>(r);
}

}  // namespace

std::unique_ptr<NtpShmExport> NtpShmExport::open(unsigned unit, std::string& why) {
  const int perms = unit <= 1 ? 0600 : 0666;
  const int id = shmget(ntp_shm_key(unit), sizeof(NtpShmSegment), IPC_CREAT | perms);
  if (id < 0) {
    why = "shmget of NTP SHM unit " + std::to_string(unit) + ": " + std::strerror(errno);
    return nullptr;
  }
  void* at = shmat(id, nullptr, 0);
  if (at == reinterpret_cast<void*>(-1)) {
    why = "shmat of NTP SHM unit " + std::to_string(unit) + ": " + std::strerror(errno);
    return nullptr;
  }
  auto* segment = static_cast<NtpShmSegment*>(at);
  segment->mode = 1;
  segment->valid = 0;
  return std::unique_ptr<NtpShmExport>(new NtpShmExport(unit, segment));
}

NtpShmExport::~NtpShmExport() {
  segment_->valid = 0;  // the reader stops taking our last sample
  shmdt(segment_);
}

void NtpShmExport::write(int64_t clock_utc_ns, int64_t host_ns, int leap, int precision) {
  NtpShmSegment& s = *segment_;
  // Mode 1: the reader keeps a sample only if count was the same before
  // and after it read, so a torn read is thrown away.
  s.valid = 0;
  s.count = s.count + 1;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  split(clock_utc_ns, s.clock_sec, s.clock_nsec);
  s.clock_usec = static_cast<int>(s.clock_nsec / 1000);
  split(host_ns, s.receive_sec, s.receive_nsec);
  s.receive_usec = static_cast<int>(s.receive_nsec / 1000);
  s.leap = leap;
  s.precision = precision;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  s.count = s.count + 1;
  s.valid = 1;
  ++samples_;
}

}  // namespace meridian::ptp
