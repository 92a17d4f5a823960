// Every packet the data path does not transmit is counted under exactly one
// drop reason (the VPP error-counter pattern). Reasons live beside the code
// that drops: the engine's below, each module's in its own folder
// (vxlan/drop_reasons.h, ...), all in one id space, so that every port
// counts every reason and the views list them by name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string_view>

namespace meridian::dataplane {

/// Where a reason is counted, which says which frames it accounts for:
/// - kIngress: on the port the frame arrived on; its fate there. Per port,
///   rx_packets = forwarded + punted + the drops counted at ingress.
/// - kEgress: on the port a frame was sent to (by a worker, after it was
///   counted as forwarded at its ingress, or by the control lcore).
/// - kAfterPunt: on the ingress port, for a frame already counted as punted.
enum class DropStage : uint8_t { kIngress, kEgress, kAfterPunt };

constexpr const char* drop_stage_name(DropStage s) {
  return s == DropStage::kIngress ? "ingress" : s == DropStage::kEgress ? "egress" : "after_punt";
}

/// A reason's index into every port's drop counters.
using DropId = uint16_t;
/// Room for every module's reasons (about 50 today).
inline constexpr size_t kMaxDropReasons = 128;

struct DropReasonInfo {
  const char* name;  // the API key and metric label: unique over all modules, snake_case
  DropStage stage;
  const char* help;
};

/// Adds a module's reasons to the shared space and returns the id of the
/// first (the others follow in order). A repeated name or a full space
/// aborts the process: both are programming errors the unit tests catch.
DropId register_drop_reasons(std::initializer_list<DropReasonInfo> reasons);
/// Reasons registered so far (the engine's are always first).
size_t drop_reason_count();
const DropReasonInfo& drop_reason(DropId id);
std::optional<DropId> find_drop_reason(std::string_view name);

// Declares a reason list `LIST` — X(enumerator, "name", stage, "help") —
// as `enum class Enum`, `drop_id(Enum)` (its ids in the shared space) and
// `reason_count(Enum{})` (the list's length, for a module's own per-reason
// counters). The list registers on first use; a module's factory calls
// `drop_id(Enum{})` so that its reasons are listed (at zero) from the start.
#define MERIDIAN_DROP_ENUMERATOR_(e, name, stage, help) e,
#define MERIDIAN_DROP_INFO_(e, name, stage, help) \
  ::meridian::dataplane::DropReasonInfo{name, ::meridian::dataplane::DropStage::stage, help},
#define MERIDIAN_DROP_ONE_(e, name, stage, help) +1
#define MERIDIAN_DEFINE_DROP_REASONS(Enum, LIST)                                                     \
  enum class Enum : uint16_t { LIST(MERIDIAN_DROP_ENUMERATOR_) };                                   \
  [[maybe_unused]] constexpr size_t reason_count(Enum) { return 0 LIST(MERIDIAN_DROP_ONE_); }       \
  [[maybe_unused]] inline ::meridian::dataplane::DropId drop_id(Enum r) {                           \
    static const ::meridian::dataplane::DropId base =                                               \
        ::meridian::dataplane::register_drop_reasons({LIST(MERIDIAN_DROP_INFO_)});                  \
    return static_cast<::meridian::dataplane::DropId>(base + static_cast<uint16_t>(r));             \
  }

// The engine's own reasons: X(enumerator, metric/API name, stage, description)
#define MERIDIAN_DROP_REASONS(X)                                                          \
  X(kRuntFrame, "runt_frame", kIngress, "frame shorter than an Ethernet header")          \
  X(kNoForwarding, "no_forwarding", kIngress, "ingress port has no forwarding entry")     \
  X(kNoDecision, "no_decision", kIngress, "no pipeline stage decided the packet's fate")  \
  X(kTxFull, "tx_full", kEgress, "egress queue still full after the bounded retries")     \
  X(kPuntRingFull, "punt_ring_full", kIngress, "punt ring to the control lcore was full") \
  X(kControlTxFull, "control_tx_full", kEgress, "control-plane transmit queue was full")  \
  X(kNoControlQueue, "no_control_queue", kEgress, "port has no spare TX queue for the control lcore") \
  X(kPuntUnhandled, "punt_unhandled", kAfterPunt, "punted frame had no control-plane handler") \
  X(kPortDown, "port_down", kEgress, "egress port's interface is gone or the port is being recovered") \
  X(kControlNoBuffer, "control_no_buffer", kEgress, "no packet buffer for a frame the control lcore built")

/// The engine's reasons take the first ids, fixed at compile time.
enum class DropReason : uint16_t { MERIDIAN_DROP_REASONS(MERIDIAN_DROP_ENUMERATOR_) };
constexpr DropId drop_id(DropReason r) { return static_cast<DropId>(r); }

inline const char* drop_reason_name(DropId id) { return drop_reason(id).name; }
template <class Reason>
const char* drop_reason_name(Reason r) {
  return drop_reason(drop_id(r)).name;
}

}  // namespace meridian::dataplane
