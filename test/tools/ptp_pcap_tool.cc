// The PTP codec's side of the tshark oracle (test/integration/test_ptp_codec.py).
//
//   ptp_pcap_tool encode OUT.pcap   encodes a catalogue of every message type
//                                   over L2, UDPv4 and UDPv6, writes the frames
//                                   and prints, per frame, the fields it meant
//                                   to encode, named and spelled as tshark's
//                                   PTP dissector shows them (JSON array);
//   ptp_pcap_tool decode IN.pcap    decodes every frame of a capture (e.g. of
//                                   ptp4l) and prints the same field names
//                                   with the values it decoded, or the
//                                   decode error.
//
// The test runs tshark over the same pcap and compares field by field, so an
// encoder or decoder slip at any byte shows up against an independent parser.
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ptp/message.h"
#include "test/tools/pcap_file.h"
#include "ptp/transport.h"

using namespace meridian::ptp;
using meridian::test_tools::read_pcap;
using meridian::test_tools::write_pcap;
using nlohmann::json;

namespace {

// ---- fields as tshark spells them -------------------------------------------

std::string hex_id(const ClockIdentity& c) {
  char b[19];
  std::snprintf(b, sizeof b, "0x%02x%02x%02x%02x%02x%02x%02x%02x", c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]);
  return b;
}
std::string hex(unsigned v, int width) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%0*x", width, v);
  return b;
}
std::string num(int64_t v) { return std::to_string(v); }
std::string bit(bool b) { return b ? "1" : "0"; }
/// The nanoseconds of a TimeInterval as tshark shows them: unsigned 64-bit.
std::string scaled_ns(int64_t v) { return std::to_string(static_cast<uint64_t>(v >> 16)); }

void timestamp_fields(json& j, const std::string& prefix, const Timestamp& t) {
  j[prefix + ".seconds"] = num(static_cast<int64_t>(t.seconds));
  j[prefix + ".nanoseconds"] = num(t.nanoseconds);
}

void quality_fields(json& j, const std::string& p, const ClockQuality& q) {
  j[p + "clockclass"] = num(q.clock_class);
  j[p + "clockaccuracy"] = hex(q.clock_accuracy, 2);
  j[p + "clockvariance"] = num(q.offset_scaled_log_variance);
}

json fields(const Message& m, Transport transport) {
  const Header& h = m.header;
  json j;
  j["transport"] = transport_name(transport);
  j["ptp.v2.messagetype"] = hex(static_cast<unsigned>(h.type), 2);
  j["ptp.v2.majorsdoid"] = hex(h.major_sdo_id, 2);
  j["ptp.v2.versionptp"] = num(h.version);
  j["ptp.v2.minorversionptp"] = num(h.minor_version);
  j["ptp.v2.messagelength"] = num(static_cast<int64_t>(h.length ? h.length : encoded_size(m)));
  j["ptp.v2.domainnumber"] = num(h.domain);
  j["ptp.v2.minorsdoid"] = num(h.minor_sdo_id);
  j["ptp.v2.flags"] = hex(h.flags, 4);
  j["ptp.v2.flags.twostep"] = bit(h.flags & kFlagTwoStep);
  j["ptp.v2.flags.unicast"] = bit(h.flags & kFlagUnicast);
  j["ptp.v2.flags.li61"] = bit(h.flags & kFlagLeap61);
  j["ptp.v2.flags.timescale"] = bit(h.flags & kFlagPtpTimescale);
  // tshark shows the nanoseconds as an unsigned 64-bit value (a negative
  // correction wraps) and the fraction as a decimal.
  j["ptp.v2.correction.ns"] = scaled_ns(h.correction);
  j["ptp.v2.correction.subns"] = static_cast<double>(h.correction & 0xffff) / 65536.0;
  j["ptp.v2.clockidentity"] = hex_id(h.source.clock);
  j["ptp.v2.sourceportid"] = num(h.source.port);
  j["ptp.v2.sequenceid"] = num(h.sequence_id);
  j["ptp.v2.logmessageperiod"] = num(h.log_interval);
  switch (h.type) {
    case MessageType::kSync:
    case MessageType::kDelayReq:
      timestamp_fields(j, "ptp.v2.sdr.origintimestamp", m.timestamp);
      break;
    case MessageType::kFollowUp:
      timestamp_fields(j, "ptp.v2.fu.preciseorigintimestamp", m.timestamp);
      break;
    case MessageType::kDelayResp:
      timestamp_fields(j, "ptp.v2.dr.receivetimestamp", m.timestamp);
      j["ptp.v2.dr.requestingsourceportidentity"] = hex_id(m.requesting.clock);
      j["ptp.v2.dr.requestingsourceportid"] = num(m.requesting.port);
      break;
    case MessageType::kPdelayReq:
      timestamp_fields(j, "ptp.v2.pdrq.origintimestamp", m.timestamp);
      break;
    case MessageType::kPdelayResp:
      timestamp_fields(j, "ptp.v2.pdrs.requestreceipttimestamp", m.timestamp);
      j["ptp.v2.pdrs.requestingportidentity"] = hex_id(m.requesting.clock);
      j["ptp.v2.pdrs.requestingsourceportid"] = num(m.requesting.port);
      break;
    case MessageType::kPdelayRespFollowUp:
      timestamp_fields(j, "ptp.v2.pdfu.responseorigintimestamp", m.timestamp);
      j["ptp.v2.pdfu.requestingportidentity"] = hex_id(m.requesting.clock);
      j["ptp.v2.pdfu.requestingsourceportid"] = num(m.requesting.port);
      break;
    case MessageType::kAnnounce: {
      const AnnounceBody& a = m.announce;
      timestamp_fields(j, "ptp.v2.an.origintimestamp", m.timestamp);
      j["ptp.v2.an.origincurrentutcoffset"] = num(a.current_utc_offset);
      j["ptp.v2.an.priority1"] = num(a.priority1);
      quality_fields(j, "ptp.v2.an.grandmaster", a.gm_quality);
      j["ptp.v2.an.priority2"] = num(a.priority2);
      j["ptp.v2.an.grandmasterclockidentity"] = hex_id(a.gm_identity);
      j["ptp.v2.an.localstepsremoved"] = num(a.steps_removed);
      j["ptp.v2.timesource"] = hex(a.time_source, 2);
      break;
    }
    case MessageType::kSignaling: {
      j["ptp.v2.sig.targetportidentity"] = hex_id(m.target.clock);
      j["ptp.v2.sig.targetportid"] = num(m.target.port);
      json types = json::array(), msgs = json::array(), periods = json::array(), durations = json::array();
      for (const UnicastTlv& t : m.unicast) {
        types.push_back(num(static_cast<unsigned>(t.type)));
        msgs.push_back(hex(static_cast<unsigned>(t.message), 2));
        if (t.type == TlvType::kRequestUnicastTransmission || t.type == TlvType::kGrantUnicastTransmission) {
          periods.push_back(num(t.log_period));
          durations.push_back(num(t.duration_s));
        }
      }
      j["ptp.v2.sig.tlv.tlvType"] = types;
      j["ptp.v2.sig.tlv.messageType"] = msgs;
      j["ptp.v2.sig.tlv.logInterMessagePeriod"] = periods;
      j["ptp.v2.sig.tlv.durationField"] = durations;
      break;
    }
    case MessageType::kManagement: {
      const ManagementBody& mg = m.management;
      j["ptp.v2.mm.targetportidentity"] = hex_id(mg.target.clock);
      j["ptp.v2.mm.targetportid"] = num(mg.target.port);
      j["ptp.v2.mm.startingboundaryhops"] = num(mg.starting_boundary_hops);
      j["ptp.v2.mm.boundaryhops"] = num(mg.boundary_hops);
      j["ptp.v2.mm.action"] = num(static_cast<unsigned>(mg.action));
      j["ptp.v2.mm.tlvType"] = num(mg.error ? 2 : 1);
      j["ptp.v2.mm.managementId"] = num(mg.id);
      if (mg.error) {
        j["ptp.v2.mm.managementErrorId"] = num(mg.error_id);
        break;
      }
      const std::span<const uint8_t> d(mg.data);
      switch (static_cast<ManagementId>(mg.id)) {
        case ManagementId::kDefaultDataSet: {
          DefaultDataSet s;
          if (!decode_data(d, s)) break;
          j["ptp.v2.mm.twoStep"] = bit(s.two_step);
          j["ptp.v2.mm.SlavOnly"] = bit(s.slave_only);
          j["ptp.v2.mm.numberPorts"] = num(s.number_ports);
          j["ptp.v2.mm.priority1"] = num(s.priority1);
          quality_fields(j, "ptp.v2.mm.", s.quality);
          j["ptp.v2.mm.priority2"] = num(s.priority2);
          j["ptp.v2.mm.clockidentity"] = hex_id(s.identity);
          j["ptp.v2.mm.domainNumber"] = num(s.domain);
          break;
        }
        case ManagementId::kCurrentDataSet: {
          CurrentDataSet s;
          if (!decode_data(d, s)) break;
          j["ptp.v2.mm.stepsRemoved"] = num(s.steps_removed);
          j["ptp.v2.mm.offset.ns"] = scaled_ns(s.offset_from_master);
          j["ptp.v2.mm.pathDelay.ns"] = scaled_ns(s.mean_path_delay);
          break;
        }
        case ManagementId::kParentDataSet: {
          ParentDataSet s;
          if (!decode_data(d, s)) break;
          j["ptp.v2.mm.parentclockidentity"] = hex_id(s.parent.clock);
          j["ptp.v2.mm.parentsourceportid"] = num(s.parent.port);
          j["ptp.v2.mm.parentstats"] = bit(s.parent_stats);
          j["ptp.v2.mm.observedParentOffsetScaledLogVariance"] = num(s.observed_offset_scaled_log_variance);
          j["ptp.v2.mm.observedParentClockPhaseChangeRate"] = num(s.observed_phase_change_rate);
          j["ptp.v2.mm.grandmasterPriority1"] = num(s.gm_priority1);
          quality_fields(j, "ptp.v2.mm.grandmaster", s.gm_quality);
          j["ptp.v2.mm.grandmasterPriority2"] = num(s.gm_priority2);
          j["ptp.v2.mm.grandmasterclockidentity"] = hex_id(s.gm_identity);
          break;
        }
        case ManagementId::kTimePropertiesDataSet: {
          TimePropertiesDataSet s;
          if (!decode_data(d, s)) break;
          j["ptp.v2.mm.currentutcoffset"] = num(s.current_utc_offset);
          j["ptp.v2.mm.li61"] = bit(s.flags & 0x01);
          j["ptp.v2.mm.CurrentUTCOffsetValid"] = bit(s.flags & 0x04);
          j["ptp.v2.mm.ptptimescale"] = bit(s.flags & 0x08);
          j["ptp.v2.mm.timesource"] = hex(s.time_source, 2);
          break;
        }
        case ManagementId::kPortDataSet: {
          PortDataSet s;
          if (!decode_data(d, s)) break;
          j["ptp.v2.mm.clockidentity"] = hex_id(s.port.clock);
          j["ptp.v2.mm.PortNumber"] = num(s.port.port);
          j["ptp.v2.mm.portState"] = num(static_cast<unsigned>(s.state));
          j["ptp.v2.mm.logMinDelayReqInterval"] = num(s.log_min_delay_req_interval);
          j["ptp.v2.mm.peerMeanPathDelay.ns"] = scaled_ns(s.peer_mean_path_delay);
          j["ptp.v2.mm.logAnnounceInterval"] = num(s.log_announce_interval);
          j["ptp.v2.mm.announceReceiptTimeout"] = num(s.announce_receipt_timeout);
          j["ptp.v2.mm.logSyncInterval"] = num(s.log_sync_interval);
          j["ptp.v2.mm.delayMechanism"] = num(s.delay_mechanism);
          j["ptp.v2.mm.logMinPdelayReqInterval"] = num(s.log_min_pdelay_req_interval);
          j["ptp.v2.mm.versionNumber"] = num(s.version);
          break;
        }
        default:
          break;
      }
      break;
    }
  }
  return j;
}

// ---- the catalogue ----------------------------------------------------------

constexpr ClockIdentity kGm{0x00, 0x1b, 0x21, 0xff, 0xfe, 0x12, 0x34, 0x56};
constexpr ClockIdentity kSlave{0x02, 0x42, 0xac, 0xff, 0xfe, 0x11, 0x00, 0x02};

std::vector<Message> catalogue() {
  std::vector<Message> out;
  uint16_t seq = 100;
  auto base = [&](MessageType t, uint8_t domain = 0) {
    Message m;
    m.header.type = t;
    m.header.domain = domain;
    m.header.source = {kGm, 1};
    m.header.sequence_id = seq++;
    return m;
  };
  Message sync2 = base(MessageType::kSync);
  sync2.header.flags = kFlagTwoStep;
  sync2.header.log_interval = -3;
  out.push_back(sync2);
  Message sync1 = base(MessageType::kSync, 127);
  sync1.header.correction = (int64_t{1234} << 16) | 0x8000;  // one-step, a TC added 1234.5 ns
  sync1.timestamp = {1'700'000'123, 999'999'999};
  out.push_back(sync1);
  Message fu = base(MessageType::kFollowUp, 127);
  fu.header.correction = -(int64_t{250} << 16);
  fu.timestamp = {0x0000ffffffffffffULL, 5};
  out.push_back(fu);
  Message dreq = base(MessageType::kDelayReq);
  dreq.header.source = {kSlave, 1};
  out.push_back(dreq);
  Message dresp = base(MessageType::kDelayResp, 24);
  dresp.header.log_interval = 0;
  dresp.timestamp = {1'700'000'124, 123'456'789};
  dresp.requesting = {kSlave, 1};
  out.push_back(dresp);
  Message pdreq = base(MessageType::kPdelayReq);
  pdreq.timestamp = {42, 7};
  out.push_back(pdreq);
  Message pdresp = base(MessageType::kPdelayResp);
  pdresp.header.flags = kFlagTwoStep;
  pdresp.timestamp = {43, 8};
  pdresp.requesting = {kSlave, 3};
  out.push_back(pdresp);
  Message pdfu = base(MessageType::kPdelayRespFollowUp);
  pdfu.timestamp = {44, 9};
  pdfu.requesting = {kSlave, 3};
  out.push_back(pdfu);
  Message an = base(MessageType::kAnnounce, 127);
  an.header.flags = kFlagPtpTimescale | kFlagUtcOffsetValid | kFlagLeap61;
  an.header.log_interval = -2;
  an.announce.priority1 = 64;
  an.announce.priority2 = 200;
  an.announce.gm_quality = {6, 0x21, 0x4e5d};
  an.announce.gm_identity = kGm;
  an.announce.steps_removed = 2;
  an.announce.time_source = 0x20;  // GNSS
  out.push_back(an);
  Message req = base(MessageType::kSignaling, 44);
  req.header.source = {kSlave, 1};
  req.header.flags = kFlagUnicast;
  req.target = {ClockIdentity{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0xffff};
  req.unicast = {{TlvType::kRequestUnicastTransmission, MessageType::kAnnounce, 1, 300, false},
                 {TlvType::kRequestUnicastTransmission, MessageType::kSync, -4, 300, false},
                 {TlvType::kRequestUnicastTransmission, MessageType::kDelayResp, -4, 300, false}};
  out.push_back(req);
  Message grant = base(MessageType::kSignaling, 44);
  grant.header.flags = kFlagUnicast;
  grant.target = {kSlave, 1};
  grant.unicast = {{TlvType::kGrantUnicastTransmission, MessageType::kSync, -4, 300, true}};
  out.push_back(grant);
  Message cancel = base(MessageType::kSignaling, 44);
  cancel.target = {kSlave, 1};
  cancel.unicast = {{TlvType::kCancelUnicastTransmission, MessageType::kAnnounce, 0, 0, false},
                    {TlvType::kAcknowledgeCancelUnicastTransmission, MessageType::kSync, 0, 0, false}};
  out.push_back(cancel);
  auto mgmt = [&](ManagementAction action, ManagementId id, std::vector<uint8_t> data) {
    Message m = base(MessageType::kManagement);
    m.management.target = {kSlave, 1};
    m.management.starting_boundary_hops = 1;
    m.management.boundary_hops = action == ManagementAction::kResponse ? 1 : 0;
    m.management.action = action;
    m.management.id = static_cast<uint16_t>(id);
    m.management.data = std::move(data);
    return m;
  };
  out.push_back(mgmt(ManagementAction::kGet, ManagementId::kDefaultDataSet, {}));
  DefaultDataSet dds;
  dds.two_step = true;
  dds.number_ports = 3;
  dds.priority1 = 100;
  dds.quality = {6, 0x21, 0x4e5d};
  dds.priority2 = 101;
  dds.identity = kGm;
  dds.domain = 127;
  out.push_back(mgmt(ManagementAction::kResponse, ManagementId::kDefaultDataSet, encode_data(dds)));
  CurrentDataSet cds{1, -(int64_t{321} << 16), int64_t{4567} << 16};
  out.push_back(mgmt(ManagementAction::kResponse, ManagementId::kCurrentDataSet, encode_data(cds)));
  ParentDataSet pds;
  pds.parent = {kGm, 2};
  pds.gm_priority1 = 64;
  pds.gm_quality = {7, 0xfe, 0xffff};
  pds.gm_priority2 = 128;
  pds.gm_identity = kGm;
  out.push_back(mgmt(ManagementAction::kResponse, ManagementId::kParentDataSet, encode_data(pds)));
  TimePropertiesDataSet tps{37, 0x0c, 0x20};
  out.push_back(mgmt(ManagementAction::kResponse, ManagementId::kTimePropertiesDataSet, encode_data(tps)));
  PortDataSet ports;
  ports.port = {kGm, 2};
  ports.state = PortState::kMaster;
  ports.log_min_delay_req_interval = -3;
  ports.peer_mean_path_delay = int64_t{80} << 16;
  ports.log_announce_interval = -2;
  ports.announce_receipt_timeout = 3;
  ports.log_sync_interval = -3;
  ports.delay_mechanism = 2;
  ports.log_min_pdelay_req_interval = 0;
  out.push_back(mgmt(ManagementAction::kResponse, ManagementId::kPortDataSet, encode_data(ports)));
  Message err = mgmt(ManagementAction::kResponse, ManagementId::kClockDescription, {});
  err.management.error = true;
  err.management.error_id = kMgmtErrorNotSupported;
  out.push_back(err);
  return out;
}

int encode_catalogue(const std::string& path) {
  std::vector<std::vector<uint8_t>> frames;
  json expected = json::array();
  for (Transport t : {Transport::kL2, Transport::kUdpIpv4, Transport::kUdpIpv6}) {
    for (const Message& m : catalogue()) {
      std::vector<uint8_t> msg(encoded_size(m));
      if (encode(m, msg) != msg.size()) return 1;
      FrameAddresses a;
      a.transport = t;
      a.src_mac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
      a.src_ip = {192, 0, 2, 1};
      if (t == Transport::kUdpIpv6) a.src_ip = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
      const bool pdelay = m.header.type == MessageType::kPdelayReq || m.header.type == MessageType::kPdelayResp ||
                          m.header.type == MessageType::kPdelayRespFollowUp;
      set_multicast_destination(a, pdelay);
      std::vector<uint8_t> frame(frame_header_size(t) + msg.size());
      if (build_frame(a, is_event(m.header.type), msg, frame) != frame.size()) return 1;
      frames.push_back(std::move(frame));
      expected.push_back(fields(m, t));
    }
  }
  write_pcap(path, frames);
  std::cout << expected.dump(1) << "\n";
  return 0;
}

int decode_capture(const std::string& path) {
  std::vector<std::vector<uint8_t>> frames;
  std::string err;
  if (!read_pcap(path, frames, err)) {
    std::cerr << "ptp_pcap_tool: " << path << ": " << err << "\n";
    return 1;
  }
  json out = json::array();
  for (const auto& f : frames) {
    PtpLocation loc;
    if (!locate(f, loc)) {
      out.push_back(json{{"ptp", false}});
      continue;
    }
    Message m;
    const DecodeError e = decode(std::span<const uint8_t>(f).subspan(loc.offset, loc.length), m);
    if (e != DecodeError::kNone) {
      out.push_back(json{{"ptp", true}, {"error", decode_error_name(e)}});
      continue;
    }
    json j = fields(m, loc.transport);
    j["ptp"] = true;
    out.push_back(j);
  }
  std::cout << out.dump(1) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "encode") return encode_catalogue(argv[2]);
  if (argc == 3 && std::string(argv[1]) == "decode") return decode_capture(argv[2]);
  std::cerr << "usage: ptp_pcap_tool encode OUT.pcap | decode IN.pcap\n";
  return 2;
}
