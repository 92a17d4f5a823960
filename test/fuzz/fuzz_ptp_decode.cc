// libFuzzer: the PTP receive path on arbitrary frames. locate() then decode()
// must never read past the buffer; the location it reports lies inside the
// frame. Properties: a decoded message re-encodes, and decoding that gives
// the same message (unknown TLVs were skipped, so only what was understood
// is compared); the management data sets decode from any dataField without
// reading past it; peek() agrees with decode() on the header. The transparent
// clock's locate (also inside VXLAN) stays inside the frame, and adding a
// residence leaves the message where it was.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "ptp/message.h"
#include "ptp/transparent.h"
#include "ptp/transport.h"

using namespace meridian::ptp;

#define FUZZ_CHECK(cond)       \
  do {                         \
    if (!(cond)) std::abort(); \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> frame(data, data + size);  // exact-size heap copy: ASan sees any overread
  TcFrame tc;
  if (tc_locate(frame, 4789, tc)) {
    FUZZ_CHECK(size_t{tc.ptp_offset} + kHeaderSize <= frame.size());
    for (uint8_t i = 0; i < tc.checksum_count; ++i) FUZZ_CHECK(size_t{tc.checksums[i]} + 2 <= frame.size());
    std::vector<uint8_t> corrected(frame);
    tc_add_correction(corrected, tc, int64_t{1000} * 65536);
    TcFrame again;
    FUZZ_CHECK(tc_locate(corrected, 4789, again) && again.ptp_offset == tc.ptp_offset && again.type == tc.type);
  }
  std::span<const uint8_t> payload(frame);
  PtpLocation loc;
  if (locate(frame, loc)) {
    FUZZ_CHECK(size_t{loc.offset} + loc.length <= frame.size());
    payload = payload.subspan(loc.offset, loc.length);
  }
  const std::vector<uint8_t> msg(payload.begin(), payload.end());
  Message m;
  if (decode(msg, m) != DecodeError::kNone) return 0;
  MessageType type;
  uint16_t flags;
  uint8_t domain;
  FUZZ_CHECK(peek(msg, type, flags, domain));
  FUZZ_CHECK(type == m.header.type && flags == m.header.flags && domain == m.header.domain);

  std::vector<uint8_t> again(encoded_size(m));
  FUZZ_CHECK(encode(m, again) == again.size());
  Message back;
  FUZZ_CHECK(decode(again, back) == DecodeError::kNone);
  Header h = m.header;
  h.length = back.header.length;
  h.control = back.header.control;  // derived from the type on encode
  h.version = back.header.version;
  FUZZ_CHECK(h == back.header);
  FUZZ_CHECK(back.timestamp == m.timestamp && back.requesting == m.requesting);
  FUZZ_CHECK(back.unicast == m.unicast);
  ManagementBody mg = m.management;
  if (mg.data.size() & 1) mg.data.push_back(0);  // encode pads the dataField to even
  FUZZ_CHECK(back.management == mg);
  if (m.header.type == MessageType::kAnnounce) FUZZ_CHECK(back.announce == m.announce);

  const std::vector<uint8_t> d(m.management.data);
  DefaultDataSet dds;
  CurrentDataSet cds;
  ParentDataSet pds;
  TimePropertiesDataSet tps;
  PortDataSet ports;
  if (decode_data(d, dds)) FUZZ_CHECK(decode_data(encode_data(dds), dds));
  (void)decode_data(d, cds);
  (void)decode_data(d, pds);
  (void)decode_data(d, tps);
  (void)decode_data(d, ports);
  return 0;
}
