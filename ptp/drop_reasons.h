// PTP's drop reasons, in the engine's shared id space
// (dataplane/drop_reasons.h): frames the PTP service on the control lcore
// refused after they were punted, and messages it could not send. Each is
// counted on its port; /api/v1/ptp and meridian_ptp_frame_drops_total keep
// listing them without the "ptp_" prefix, as before.
#pragma once

#include "dataplane/drop_reasons.h"

namespace meridian::ptp {

// X(enumerator, metric/API name, stage, description)
#define MERIDIAN_PTP_DROP_REASONS(X)                                                                          \
  X(kNotAPtpPort, "ptp_not_a_ptp_port", kAfterPunt, "punted PTP frame on a port that does not run PTP")      \
  X(kNotPtp, "ptp_not_ptp", kAfterPunt, "punted frame that is not a PTP message after all")                  \
  X(kWrongTransport, "ptp_wrong_transport", kAfterPunt, "PTP message on a transport the port does not use")  \
  X(kNotAddressedToUs, "ptp_not_addressed_to_us", kAfterPunt,                                                \
    "PTP message to another host's address, or to a multicast group the port does not use")                  \
  X(kBadSourceMac, "ptp_bad_source_mac", kAfterPunt, "PTP message from a multicast or all-zero MAC")          \
  X(kMalformed, "ptp_malformed", kAfterPunt, "PTP message that does not decode (the PTP view names the error)") \
  X(kTxUnresolved, "ptp_tx_unresolved", kEgress, "unicast PTP message to a peer not resolved (yet) by ARP/ND") \
  X(kTxNoBuffer, "ptp_tx_no_buffer", kEgress, "no buffer for an outgoing PTP message")                        \
  X(kTxEncode, "ptp_tx_encode", kEgress, "outgoing PTP message that did not fit its frame")

MERIDIAN_DEFINE_DROP_REASONS(Drop, MERIDIAN_PTP_DROP_REASONS)

}  // namespace meridian::ptp
