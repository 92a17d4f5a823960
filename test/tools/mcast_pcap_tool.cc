// The IGMP/MLD codec's side of its oracles (test/integration/test_mcast_codec.py).
//
//   mcast_pcap_tool encode OUT.pcap   encodes every message Meridian sends
//                                     (IGMPv1/v2/v3 and MLDv1/v2 queries:
//                                     general, group-specific, group-and-
//                                     source-specific; v3/MLDv2 reports with
//                                     every record type; v1/v2 joins and
//                                     leaves) and prints, per frame, the
//                                     fields it meant to write, named as
//                                     tshark's IGMP/ICMPv6 dissectors show them;
//   mcast_pcap_tool decode IN.pcap    decodes every frame of a capture (e.g.
//                                     of the Linux kernel's reports) and prints
//                                     what it read, or the refusal.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "multicast_gw/wire.h"
#include "test/tools/pcap_file.h"

using namespace meridian;
using namespace meridian::mcast;
using nlohmann::json;

namespace {

IpAddress ip(const char* text) { return *config::parse_ip(text); }

std::string hex2(unsigned v) {
  char b[8];
  std::snprintf(b, sizeof b, "0x%02x", v);
  return b;
}

std::vector<std::string> addresses(const std::vector<IpAddress>& v) {
  std::vector<std::string> out;
  for (const auto& a : v) out.push_back(config::to_string(a));
  return out;
}

/// The fields tshark shows for one of our frames.
json query_fields(const Sender& from, const Query& q, uint8_t version) {
  const bool v4 = q.group.is_v4();
  json j;
  const IpAddress dst = q.general() ? ip(v4 ? "224.0.0.1" : "ff02::1") : q.group;
  if (v4) {
    j = {{"ip.src", config::to_string(from.address)}, {"ip.dst", config::to_string(dst)}, {"ip.ttl", "1"},
         {"ip.dsfield", "0xc0"}, {"igmp.type", "0x11"}, {"igmp.version", std::to_string(version)},
         {"igmp.maddr", config::to_string(q.group)}, {"igmp.checksum.status", "1"}};
    if (version == 3) {
      j["igmp.s"] = q.suppress_router_side ? "1" : "0";
      j["igmp.qrv"] = std::to_string(q.robustness);
      j["igmp.qqic"] = std::to_string(q.interval_s);
      j["igmp.num_src"] = std::to_string(q.sources.size());
      if (!q.sources.empty()) j["igmp.saddr"] = addresses(q.sources);
    }
  } else {
    j = {{"ipv6.src", config::to_string(from.address)}, {"ipv6.dst", config::to_string(dst)}, {"ipv6.hlim", "1"},
         {"icmpv6.type", "130"}, {"icmpv6.mld.multicast_address", config::to_string(q.group)},
         {"icmpv6.checksum.status", "1"}};
    if (version == 2) {
      j["icmpv6.mld.maximum_response_code"] = std::to_string(q.max_response_ms);
      j["icmpv6.mld.flag.s"] = q.suppress_router_side ? "1" : "0";
      j["icmpv6.mld.flag.qrv"] = std::to_string(q.robustness);
      j["icmpv6.mld.qqi"] = std::to_string(q.interval_s);
      j["icmpv6.mld.nb_sources"] = std::to_string(q.sources.size());
      if (!q.sources.empty()) j["icmpv6.mld.source_address"] = addresses(q.sources);
    } else {
      j["icmpv6.mld.maximum_response_delay"] = std::to_string(q.max_response_ms);
    }
  }
  return j;
}

json report_fields(const Sender& from, uint8_t family, const std::vector<GroupRecord>& recs) {
  json j;
  std::vector<std::string> types, groups, counts, sources;
  for (const auto& r : recs) {
    types.push_back(std::to_string(static_cast<unsigned>(r.type)));
    groups.push_back(config::to_string(r.group));
    counts.push_back(std::to_string(r.sources.size()));
    for (const auto& s : r.sources) sources.push_back(config::to_string(s));
  }
  if (family == 4) {
    j = {{"ip.src", config::to_string(from.address)}, {"ip.dst", "224.0.0.22"}, {"ip.ttl", "1"},
         {"igmp.type", "0x22"}, {"igmp.version", "3"}, {"igmp.num_grp_recs", std::to_string(recs.size())},
         {"igmp.record_type", types}, {"igmp.maddr", groups}, {"igmp.num_src", counts},
         {"igmp.checksum.status", "1"}};
    if (!sources.empty()) j["igmp.saddr"] = sources;
  } else {
    j = {{"ipv6.src", config::to_string(from.address)}, {"ipv6.dst", "ff02::16"}, {"ipv6.hlim", "1"},
         {"icmpv6.type", "143"}, {"icmpv6.mldr.nb_mcast_records", std::to_string(recs.size())},
         {"icmpv6.mldr.mar.record_type", types}, {"icmpv6.mldr.mar.multicast_address", groups},
         {"icmpv6.mldr.mar.nb_sources", counts}, {"icmpv6.checksum.status", "1"}};
    if (!sources.empty()) j["icmpv6.mldr.mar.source_address"] = sources;
  }
  return j;
}

json older_fields(const Sender& from, const IpAddress& g, MessageKind kind, uint8_t version) {
  const bool leave = kind == MessageKind::kLeave;
  if (g.is_v4()) {
    const unsigned type = leave ? kIgmpV2Leave : version == 1 ? kIgmpV1Report : kIgmpV2Report;
    return {{"ip.src", config::to_string(from.address)}, {"ip.dst", leave ? "224.0.0.2" : config::to_string(g)},
            {"igmp.type", hex2(type)}, {"igmp.version", std::to_string(version)},
            {"igmp.maddr", config::to_string(g)}, {"igmp.checksum.status", "1"}};
  }
  return {{"ipv6.src", config::to_string(from.address)}, {"ipv6.dst", leave ? "ff02::2" : config::to_string(g)},
          {"icmpv6.type", std::to_string(leave ? kMldV1Done : kMldV1Report)},
          {"icmpv6.mld.multicast_address", config::to_string(g)}, {"icmpv6.checksum.status", "1"}};
}

int encode_catalogue(const std::string& path) {
  const Sender v4{{0x02, 0, 0, 0, 0, 1}, ip("10.0.0.1")};
  const Sender v6{{0x02, 0, 0, 0, 0, 1}, ip("fe80::1")};
  std::vector<std::vector<uint8_t>> frames;
  json expected = json::array();
  auto query = [&](const char* group, std::vector<const char*> sources, bool s, uint8_t version) {
    Query q;
    q.group = ip(group);
    for (const char* src : sources) q.sources.push_back(ip(src));
    q.suppress_router_side = s;
    q.robustness = 2;
    q.interval_s = 125;
    q.max_response_ms = 1000;  // the kernel-answers test waits this long
    const Sender& from = q.group.is_v4() ? v4 : v6;
    frames.push_back(build_query_frame(from, q, version));
    expected.push_back(query_fields(from, q, version));
  };
  for (uint8_t version : {1, 2, 3}) query("0.0.0.0", {}, false, version);
  query("239.1.1.1", {}, false, 2);
  query("239.1.1.1", {}, true, 3);
  query("232.1.1.1", {"10.10.0.5", "10.10.0.6"}, false, 3);
  for (uint8_t version : {1, 2}) query("::", {}, false, version);
  query("ff0e::1", {}, false, 1);
  query("ff0e::1", {}, true, 2);
  query("ff3e::8000:1", {"2001:db8::5", "2001:db8::6"}, false, 2);

  auto records = [&](uint8_t family) {
    const bool f4 = family == 4;
    const IpAddress g = ip(f4 ? "239.1.1.1" : "ff0e::1"), ssm = ip(f4 ? "232.1.1.1" : "ff3e::8000:1");
    const IpAddress s1 = ip(f4 ? "10.10.0.5" : "2001:db8::5"), s2 = ip(f4 ? "10.10.0.6" : "2001:db8::6");
    return std::vector<GroupRecord>{{RecordType::kIsInclude, ssm, {s1, s2}}, {RecordType::kIsExclude, g, {s2}},
                                    {RecordType::kToInclude, g, {}},          {RecordType::kToExclude, g, {}},
                                    {RecordType::kAllow, ssm, {s1}},          {RecordType::kBlock, ssm, {s2}}};
  };
  for (uint8_t family : {4, 6}) {
    const Sender& from = family == 4 ? v4 : v6;
    const auto recs = records(family);
    for (auto& f : build_report_frames(from, family, recs)) frames.push_back(std::move(f));
    expected.push_back(report_fields(from, family, recs));
  }
  for (const char* g : {"239.1.1.1", "ff0e::1"}) {
    const IpAddress group = ip(g);
    const Sender& from = group.is_v4() ? v4 : v6;
    for (uint8_t version : group.is_v4() ? std::vector<uint8_t>{1, 2} : std::vector<uint8_t>{1}) {
      frames.push_back(build_v1v2_frame(from, group, MessageKind::kJoin, version));
      expected.push_back(older_fields(from, group, MessageKind::kJoin, version));
    }
    const uint8_t leave_version = group.is_v4() ? 2 : 1;
    frames.push_back(build_v1v2_frame(from, group, MessageKind::kLeave, leave_version));
    expected.push_back(older_fields(from, group, MessageKind::kLeave, leave_version));
  }
  test_tools::write_pcap(path, frames);
  std::cout << expected.dump(1) << "\n";
  return 0;
}

std::string kind_name(MessageKind k) {
  switch (k) {
    case MessageKind::kQuery: return "query";
    case MessageKind::kReport: return "report";
    case MessageKind::kJoin: return "join";
    case MessageKind::kLeave: return "leave";
  }
  return "?";
}

int decode_capture(const std::string& path) {
  std::vector<std::vector<uint8_t>> frames;
  std::string err;
  if (!test_tools::read_pcap(path, frames, err)) {
    std::cerr << "mcast_pcap_tool: " << path << ": " << err << "\n";
    return 1;
  }
  json out = json::array();
  for (const auto& f : frames) {
    FrameMembership fm;
    const DecodeStatus s = decode_frame(f, fm);
    if (s == DecodeStatus::kUnknownType) {
      out.push_back(json{{"membership", false}});
      continue;
    }
    json j = {{"membership", true}};
    if (s != DecodeStatus::kOk) {
      j["error"] = decode_status_name(s);
      out.push_back(j);
      continue;
    }
    const Membership& m = fm.message;
    j["family"] = m.family;
    j["kind"] = kind_name(m.kind);
    j["version"] = m.version;
    j["source"] = config::to_string(fm.source);
    j["destination"] = config::to_string(fm.destination);
    if (m.kind == MessageKind::kQuery) {
      j["group"] = config::to_string(m.query.group);
      j["sources"] = addresses(m.query.sources);
      j["max_response_ms"] = m.query.max_response_ms;
    } else {
      json recs = json::array();
      for (const auto& r : m.records) {
        recs.push_back({{"type", record_type_name(r.type)}, {"group", config::to_string(r.group)},
                        {"sources", addresses(r.sources)}});
      }
      j["records"] = recs;
    }
    out.push_back(j);
  }
  std::cout << out.dump(1) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "encode") return encode_catalogue(argv[2]);
  if (argc == 3 && std::string(argv[1]) == "decode") return decode_capture(argv[2]);
  std::cerr << "usage: mcast_pcap_tool encode OUT.pcap | decode IN.pcap\n";
  return 2;
}
