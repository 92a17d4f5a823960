// QoS's drop reasons, in the engine's shared id space (dataplane/drop_reasons.h).
#pragma once

#include "dataplane/drop_reasons.h"

namespace meridian::qos {

// X(enumerator, metric/API name, stage, description)
#define MERIDIAN_QOS_DROP_REASONS(X)                                                                  \
  X(kQosTailDrop, "qos_tail_drop", kEgress,                                                           \
    "QoS leaf queue at its packet/byte limit, or the tree's buffer pool full")                        \
  X(kQosHandoffFull, "qos_handoff_full", kEgress, "ring to the worker owning the QoS port was full")           \
  X(kQosUnshareNoBuffer, "qos_unshare_no_buffer", kEgress,                                            \
    "no buffer for a private copy of a shared replica its class rewrites (DSCP remark, ECN CE)")

MERIDIAN_DEFINE_DROP_REASONS(Drop, MERIDIAN_QOS_DROP_REASONS)

}  // namespace meridian::qos
