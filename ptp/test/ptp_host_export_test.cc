// The NTP SHM export (ptp/host_export.*): what a refclock reader (chrony's
// refclock_shm.c, ntpd's driver 28) finds in the System V segment after
// each write. A private unit per test run; the segment is removed after.
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "ptp/host_export.h"

namespace meridian::ptp {
namespace {

class NtpShm : public ::testing::Test {
 protected:
  unsigned unit = 150 + static_cast<unsigned>(getpid() % 100);
  void TearDown() override {
    const int id = shmget(ntp_shm_key(unit), 0, 0);
    if (id >= 0) shmctl(id, IPC_RMID, nullptr);
  }
  // What a reader maps: the segment by its key, not through the writer.
  const NtpShmSegment* reader() {
    const int id = shmget(ntp_shm_key(unit), sizeof(NtpShmSegment), 0);
    EXPECT_GE(id, 0);
    void* at = shmat(id, nullptr, SHM_RDONLY);
    EXPECT_NE(at, reinterpret_cast<void*>(-1));
    return static_cast<const NtpShmSegment*>(at);
  }
};

TEST_F(NtpShm, SegmentLayoutIsTheRefclockDriversOne) {
  // time_t fields on LP64, four trailing ints and eight spare: 96 bytes.
  EXPECT_EQ(sizeof(NtpShmSegment), 96u);
  EXPECT_EQ(offsetof(NtpShmSegment, clock_sec), 8u);
  EXPECT_EQ(offsetof(NtpShmSegment, receive_sec), 24u);
  EXPECT_EQ(offsetof(NtpShmSegment, valid), 48u);
  EXPECT_EQ(offsetof(NtpShmSegment, clock_nsec), 52u);
  EXPECT_EQ(ntp_shm_key(2), 0x4e545032);
}

TEST_F(NtpShm, EachWriteIsOneValidSampleBracketedByTheCount) {
  std::string why;
  auto out = NtpShmExport::open(unit, why);
  ASSERT_TRUE(out) << why;
  const NtpShmSegment* seg = reader();
  EXPECT_EQ(seg->mode, 1);
  EXPECT_EQ(seg->valid, 0);  // nothing to take before the first sample
  const int count = seg->count;
  // Our clock 1.5 us ahead of the host's.
  const int64_t host = 1'763'750'000'123'456'789;
  out->write(host + 1'500, host, 0, -20);
  EXPECT_EQ(seg->valid, 1);
  EXPECT_EQ(seg->count, count + 2);  // odd while writing, even after
  EXPECT_EQ(seg->clock_sec, 1'763'750'000);
  EXPECT_EQ(seg->clock_nsec, 123'458'289u);
  EXPECT_EQ(seg->clock_usec, 123'458);  // chrony uses the ns only when they agree with the us
  EXPECT_EQ(seg->receive_sec, 1'763'750'000);
  EXPECT_EQ(seg->receive_nsec, 123'456'789u);
  EXPECT_EQ(seg->receive_usec, 123'456);
  EXPECT_EQ(seg->leap, 0);
  EXPECT_EQ(seg->precision, -20);
  // A second crossing: the nanoseconds wrap into the next second.
  out->write(host - 123'456'789 + 999'999'999 + 2, host, 1, -24);
  EXPECT_EQ(seg->clock_sec, 1'763'750'001);
  EXPECT_EQ(seg->clock_nsec, 1u);
  EXPECT_EQ(seg->leap, 1);
  EXPECT_EQ(out->samples(), 2u);
  out.reset();
  EXPECT_EQ(seg->valid, 0);  // a stopped export leaves no stale sample to take
  shmdt(seg);
}

TEST_F(NtpShm, TimesBeforeTheEpochKeepNanosecondsPositive) {
  std::string why;
  auto out = NtpShmExport::open(unit, why);
  ASSERT_TRUE(out) << why;
  const NtpShmSegment* seg = reader();
  out->write(-1, 0, 0, -20);
  EXPECT_EQ(seg->clock_sec, -1);
  EXPECT_EQ(seg->clock_nsec, 999'999'999u);
  shmdt(seg);
}

}  // namespace
}  // namespace meridian::ptp
