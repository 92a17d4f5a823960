// Join and leave latency on the control lcore at scale: an ingress bridge
// domain with N remote edges (VTEPs on the flood list), each of them a
// receiver of G groups, then M joins of a new group and M fast leaves, each
// from one edge. Per operation it times what the control lcore does between
// the punted report and the table version the workers pick up: decoding and
// applying the report (Snooping::handle_overlay), rebuilding the routes and
// admission (flush), and resolving the routes' VTEPs to the overlay's slots
// with their counter slots (with_overlay_slots, as the module's contribute).
// Not included: the punt poll's wait (at most 1 ms, measured end to end in
// test_multicast.py) and the RCU publication (one worker poll round).
//
// Run: build/bench/mcast_join_bench [--edges 64] [--groups 1000] [--ops 1000] [--flows] [--upstream] [--json]
#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "config/model.h"
#include "config/section.h"
#include "multicast_gw/model.h"
#include "multicast_gw/snooping.h"
#include "vxlan/model.h"

namespace mc = meridian::mcast;
using meridian::config::IpAddress;
using nlohmann::json;

namespace {

IpAddress v4(uint32_t a) {
  const uint8_t b[4] = {static_cast<uint8_t>(a >> 24), static_cast<uint8_t>(a >> 16), static_cast<uint8_t>(a >> 8),
                        static_cast<uint8_t>(a)};
  return IpAddress::v4(b);
}
std::string text(const IpAddress& a) { return meridian::config::to_string(a); }

/// Percentiles of `v` in ms (nearest rank).
json percentiles(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {  // the smallest value with at least q of them at or below it
    const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
  };
  return {{"p50_ms", at(0.50)}, {"p99_ms", at(0.99)}, {"max_ms", v.back()}, {"count", v.size()}};
}

}  // namespace

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  unsigned edges = 64, groups = 1000, ops = 1000;
  po::options_description opts("mcast_join_bench options");
  opts.add_options()("help,h", "show this help")("edges", po::value(&edges)->default_value(64), "remote edge VTEPs (1..4096)")(
      "groups", po::value(&groups)->default_value(1000), "groups every edge has joined (1..60000)")(
      "ops", po::value(&ops)->default_value(1000), "joins timed, then as many fast leaves")(
      "flows", "declare every group a 1 Mbit/s flow, under a budget per edge that admits them all (admission weighs each membership)")(
      "upstream", "a production router queries on the access attachment: the upstream proxy reports the edges' merged membership to it")(
      "json", "print one JSON object");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mcast_join_bench: %s\n", e.what());
    return 2;
  }
  if (vm.count("help")) {
    std::printf("%s", [&] { std::ostringstream o; o << opts; return o.str(); }().c_str());
    return 0;
  }
  if (edges < 1 || edges > 4096 || groups < 1 || groups > 60000 || ops < 1 || ops > 60000) {
    std::fprintf(stderr, "mcast_join_bench: --edges 1..4096, --groups 1..60000, --ops 1..60000\n");
    return 2;
  }

  meridian::config::register_section(meridian::config::vxlan_section_spec());
  meridian::config::register_section(meridian::config::multicast_section_spec());
  // The ingress: one attachment, the underlay, N edges on the flood list;
  // fast leave with explicit tracking, limits above what the run joins.
  std::vector<IpAddress> vteps;
  json flood = json::array();
  for (unsigned e = 0; e < edges; ++e) {
    vteps.push_back(v4(0x0a010100 + 10 + e));  // 10.1.1.10 + e (past .255 into 10.1.2.x)
    flood.push_back(text(vteps.back()));
  }
  const bool flows = vm.count("flows") > 0;
  json domain = {{"vni", 100}, {"fast_leave", true}, {"max_groups", groups + (ops + edges - 1) / edges + 16}};
  if (flows) {
    domain["flows"] = {{{"group", "239.0.0.0/8"}, {"rate_kbps", 1000}}};
    domain["default_budget_kbps"] = uint64_t{groups + ops} * 1000;
  }
  const json doc = {
      {"ports", {{{"name", "access"}, {"devargs", "net_null0"}}, {{"name", "underlay"}, {"devargs", "net_null1"}}}},
      {"vxlan",
       {{"vtep", {{"interfaces", {{{"port", "underlay"}, {"ipv4", "10.1.0.1/16"}}}}}},
        {"bridge_domains", {{{"vni", 100}, {"attachments", {{{"port", "access"}}}}, {"flood", flood}}}}}},
      {"multicast", {{"bridge_domains", {domain}}}}};
  auto parsed = meridian::config::parse_config(doc);
  if (!parsed.config) {
    std::fprintf(stderr, "mcast_join_bench: config: %s: %s\n", parsed.errors[0].path.c_str(),
                 parsed.errors[0].reason.c_str());
    return 1;
  }
  size_t upstream_reports = 0;  // reports out of the access attachment: the proxy's
  mc::Snooping snooping(mc::SnoopingIo{[&](uint16_t port, std::span<const uint8_t> frame) {
                                         mc::FrameMembership fm;
                                         upstream_reports += port == 0 && mc::decode_frame(frame, fm) == mc::DecodeStatus::kOk &&
                                                             fm.message.kind == mc::MessageKind::kReport;
                                         return true;
                                       },
                                       [](uint16_t, mc::DecodeStatus) {},
                                       [](uint32_t, const IpAddress&, std::span<const uint8_t>) { return true; }});
  std::vector<mc::SnoopPort> ports(2);
  ports[0].name = "access";
  ports[1].name = "underlay";
  ports[1].port_id = 1;
  mc::Millis now = 1'000'000;
  snooping.apply(*parsed.config, ports, now);
  // The overlay module's VTEP slots, as its lookup would give them.
  std::map<IpAddress, uint16_t> slot_of;
  for (unsigned e = 0; e < edges; ++e) slot_of[vteps[e]] = static_cast<uint16_t>(e);
  meridian::dataplane::OverlayVtepSlots slots{1, [&](const IpAddress& a) {
                                                auto it = slot_of.find(a);
                                                return it == slot_of.end() ? meridian::dataplane::OverlayVtepSlots::kNone
                                                                           : it->second;
                                              }};
  // Each edge's proxy host reports from its own address behind the VTEP.
  auto report = [&](unsigned e, mc::RecordType type, const std::vector<IpAddress>& gs) {
    mc::Sender from{{0x02, 0xee, 0, 0, static_cast<uint8_t>(e >> 8), static_cast<uint8_t>(e)}, v4(0x0a640000 + 1 + e)};
    std::vector<mc::GroupRecord> records;
    for (const auto& g : gs) records.push_back({type, g, {}});
    return mc::build_report_frames(from, 4, records);
  };
  auto handle = [&](unsigned e, const std::vector<std::vector<uint8_t>>& frames) {
    for (const auto& f : frames) snooping.handle_overlay(1, 100, vteps[e], f, now);
  };

  const bool upstream = vm.count("upstream") > 0;
  if (upstream) {  // the production router's general query, from 10.0.0.254 on the access attachment
    mc::Query q;
    q.group = IpAddress::v4(std::array<uint8_t, 4>{}.data());
    q.max_response_ms = 10000;
    q.robustness = 2;
    q.interval_s = 125;
    snooping.handle(0, 0, mc::build_query_frame(mc::Sender{{0x02, 0xcc, 0, 0, 0, 1}, v4(0x0a0000fe)}, q, 3), now);
    if (!snooping.domains()[0].attachments[0]->upstream[0]) {
      std::fprintf(stderr, "mcast_join_bench: the router's query made no upstream proxy\n");
      return 1;
    }
  }
  // Every edge joins the same G groups (239.1.0.0 + i); one rebuild.
  std::vector<IpAddress> base;
  for (unsigned i = 0; i < groups; ++i) base.push_back(v4(0xef010000 + i));
  for (unsigned e = 0; e < edges; ++e) handle(e, report(e, mc::RecordType::kToExclude, base));
  now += 10;
  snooping.flush(now);
  size_t routes = snooping.tables()->bd(100)->routes.size();
  if (routes != groups) {
    std::fprintf(stderr, "mcast_join_bench: %zu routes after the preload, expected %u\n", routes, groups);
    return 1;
  }

  using clock = std::chrono::steady_clock;
  // Per operation: the whole, and its part resolving VTEP slots (the rest
  // is the report and the rebuild).
  std::vector<double> resolve;
  auto ms = [](clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
  auto timed = [&](unsigned e, const std::vector<std::vector<uint8_t>>& frames, std::vector<double>& out) {
    const auto t0 = clock::now();
    handle(e, frames);
    snooping.flush(now);
    const auto t1 = clock::now();
    auto published = mc::with_overlay_slots(*snooping.tables(), &slots);
    const auto t2 = clock::now();
    out.push_back(ms(t2 - t0));
    resolve.push_back(ms(t2 - t1));
    now += 1;
    return published;
  };
  // M joins of a new group (239.2.0.0 + k), each from edge k mod N; then
  // each of them leaves again (its only host: fast leave removes it at once).
  std::vector<double> joins, leaves;
  std::vector<IpAddress> fresh;
  for (unsigned k = 0; k < ops; ++k) fresh.push_back(v4(0xef020000 + k));
  for (unsigned k = 0; k < ops; ++k) {
    auto t = timed(k % edges, report(k % edges, mc::RecordType::kToExclude, {fresh[k]}), joins);
    const auto* r = t->bd(100)->lookup(4, std::array<uint8_t, 4>{}.data(), fresh[k].bytes.data());
    if (!r || r->remote_vteps != std::vector<IpAddress>{vteps[k % edges]} || r->remotes.size() != 1 ||
        r->remotes[0] != k % edges || r->remote_slots.size() != 1) {
      std::fprintf(stderr, "mcast_join_bench: join %u did not route the group to its edge alone\n", k);
      return 1;
    }
  }
  for (unsigned k = 0; k < ops; ++k) {
    auto t = timed(k % edges, report(k % edges, mc::RecordType::kToInclude, {fresh[k]}), leaves);
    if (t->bd(100)->lookup(4, std::array<uint8_t, 4>{}.data(), fresh[k].bytes.data())) {
      std::fprintf(stderr, "mcast_join_bench: fast leave %u left its route\n", k);
      return 1;
    }
  }
  if (upstream && upstream_reports < 2 * size_t{ops}) {  // a join and a leave each changed the merged membership
    std::fprintf(stderr, "mcast_join_bench: the upstream proxy sent %zu reports for %u joins and leaves\n",
                 upstream_reports, 2 * ops);
    return 1;
  }
  routes = snooping.tables()->bd(100)->routes.size();
  for (const auto& [key, r] : snooping.tables()->bd(100)->routes) {  // the preloaded groups kept every edge
    if (r.remote_vteps.size() != edges) {
      std::fprintf(stderr, "mcast_join_bench: a preloaded group lost edges (%zu of %u)\n", r.remote_vteps.size(), edges);
      return 1;
    }
  }
  const json out = {{"edges", edges}, {"groups", groups}, {"memberships", uint64_t{edges} * groups}, {"flows", flows},
                    {"upstream", upstream}, {"routes", routes}, {"join", percentiles(joins)}, {"fast_leave", percentiles(leaves)},
                    {"resolve_slots", percentiles(resolve)}};
  if (vm.count("json")) {
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("%u edges x %u groups (%llu memberships)%s%s, %u joins and fast leaves of one edge each\n", edges,
                groups, static_cast<unsigned long long>(uint64_t{edges} * groups),
                flows ? ", every group a declared flow" : "", upstream ? ", an upstream proxy" : "", ops);
    for (const char* what : {"join", "fast_leave", "resolve_slots"}) {
      const json& p = out[what];
      std::printf("  %-13s p50 %.3f ms  p99 %.3f ms  max %.3f ms\n", what, p["p50_ms"].get<double>(),
                  p["p99_ms"].get<double>(), p["max_ms"].get<double>());
    }
  }
  return 0;
}
