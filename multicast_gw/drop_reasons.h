// The multicast gateway's drop reasons, in the engine's shared id space
// (dataplane/drop_reasons.h): punted IGMP/MLD frames it refused, counted on
// the port they came in on.
#pragma once

#include "dataplane/drop_reasons.h"
#include "multicast_gw/wire.h"

namespace meridian::mcast {

// X(enumerator, metric/API name, stage, description)
#define MERIDIAN_MCAST_DROP_REASONS(X)                                                                       \
  X(kTruncated, "mcast_truncated", kAfterPunt, "IGMP/MLD message shorter than its fixed part")               \
  X(kBadChecksum, "mcast_bad_checksum", kAfterPunt, "IGMP/MLD checksum wrong")                               \
  X(kUnknownType, "mcast_unknown_type", kAfterPunt, "not an IGMP/MLD membership message")                    \
  X(kSourcesPastEnd, "mcast_sources_past_end", kAfterPunt, "a source or record count runs past the message") \
  X(kBadGroup, "mcast_bad_group", kAfterPunt, "a group address that is not multicast")                       \
  X(kTooManyRecords, "mcast_too_many_records", kAfterPunt, "more records or sources than the decoder takes") \
  X(kBadIpHeader, "mcast_bad_ip_header", kAfterPunt,                                                         \
    "TTL/hop limit not 1, a fragment, a bad header checksum, or an MLD source that is not link-local")       \
  X(kNoRouterAlert, "mcast_no_router_alert", kAfterPunt, "MLD without the hop-by-hop Router Alert")

MERIDIAN_DEFINE_DROP_REASONS(McastDrop, MERIDIAN_MCAST_DROP_REASONS)

/// The reason a refused frame is counted under.
inline McastDrop drop_for(DecodeStatus s) {
  switch (s) {
    case DecodeStatus::kBadChecksum: return McastDrop::kBadChecksum;
    case DecodeStatus::kUnknownType: return McastDrop::kUnknownType;
    case DecodeStatus::kSourcesPastEnd: return McastDrop::kSourcesPastEnd;
    case DecodeStatus::kBadGroup: return McastDrop::kBadGroup;
    case DecodeStatus::kTooManyRecords: return McastDrop::kTooManyRecords;
    case DecodeStatus::kBadIpHeader: return McastDrop::kBadIpHeader;
    case DecodeStatus::kNoRouterAlert: return McastDrop::kNoRouterAlert;
    default: return McastDrop::kTruncated;
  }
}

}  // namespace meridian::mcast
