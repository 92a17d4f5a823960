// The IGMP/MLD decoders on arbitrary frames, and what they accept fed to a
// fresh router. Properties: decoding never reads past the frame; an accepted
// report's records re-encode (build_report_frames) into frames that decode to
// the same records (an EXCLUDE record too long for one frame keeps its first
// part, as RFC 3376 §4.2.16 says); a query re-encodes to the same group and
// sources; the router applies any accepted message, stays within its group
// and source limits, and its next deadline is always ahead of now.
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <vector>

#include "multicast_gw/router.h"
#include "multicast_gw/wire.h"

using namespace meridian;
using namespace meridian::mcast;

#define FUZZ_CHECK(cond)       \
  do {                         \
    if (!(cond)) std::abort(); \
  } while (0)

namespace {

/// A fresh router per input, so that a finding reproduces from its input.
MembershipRouter make_router(uint8_t family) {
  RouterConfig c;
  c.family = family;
  c.address = *config::parse_ip(family == 4 ? "10.0.0.1" : "fe80::1");
  c.max_groups = 64;
  c.max_sources = 16;
  c.fast_leave = family == 6;
  c.ssm_ranges = default_ssm_ranges();
  return MembershipRouter(c, 0);
}

bool excludes(RecordType t) { return t == RecordType::kIsExclude || t == RecordType::kToExclude; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Decode from an exact-size heap copy so ASan sees any read past the end.
  std::vector<uint8_t> frame(data, data + size);
  FrameMembership fm;
  const DecodeLimits limits{256, 256};
  if (decode_frame(frame, fm, limits) != DecodeStatus::kOk) return 0;
  const Membership& m = fm.message;
  Sender from;
  from.address = m.family == 4 ? *config::parse_ip("10.0.0.2") : *config::parse_ip("fe80::2");
  if (m.kind == MessageKind::kReport) {
    std::vector<GroupRecord> back_records;
    for (const auto& f : build_report_frames(from, m.family, m.records)) {
      FrameMembership back;
      FUZZ_CHECK(decode_frame(f, back) == DecodeStatus::kOk);
      for (auto& r : back.message.records) back_records.push_back(std::move(r));
    }
    // Split records come back as consecutive parts of one record.
    size_t k = 0;
    for (const auto& r : m.records) {
      std::vector<IpAddress> sources;
      do {
        FUZZ_CHECK(k < back_records.size());
        FUZZ_CHECK(back_records[k].type == r.type && back_records[k].group == r.group);
        sources.insert(sources.end(), back_records[k].sources.begin(), back_records[k].sources.end());
        ++k;
      } while (!excludes(r.type) && sources.size() < r.sources.size());
      if (excludes(r.type)) {
        FUZZ_CHECK(sources.size() <= r.sources.size() &&
                   std::equal(sources.begin(), sources.end(), r.sources.begin()));
      } else {
        FUZZ_CHECK(sources == r.sources);
      }
    }
    FUZZ_CHECK(k == back_records.size());
  } else if (m.kind == MessageKind::kQuery && m.query.sources.size() < 64) {
    FrameMembership back;
    FUZZ_CHECK(decode_frame(build_query_frame(from, m.query, m.version), back) == DecodeStatus::kOk);
    FUZZ_CHECK(back.message.query.group == m.query.group);
    if (m.version >= (m.family == 4 ? 3 : 2)) FUZZ_CHECK(back.message.query.sources == m.query.sources);
  }
  MembershipRouter r = make_router(m.family);
  RouterOutput out;
  Millis now = 0;
  // The message twice, apart, with the timers run in between.
  for (int round = 0; round < 2; ++round) {
    now += 1000;
    if (m.kind == MessageKind::kQuery) r.on_query(m, fm.source, now, out);
    else r.on_membership(m, fm.source, now, out);
    r.tick(now, out);
    FUZZ_CHECK(r.next_deadline() > now);
    FUZZ_CHECK(r.groups().size() <= 64);
    for (const auto& [g, gs] : r.groups()) FUZZ_CHECK(gs.sources.size() <= 16);
  }
  return 0;
}
