#include "ptp/message.h"

#include <cstdio>
#include <cstring>

namespace meridian::ptp {

namespace {

// Big-endian writer/reader over a span; the callers check sizes up front.
struct Writer {
  uint8_t* p;
  void u8(uint8_t v) { *p++ = v; }
  void u16(uint16_t v) {
    u8(static_cast<uint8_t>(v >> 8));
    u8(static_cast<uint8_t>(v));
  }
  void u32(uint32_t v) {
    u16(static_cast<uint16_t>(v >> 16));
    u16(static_cast<uint16_t>(v));
  }
  void u48(uint64_t v) {
    u16(static_cast<uint16_t>(v >> 32));
    u32(static_cast<uint32_t>(v));
  }
  void u64(uint64_t v) {
    u32(static_cast<uint32_t>(v >> 32));
    u32(static_cast<uint32_t>(v));
  }
  void zeros(size_t n) {
    std::memset(p, 0, n);
    p += n;
  }
  void bytes(const uint8_t* b, size_t n) {
    std::memcpy(p, b, n);
    p += n;
  }
  void port(const PortIdentity& id) {
    bytes(id.clock.data(), id.clock.size());
    u16(id.port);
  }
  void timestamp(const Timestamp& t) {
    u48(t.seconds);
    u32(t.nanoseconds);
  }
  void quality(const ClockQuality& q) {
    u8(q.clock_class);
    u8(q.clock_accuracy);
    u16(q.offset_scaled_log_variance);
  }
};

struct Reader {
  const uint8_t* p;
  uint8_t u8() { return *p++; }
  uint16_t u16() {
    const uint16_t v = static_cast<uint16_t>(p[0] << 8 | p[1]);
    p += 2;
    return v;
  }
  uint32_t u32() {
    const uint32_t hi = u16();
    return hi << 16 | u16();
  }
  uint64_t u48() {
    const uint64_t hi = u16();
    return hi << 32 | u32();
  }
  uint64_t u64() {
    const uint64_t hi = u32();
    return hi << 32 | u32();
  }
  void skip(size_t n) { p += n; }
  PortIdentity port() {
    PortIdentity id;
    std::memcpy(id.clock.data(), p, id.clock.size());
    p += id.clock.size();
    id.port = u16();
    return id;
  }
  Timestamp timestamp() {
    Timestamp t;
    t.seconds = u48();
    t.nanoseconds = u32();
    return t;
  }
  ClockQuality quality() {
    ClockQuality q;
    q.clock_class = u8();
    q.clock_accuracy = u8();
    q.offset_scaled_log_variance = u16();
    return q;
  }
};

constexpr size_t kTimestampSize = 10;
constexpr size_t kPortIdentitySize = 10;
constexpr size_t kAnnounceBodySize = 30;
constexpr size_t kManagementBodySize = 14;
constexpr size_t kTlvHeaderSize = 4;
constexpr size_t kMgmtErrorMinSize = 8;  // errorId, managementId, 4 reserved (displayData optional)

bool known_type(uint8_t t) {
  switch (static_cast<MessageType>(t)) {
    case MessageType::kSync:
    case MessageType::kDelayReq:
    case MessageType::kPdelayReq:
    case MessageType::kPdelayResp:
    case MessageType::kFollowUp:
    case MessageType::kDelayResp:
    case MessageType::kPdelayRespFollowUp:
    case MessageType::kAnnounce:
    case MessageType::kSignaling:
    case MessageType::kManagement:
      return true;
  }
  return false;
}

/// Fixed body size before any TLVs.
size_t body_size(MessageType t) {
  switch (t) {
    case MessageType::kSync:
    case MessageType::kDelayReq:
    case MessageType::kFollowUp:
      return kTimestampSize;
    case MessageType::kDelayResp:
    case MessageType::kPdelayReq:
    case MessageType::kPdelayResp:
    case MessageType::kPdelayRespFollowUp:
      return kTimestampSize + kPortIdentitySize;
    case MessageType::kAnnounce:
      return kAnnounceBodySize;
    case MessageType::kSignaling:
      return kPortIdentitySize;
    case MessageType::kManagement:
      return kManagementBodySize;
  }
  return 0;
}

/// The deprecated controlField (§13.3.2.13), still checked by old receivers.
uint8_t control_field(MessageType t) {
  switch (t) {
    case MessageType::kSync: return 0;
    case MessageType::kDelayReq: return 1;
    case MessageType::kFollowUp: return 2;
    case MessageType::kDelayResp: return 3;
    case MessageType::kManagement: return 4;
    default: return 5;
  }
}

bool is_unicast_tlv(TlvType t) {
  return t == TlvType::kRequestUnicastTransmission || t == TlvType::kGrantUnicastTransmission ||
         t == TlvType::kCancelUnicastTransmission || t == TlvType::kAcknowledgeCancelUnicastTransmission;
}

size_t unicast_tlv_length(TlvType t) {
  switch (t) {
    case TlvType::kRequestUnicastTransmission: return 6;
    case TlvType::kGrantUnicastTransmission: return 8;
    default: return 2;
  }
}

size_t tlvs_size(const Message& m) {
  if (m.header.type == MessageType::kSignaling) {
    size_t n = 0;
    for (const UnicastTlv& t : m.unicast) n += kTlvHeaderSize + unicast_tlv_length(t.type);
    return n;
  }
  if (m.header.type == MessageType::kManagement) {
    const ManagementBody& mg = m.management;
    if (mg.error) return kTlvHeaderSize + kMgmtErrorMinSize;
    return kTlvHeaderSize + 2 + mg.data.size() + (mg.data.size() & 1);
  }
  return 0;
}

}  // namespace

const char* message_type_name(MessageType t) {
  switch (t) {
    case MessageType::kSync: return "sync";
    case MessageType::kDelayReq: return "delay_req";
    case MessageType::kPdelayReq: return "pdelay_req";
    case MessageType::kPdelayResp: return "pdelay_resp";
    case MessageType::kFollowUp: return "follow_up";
    case MessageType::kDelayResp: return "delay_resp";
    case MessageType::kPdelayRespFollowUp: return "pdelay_resp_follow_up";
    case MessageType::kAnnounce: return "announce";
    case MessageType::kSignaling: return "signaling";
    case MessageType::kManagement: return "management";
  }
  return "unknown";
}

const char* decode_error_name(DecodeError e) {
  switch (e) {
    case DecodeError::kNone: return "none";
#define MERIDIAN_PTP_DE_NAME(e, n, d) \
  case DecodeError::e:                \
    return n;
    MERIDIAN_PTP_DECODE_ERRORS(MERIDIAN_PTP_DE_NAME)
#undef MERIDIAN_PTP_DE_NAME
  }
  return "unknown";
}

const char* port_state_name(PortState s) {
  switch (s) {
    case PortState::kInitializing: return "initializing";
    case PortState::kFaulty: return "faulty";
    case PortState::kDisabled: return "disabled";
    case PortState::kListening: return "listening";
    case PortState::kPreMaster: return "pre_master";
    case PortState::kMaster: return "master";
    case PortState::kPassive: return "passive";
    case PortState::kUncalibrated: return "uncalibrated";
    case PortState::kSlave: return "slave";
  }
  return "unknown";
}

std::string to_string(const ClockIdentity& c) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%02x%02x%02x.%02x%02x.%02x%02x%02x", c[0], c[1], c[2], c[3], c[4], c[5], c[6],
                c[7]);
  return buf;
}

std::string to_string(const PortIdentity& p) { return to_string(p.clock) + "-" + std::to_string(p.port); }

size_t encoded_size(const Message& m) { return kHeaderSize + body_size(m.header.type) + tlvs_size(m); }

size_t encode(const Message& m, std::span<uint8_t> out) {
  const size_t len = encoded_size(m);
  if (out.size() < len || len > UINT16_MAX) return 0;
  const Header& h = m.header;
  Writer w{out.data()};
  w.u8(static_cast<uint8_t>(h.major_sdo_id << 4 | (static_cast<uint8_t>(h.type) & 0x0f)));
  w.u8(static_cast<uint8_t>(h.minor_version << 4 | (h.version & 0x0f)));
  w.u16(static_cast<uint16_t>(len));
  w.u8(h.domain);
  w.u8(h.minor_sdo_id);
  w.u16(h.flags);
  w.u64(static_cast<uint64_t>(h.correction));
  w.u32(h.type_specific);
  w.port(h.source);
  w.u16(h.sequence_id);
  w.u8(control_field(h.type));
  w.u8(static_cast<uint8_t>(h.log_interval));
  switch (h.type) {
    case MessageType::kSync:
    case MessageType::kDelayReq:
    case MessageType::kFollowUp:
      w.timestamp(m.timestamp);
      break;
    case MessageType::kPdelayReq:
      w.timestamp(m.timestamp);
      w.zeros(kPortIdentitySize);  // reserved, so the request is as long as the response
      break;
    case MessageType::kDelayResp:
    case MessageType::kPdelayResp:
    case MessageType::kPdelayRespFollowUp:
      w.timestamp(m.timestamp);
      w.port(m.requesting);
      break;
    case MessageType::kAnnounce: {
      const AnnounceBody& a = m.announce;
      w.timestamp(m.timestamp);
      w.u16(static_cast<uint16_t>(a.current_utc_offset));
      w.u8(0);
      w.u8(a.priority1);
      w.quality(a.gm_quality);
      w.u8(a.priority2);
      w.bytes(a.gm_identity.data(), a.gm_identity.size());
      w.u16(a.steps_removed);
      w.u8(a.time_source);
      break;
    }
    case MessageType::kSignaling:
      w.port(m.target);
      for (const UnicastTlv& t : m.unicast) {
        w.u16(static_cast<uint16_t>(t.type));
        w.u16(static_cast<uint16_t>(unicast_tlv_length(t.type)));
        w.u8(static_cast<uint8_t>(static_cast<uint8_t>(t.message) << 4));
        if (t.type == TlvType::kRequestUnicastTransmission || t.type == TlvType::kGrantUnicastTransmission) {
          w.u8(static_cast<uint8_t>(t.log_period));
          w.u32(t.duration_s);
          if (t.type == TlvType::kGrantUnicastTransmission) {
            w.u8(0);
            w.u8(t.renewal_invited ? 1 : 0);
          }
        } else {
          w.u8(0);
        }
      }
      break;
    case MessageType::kManagement: {
      const ManagementBody& mg = m.management;
      w.port(mg.target);
      w.u8(mg.starting_boundary_hops);
      w.u8(mg.boundary_hops);
      w.u8(static_cast<uint8_t>(mg.action) & 0x0f);
      w.u8(0);
      if (mg.error) {
        w.u16(static_cast<uint16_t>(TlvType::kManagementErrorStatus));
        w.u16(kMgmtErrorMinSize);
        w.u16(mg.error_id);
        w.u16(mg.id);
        w.zeros(4);
      } else {
        const size_t pad = mg.data.size() & 1;
        w.u16(static_cast<uint16_t>(TlvType::kManagement));
        w.u16(static_cast<uint16_t>(2 + mg.data.size() + pad));
        w.u16(mg.id);
        if (!mg.data.empty()) w.bytes(mg.data.data(), mg.data.size());
        w.zeros(pad);
      }
      break;
    }
  }
  return len;
}

DecodeError decode(std::span<const uint8_t> in, Message& m) {
  if (in.size() < kHeaderSize) return DecodeError::kTooShort;
  Reader r{in.data()};
  Header& h = m.header;
  const uint8_t b0 = r.u8();
  const uint8_t b1 = r.u8();
  if ((b1 & 0x0f) != 2) return DecodeError::kBadVersion;
  if (!known_type(b0 & 0x0f)) return DecodeError::kReservedType;
  h.major_sdo_id = b0 >> 4;
  h.type = static_cast<MessageType>(b0 & 0x0f);
  h.version = b1 & 0x0f;
  h.minor_version = b1 >> 4;
  h.length = r.u16();
  if (h.length > in.size()) return DecodeError::kBadLength;
  if (h.length < kHeaderSize + body_size(h.type)) return DecodeError::kBadLength;
  h.domain = r.u8();
  h.minor_sdo_id = r.u8();
  h.flags = r.u16();
  h.correction = static_cast<int64_t>(r.u64());
  h.type_specific = r.u32();
  h.source = r.port();
  h.sequence_id = r.u16();
  h.control = r.u8();
  h.log_interval = static_cast<int8_t>(r.u8());
  const uint8_t* end = in.data() + h.length;

  m.timestamp = Timestamp{};
  m.unicast.clear();
  m.management = ManagementBody{};
  switch (h.type) {
    case MessageType::kSync:
    case MessageType::kDelayReq:
    case MessageType::kFollowUp:
    case MessageType::kPdelayReq:
      m.timestamp = r.timestamp();
      break;
    case MessageType::kDelayResp:
    case MessageType::kPdelayResp:
    case MessageType::kPdelayRespFollowUp:
      m.timestamp = r.timestamp();
      m.requesting = r.port();
      break;
    case MessageType::kAnnounce: {
      AnnounceBody& a = m.announce;
      m.timestamp = r.timestamp();
      a.current_utc_offset = static_cast<int16_t>(r.u16());
      r.skip(1);
      a.priority1 = r.u8();
      a.gm_quality = r.quality();
      a.priority2 = r.u8();
      std::memcpy(a.gm_identity.data(), r.p, a.gm_identity.size());
      r.skip(a.gm_identity.size());
      a.steps_removed = r.u16();
      a.time_source = r.u8();
      break;
    }
    case MessageType::kSignaling: {
      m.target = r.port();
      while (r.p < end) {
        if (end - r.p < static_cast<ptrdiff_t>(kTlvHeaderSize)) return DecodeError::kBadTlv;
        const auto type = static_cast<TlvType>(r.u16());
        const uint16_t length = r.u16();
        if (end - r.p < length) return DecodeError::kBadTlv;
        const uint8_t* next = r.p + length;
        if (is_unicast_tlv(type)) {
          if (length < unicast_tlv_length(type)) return DecodeError::kBadTlv;
          UnicastTlv t;
          t.type = type;
          t.message = static_cast<MessageType>(r.u8() >> 4);
          if (type == TlvType::kRequestUnicastTransmission || type == TlvType::kGrantUnicastTransmission) {
            t.log_period = static_cast<int8_t>(r.u8());
            t.duration_s = r.u32();
            if (type == TlvType::kGrantUnicastTransmission) {
              r.skip(1);
              t.renewal_invited = r.u8() & 1;
            }
          }
          m.unicast.push_back(t);
        }
        r.p = next;  // other TLVs (organization extensions, path trace) are skipped
      }
      break;
    }
    case MessageType::kManagement: {
      ManagementBody& mg = m.management;
      mg.target = r.port();
      mg.starting_boundary_hops = r.u8();
      mg.boundary_hops = r.u8();
      mg.action = static_cast<ManagementAction>(r.u8() & 0x0f);
      r.skip(1);
      if (end - r.p < static_cast<ptrdiff_t>(kTlvHeaderSize)) return DecodeError::kBadManagement;
      const auto type = static_cast<TlvType>(r.u16());
      const uint16_t length = r.u16();
      if (end - r.p < length) return DecodeError::kBadTlv;
      if (type == TlvType::kManagement) {
        if (length < 2) return DecodeError::kBadTlv;
        mg.id = r.u16();
        mg.data.assign(r.p, r.p + (length - 2));
      } else if (type == TlvType::kManagementErrorStatus) {
        if (length < kMgmtErrorMinSize) return DecodeError::kBadTlv;
        mg.error = true;
        mg.error_id = r.u16();
        mg.id = r.u16();
      } else {
        return DecodeError::kBadManagement;
      }
      break;
    }
  }
  if (m.timestamp.nanoseconds >= 1'000'000'000) return DecodeError::kBadTimestamp;
  return DecodeError::kNone;
}

bool peek(std::span<const uint8_t> in, MessageType& type, uint16_t& flags, uint8_t& domain) {
  if (in.size() < kHeaderSize || (in[1] & 0x0f) != 2 || !known_type(in[0] & 0x0f)) return false;
  type = static_cast<MessageType>(in[0] & 0x0f);
  domain = in[4];
  flags = static_cast<uint16_t>(in[6] << 8 | in[7]);
  return true;
}

void add_correction(std::span<uint8_t> msg, int64_t scaled_ns) {
  if (msg.size() < kHeaderSize) return;
  Reader r{msg.data() + 8};
  const uint64_t v = r.u64() + static_cast<uint64_t>(scaled_ns);  // two's complement wrap, as on the wire
  Writer w{msg.data() + 8};
  w.u64(v);
}

// ---- data sets --------------------------------------------------------------

std::vector<uint8_t> encode_data(const DefaultDataSet& d) {
  std::vector<uint8_t> v(20);
  Writer w{v.data()};
  w.u8(static_cast<uint8_t>((d.two_step ? 1 : 0) | (d.slave_only ? 2 : 0)));
  w.u8(0);
  w.u16(d.number_ports);
  w.u8(d.priority1);
  w.quality(d.quality);
  w.u8(d.priority2);
  w.bytes(d.identity.data(), d.identity.size());
  w.u8(d.domain);
  w.u8(0);
  return v;
}

bool decode_data(std::span<const uint8_t> in, DefaultDataSet& d) {
  if (in.size() < 20) return false;
  Reader r{in.data()};
  const uint8_t f = r.u8();
  d.two_step = f & 1;
  d.slave_only = f & 2;
  r.skip(1);
  d.number_ports = r.u16();
  d.priority1 = r.u8();
  d.quality = r.quality();
  d.priority2 = r.u8();
  std::memcpy(d.identity.data(), r.p, d.identity.size());
  r.skip(d.identity.size());
  d.domain = r.u8();
  return true;
}

std::vector<uint8_t> encode_data(const CurrentDataSet& d) {
  std::vector<uint8_t> v(18);
  Writer w{v.data()};
  w.u16(d.steps_removed);
  w.u64(static_cast<uint64_t>(d.offset_from_master));
  w.u64(static_cast<uint64_t>(d.mean_path_delay));
  return v;
}

bool decode_data(std::span<const uint8_t> in, CurrentDataSet& d) {
  if (in.size() < 18) return false;
  Reader r{in.data()};
  d.steps_removed = r.u16();
  d.offset_from_master = static_cast<int64_t>(r.u64());
  d.mean_path_delay = static_cast<int64_t>(r.u64());
  return true;
}

std::vector<uint8_t> encode_data(const ParentDataSet& d) {
  std::vector<uint8_t> v(32);
  Writer w{v.data()};
  w.port(d.parent);
  w.u8(d.parent_stats ? 1 : 0);
  w.u8(0);
  w.u16(d.observed_offset_scaled_log_variance);
  w.u32(static_cast<uint32_t>(d.observed_phase_change_rate));
  w.u8(d.gm_priority1);
  w.quality(d.gm_quality);
  w.u8(d.gm_priority2);
  w.bytes(d.gm_identity.data(), d.gm_identity.size());
  return v;
}

bool decode_data(std::span<const uint8_t> in, ParentDataSet& d) {
  if (in.size() < 32) return false;
  Reader r{in.data()};
  d.parent = r.port();
  d.parent_stats = r.u8() & 1;
  r.skip(1);
  d.observed_offset_scaled_log_variance = r.u16();
  d.observed_phase_change_rate = static_cast<int32_t>(r.u32());
  d.gm_priority1 = r.u8();
  d.gm_quality = r.quality();
  d.gm_priority2 = r.u8();
  std::memcpy(d.gm_identity.data(), r.p, d.gm_identity.size());
  return true;
}

std::vector<uint8_t> encode_data(const TimePropertiesDataSet& d) {
  std::vector<uint8_t> v(4);
  Writer w{v.data()};
  w.u16(static_cast<uint16_t>(d.current_utc_offset));
  w.u8(d.flags);
  w.u8(d.time_source);
  return v;
}

bool decode_data(std::span<const uint8_t> in, TimePropertiesDataSet& d) {
  if (in.size() < 4) return false;
  Reader r{in.data()};
  d.current_utc_offset = static_cast<int16_t>(r.u16());
  d.flags = r.u8();
  d.time_source = r.u8();
  return true;
}

std::vector<uint8_t> encode_data(const PortDataSet& d) {
  std::vector<uint8_t> v(26);
  Writer w{v.data()};
  w.port(d.port);
  w.u8(static_cast<uint8_t>(d.state));
  w.u8(static_cast<uint8_t>(d.log_min_delay_req_interval));
  w.u64(static_cast<uint64_t>(d.peer_mean_path_delay));
  w.u8(static_cast<uint8_t>(d.log_announce_interval));
  w.u8(d.announce_receipt_timeout);
  w.u8(static_cast<uint8_t>(d.log_sync_interval));
  w.u8(d.delay_mechanism);
  w.u8(static_cast<uint8_t>(d.log_min_pdelay_req_interval));
  w.u8(d.version & 0x0f);
  return v;
}

bool decode_data(std::span<const uint8_t> in, PortDataSet& d) {
  if (in.size() < 26) return false;
  Reader r{in.data()};
  d.port = r.port();
  d.state = static_cast<PortState>(r.u8());
  d.log_min_delay_req_interval = static_cast<int8_t>(r.u8());
  d.peer_mean_path_delay = static_cast<int64_t>(r.u64());
  d.log_announce_interval = static_cast<int8_t>(r.u8());
  d.announce_receipt_timeout = r.u8();
  d.log_sync_interval = static_cast<int8_t>(r.u8());
  d.delay_mechanism = r.u8();
  d.log_min_pdelay_req_interval = static_cast<int8_t>(r.u8());
  d.version = r.u8() & 0x0f;
  return true;
}

}  // namespace meridian::ptp
