// IEEE 1588-2019 (PTPv2.1) message codec: every message type, as pure logic
// over byte buffers (no DPDK, no clock). Encoding never allocates; decoding
// allocates only for the TLV lists of Signaling and Management, which go to
// the control lcore anyway. Every rejection is a named reason, counted by the
// caller. Field layout: IEEE 1588-2019 §13 (common header §13.3, bodies
// §13.5-§13.12), TLVs §14, unicast negotiation §16.1, management §15.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace meridian::ptp {

enum class MessageType : uint8_t {
  kSync = 0x0,
  kDelayReq = 0x1,
  kPdelayReq = 0x2,
  kPdelayResp = 0x3,
  kFollowUp = 0x8,
  kDelayResp = 0x9,
  kPdelayRespFollowUp = 0xA,
  kAnnounce = 0xB,
  kSignaling = 0xC,
  kManagement = 0xD,
};
const char* message_type_name(MessageType t);
/// Event messages are timestamped and go to UDP port 319; the rest to 320.
inline bool is_event(MessageType t) { return static_cast<uint8_t>(t) < 0x8; }

/// 2^log seconds in ns. `log` comes from peers (grant periods, message
/// intervals): it is clamped to [-30, 30], so the result always fits in
/// int64 and is at least 1 ns. Callers bound it further by policy.
inline int64_t log_interval_ns(int log) {
  return std::max<int64_t>(1, static_cast<int64_t>(std::ldexp(1e9, std::clamp(log, -30, 30))));
}


// flagField (§13.3.2.8), as the 16-bit big-endian value: octet 0 high.
inline constexpr uint16_t kFlagAlternateMaster = 0x0100;
inline constexpr uint16_t kFlagTwoStep = 0x0200;
inline constexpr uint16_t kFlagUnicast = 0x0400;
inline constexpr uint16_t kFlagProfileSpecific1 = 0x2000;
inline constexpr uint16_t kFlagProfileSpecific2 = 0x4000;
inline constexpr uint16_t kFlagLeap61 = 0x0001;
inline constexpr uint16_t kFlagLeap59 = 0x0002;
inline constexpr uint16_t kFlagUtcOffsetValid = 0x0004;
inline constexpr uint16_t kFlagPtpTimescale = 0x0008;
inline constexpr uint16_t kFlagTimeTraceable = 0x0010;
inline constexpr uint16_t kFlagFrequencyTraceable = 0x0020;
inline constexpr uint16_t kFlagSyncUncertain = 0x0040;

inline constexpr size_t kHeaderSize = 34;
/// logMessageInterval of messages that have none (§13.3.2.14).
inline constexpr int8_t kNoInterval = 0x7f;

using ClockIdentity = std::array<uint8_t, 8>;

struct PortIdentity {
  ClockIdentity clock{};
  uint16_t port = 0;
  auto operator<=>(const PortIdentity&) const = default;
};
/// "001122.fffe.334455-1", linuxptp's spelling.
std::string to_string(const PortIdentity& p);
std::string to_string(const ClockIdentity& c);

/// The protocol engine takes timestamps of at most this many seconds, so
/// that seconds * 1e9 fits the int64 nanoseconds it computes in (to the year
/// 2255); the codec itself carries all 48 bits.
inline constexpr uint64_t kMaxTimestampSeconds = 9'000'000'000;

/// A PTP timestamp: 48-bit seconds and nanoseconds (< 1e9).
struct Timestamp {
  uint64_t seconds = 0;
  uint32_t nanoseconds = 0;
  bool operator==(const Timestamp&) const = default;
};

struct ClockQuality {
  uint8_t clock_class = 248;
  uint8_t clock_accuracy = 0xfe;  // unknown
  uint16_t offset_scaled_log_variance = 0xffff;
  bool operator==(const ClockQuality&) const = default;
};

/// The common header. `length` and `control` are derived on encode and
/// filled in on decode.
struct Header {
  MessageType type = MessageType::kSync;
  uint8_t major_sdo_id = 0;    // transportSpecific in 1588-2008
  uint8_t version = 2;
  uint8_t minor_version = 1;   // 2019; ptp4l 3.1 sends 0 (2008)
  uint16_t length = 0;
  uint8_t domain = 0;
  uint8_t minor_sdo_id = 0;
  uint16_t flags = 0;
  int64_t correction = 0;      // scaled nanoseconds (ns * 2^16)
  uint32_t type_specific = 0;
  PortIdentity source;
  uint16_t sequence_id = 0;
  uint8_t control = 0;
  int8_t log_interval = kNoInterval;
  bool operator==(const Header&) const = default;
};

struct AnnounceBody {
  int16_t current_utc_offset = 37;
  uint8_t priority1 = 128;
  ClockQuality gm_quality;
  uint8_t priority2 = 128;
  ClockIdentity gm_identity{};
  uint16_t steps_removed = 0;
  uint8_t time_source = 0xa0;  // internal oscillator
  bool operator==(const AnnounceBody&) const = default;
};

enum class TlvType : uint16_t {
  kManagement = 0x0001,
  kManagementErrorStatus = 0x0002,
  kRequestUnicastTransmission = 0x0004,
  kGrantUnicastTransmission = 0x0005,
  kCancelUnicastTransmission = 0x0006,
  kAcknowledgeCancelUnicastTransmission = 0x0007,
  kPathTrace = 0x0008,
};

/// One unicast negotiation TLV (§16.1.4). `log_period`, `duration_s` and
/// `renewal_invited` are meaningful for REQUEST / GRANT only.
struct UnicastTlv {
  TlvType type = TlvType::kRequestUnicastTransmission;
  MessageType message = MessageType::kAnnounce;
  int8_t log_period = 0;
  uint32_t duration_s = 0;
  bool renewal_invited = false;  // GRANT
  bool operator==(const UnicastTlv&) const = default;
};

enum class ManagementAction : uint8_t { kGet = 0, kSet = 1, kResponse = 2, kCommand = 3, kAcknowledge = 4 };

// managementId values (§15.5.2.3) Meridian answers or asks for.
enum class ManagementId : uint16_t {
  kNullManagement = 0x0000,
  kClockDescription = 0x0001,
  kDefaultDataSet = 0x2000,
  kCurrentDataSet = 0x2001,
  kParentDataSet = 0x2002,
  kTimePropertiesDataSet = 0x2003,
  kPortDataSet = 0x2004,
  kPriority1 = 0x2005,
  kPriority2 = 0x2006,
  kDomain = 0x2007,
};

// managementErrorId values (§15.5.4.4).
inline constexpr uint16_t kMgmtErrorResponseTooBig = 0x0001;
inline constexpr uint16_t kMgmtErrorNoSuchId = 0x0002;
inline constexpr uint16_t kMgmtErrorWrongLength = 0x0003;
inline constexpr uint16_t kMgmtErrorWrongValue = 0x0004;
inline constexpr uint16_t kMgmtErrorNotSetable = 0x0005;
inline constexpr uint16_t kMgmtErrorNotSupported = 0x0006;

/// A Management message's body and its one TLV: a MANAGEMENT TLV (`id`,
/// `data` = the dataField, even length) or a MANAGEMENT_ERROR_STATUS TLV
/// (`error` set, `error_id`, `id` the managementId it concerns).
struct ManagementBody {
  PortIdentity target;
  uint8_t starting_boundary_hops = 0;
  uint8_t boundary_hops = 0;
  ManagementAction action = ManagementAction::kGet;
  uint16_t id = 0;
  std::vector<uint8_t> data;
  bool error = false;
  uint16_t error_id = 0;
  bool operator==(const ManagementBody&) const = default;
};

/// One decoded or to-be-encoded message. Which fields count depends on the
/// type: `timestamp` is the origin (Sync, Delay_Req, Pdelay_Req, Announce),
/// precise origin (Follow_Up), receive (Delay_Resp), request receipt
/// (Pdelay_Resp) or response origin (Pdelay_Resp_Follow_Up) timestamp;
/// `requesting` belongs to Delay_Resp and the Pdelay responses; `target` and
/// `unicast` to Signaling; `management` to Management.
struct Message {
  Header header;
  Timestamp timestamp;
  PortIdentity requesting;
  AnnounceBody announce;
  PortIdentity target;
  std::vector<UnicastTlv> unicast;
  ManagementBody management;
};

#define MERIDIAN_PTP_DECODE_ERRORS(X)                                              \
  X(kTooShort, "too_short", "shorter than the header or its type's body")          \
  X(kBadVersion, "bad_version", "versionPTP is not 2")                             \
  X(kBadLength, "bad_length", "messageLength beyond the buffer or below the body") \
  X(kReservedType, "reserved_type", "messageType reserved")                        \
  X(kBadTimestamp, "bad_timestamp", "nanoseconds >= 1e9")                          \
  X(kBadTlv, "bad_tlv", "TLV length runs past the message or is wrong for its type") \
  X(kBadManagement, "bad_management", "Management without exactly one management TLV")

enum class DecodeError : uint8_t {
  kNone,
#define MERIDIAN_PTP_DE_ENUM(e, n, d) e,
  MERIDIAN_PTP_DECODE_ERRORS(MERIDIAN_PTP_DE_ENUM)
#undef MERIDIAN_PTP_DE_ENUM
};
const char* decode_error_name(DecodeError e);
/// DecodeError values, kNone included.
inline constexpr size_t kDecodeErrorCount = 1
#define MERIDIAN_PTP_DE_ONE(e, n, d) +1
    MERIDIAN_PTP_DECODE_ERRORS(MERIDIAN_PTP_DE_ONE)
#undef MERIDIAN_PTP_DE_ONE
    ;

/// Bytes encode() will write for `m`.
size_t encoded_size(const Message& m);
/// Writes `m` (header.length and control derived); returns the bytes
/// written, 0 when `out` is too small.
size_t encode(const Message& m, std::span<uint8_t> out);
/// Decodes one message from a PTP payload (trailing bytes past messageLength,
/// e.g. Ethernet padding, are ignored). Unknown TLVs after a body are skipped.
DecodeError decode(std::span<const uint8_t> in, Message& m);

// ---- in-place header access (transparent clock, data path) -----------------

/// The header fields a forwarding path needs, without decoding the body.
/// False when `in` is not a PTPv2 message.
bool peek(std::span<const uint8_t> in, MessageType& type, uint16_t& flags, uint8_t& domain);
/// Adds `scaled_ns` (ns * 2^16) to the correctionField in place.
void add_correction(std::span<uint8_t> msg, int64_t scaled_ns);

// ---- management data sets (§15.5.3) ---------------------------------------

struct DefaultDataSet {
  bool two_step = true;
  bool slave_only = false;
  uint16_t number_ports = 1;
  uint8_t priority1 = 128;
  ClockQuality quality;
  uint8_t priority2 = 128;
  ClockIdentity identity{};
  uint8_t domain = 0;
  bool operator==(const DefaultDataSet&) const = default;
};
struct CurrentDataSet {
  uint16_t steps_removed = 0;
  int64_t offset_from_master = 0;  // scaled ns
  int64_t mean_path_delay = 0;     // scaled ns
  bool operator==(const CurrentDataSet&) const = default;
};
struct ParentDataSet {
  PortIdentity parent;
  bool parent_stats = false;
  uint16_t observed_offset_scaled_log_variance = 0xffff;
  int32_t observed_phase_change_rate = 0x7fffffff;
  uint8_t gm_priority1 = 128;
  ClockQuality gm_quality;
  uint8_t gm_priority2 = 128;
  ClockIdentity gm_identity{};
  bool operator==(const ParentDataSet&) const = default;
};
struct TimePropertiesDataSet {
  int16_t current_utc_offset = 37;
  uint8_t flags = 0;  // low octet of flagField: leap61 .. frequencyTraceable
  uint8_t time_source = 0xa0;
  bool operator==(const TimePropertiesDataSet&) const = default;
};
enum class PortState : uint8_t {
  kInitializing = 1,
  kFaulty = 2,
  kDisabled = 3,
  kListening = 4,
  kPreMaster = 5,
  kMaster = 6,
  kPassive = 7,
  kUncalibrated = 8,
  kSlave = 9,
};
const char* port_state_name(PortState s);
struct PortDataSet {
  PortIdentity port;
  PortState state = PortState::kInitializing;
  int8_t log_min_delay_req_interval = 0;
  int64_t peer_mean_path_delay = 0;  // scaled ns
  int8_t log_announce_interval = 1;
  uint8_t announce_receipt_timeout = 3;
  int8_t log_sync_interval = 0;
  uint8_t delay_mechanism = 1;  // 1 E2E, 2 P2P, 0xfe disabled
  int8_t log_min_pdelay_req_interval = 0;
  uint8_t version = 2;
  bool operator==(const PortDataSet&) const = default;
};

std::vector<uint8_t> encode_data(const DefaultDataSet& d);
std::vector<uint8_t> encode_data(const CurrentDataSet& d);
std::vector<uint8_t> encode_data(const ParentDataSet& d);
std::vector<uint8_t> encode_data(const TimePropertiesDataSet& d);
std::vector<uint8_t> encode_data(const PortDataSet& d);
bool decode_data(std::span<const uint8_t> in, DefaultDataSet& d);
bool decode_data(std::span<const uint8_t> in, CurrentDataSet& d);
bool decode_data(std::span<const uint8_t> in, ParentDataSet& d);
bool decode_data(std::span<const uint8_t> in, TimePropertiesDataSet& d);
bool decode_data(std::span<const uint8_t> in, PortDataSet& d);

}  // namespace meridian::ptp
