// The control side's overlay roles on simulated time, its I/O captured
// (no DPDK): as ingress, a router per remote VTEP queried through the
// overlay whose receivers become routes' remote VTEPs; as edge, the merged
// membership of the attachments reported into the overlay, to the flood
// list until a VTEP queries, then to that VTEP only; relays to attachments
// with a multicast router; VTEPs leaving the flood list; refused frames.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "config/model.h"
#include "multicast_gw/snooping.h"

namespace meridian::mcast {
namespace {

using nlohmann::json;

IpAddress ip(const char* text) { return *config::parse_ip(text); }

const IpAddress kA = ip("10.1.0.2"), kB = ip("10.1.0.3");
const IpAddress kGroup = ip("239.1.1.1");

struct Sent {
  bool overlay;
  uint16_t port;
  IpAddress vtep;
  FrameMembership fm;
};

class OverlaySnooping : public ::testing::Test {
 protected:
  json doc(json multicast) {
    return {{"ports", {{{"name", "a1"}, {"devargs", "net_null0"}}, {{"name", "a2"}, {"devargs", "net_null1"}},
                       {{"name", "ul"}, {"devargs", "net_null2"}}}},
            {"vxlan",
             {{"vtep", {{"interfaces", {{{"port", "ul"}, {"ipv4", "10.1.0.1/24"}}}}}},
              {"bridge_domains", {{{"vni", 100},
                                   {"attachments", {{{"port", "a1"}}, {{"port", "a2"}}}},
                                   {"flood", {"10.1.0.2", "10.1.0.3"}}}}}}},
            {"multicast", {{"bridge_domains", {multicast}}}}};
  }
  void apply(json multicast) {
    auto parsed = config::parse_config(doc(std::move(multicast)));
    ASSERT_TRUE(parsed.config) << parsed.errors[0].path << ": " << parsed.errors[0].reason;
    config_ = std::move(parsed.config);
    snooping_.apply(*config_, ports_, now_);
  }
  void SetUp() override {
    snooping_.verify_incremental(true);  // every incremental rebuild checked against a whole one
    for (uint16_t i = 0; i < 3; ++i) {
      SnoopPort p;
      p.name = i == 2 ? "ul" : "a" + std::to_string(i + 1);
      p.port_id = i;
      p.mac[0] = 0x02;
      p.mac[5] = static_cast<uint8_t>(i + 1);
      ports_.push_back(p);
    }
    apply({{"vni", 100}, {"query_interval_s", 20}, {"query_response_interval_ms", 2000},
           {"last_member_query_interval_ms", 200}});
  }
  void TearDown() override { EXPECT_EQ(snooping_.incremental_mismatches(), 0u); }
  void advance(Millis ms) {
    for (Millis end = now_ + ms; now_ < end;) {
      now_ = std::min(end, now_ + 10);
      snooping_.tick(now_);
    }
  }
  std::vector<Sent> take() { return std::exchange(sent_, {}); }
  static std::vector<uint8_t> report(const char* host, RecordType t, const IpAddress& g,
                                     std::vector<IpAddress> sources = {}) {
    Sender s{{0x02, 0xaa, 0, 0, 0, 1}, ip(host)};
    return build_report_frames(s, 4, std::vector<GroupRecord>{{t, g, std::move(sources)}})[0];
  }
  const dataplane::MulticastRoute* sg_route(const char* source, const char* group) const {
    const auto* bd = snooping_.tables()->bd(100);
    dataplane::MulticastKey k;
    const IpAddress g = ip(group), src = ip(source);
    std::copy(g.bytes.begin(), g.bytes.begin() + 4, k.group.begin());
    std::copy(src.bytes.begin(), src.bytes.begin() + 4, k.source.begin());
    auto it = bd ? bd->routes.find(k) : decltype(bd->routes.end()){};
    return bd && it != bd->routes.end() ? &it->second : nullptr;
  }
  static std::vector<uint8_t> query(const char* from, uint32_t interval_s = 0) {
    Sender s{{0x02, 0xcc, 0, 0, 0, 1}, ip(from)};
    Query q;
    q.group = IpAddress::v4(std::array<uint8_t, 4>{}.data());
    q.max_response_ms = 1000;
    q.robustness = 2;
    q.interval_s = interval_s;
    return build_query_frame(s, q, 3);
  }
  const dataplane::MulticastRoute* route(const IpAddress& g) const {
    const auto* bd = snooping_.tables()->bd(100);
    if (!bd) return nullptr;
    dataplane::MulticastKey k;
    std::copy(g.bytes.begin(), g.bytes.begin() + 4, k.group.begin());
    auto it = bd->routes.find(k);
    return it == bd->routes.end() ? nullptr : &it->second;
  }

  Millis now_ = 1'000'000;
  std::vector<SnoopPort> ports_;
  std::optional<config::Config> config_;
  std::vector<Sent> sent_;
  bool overlay_up_ = true;
  Snooping snooping_{SnoopingIo{
      [this](uint16_t port, std::span<const uint8_t> f) {
        Sent s{false, port, {}, {}};
        EXPECT_EQ(decode_frame(f, s.fm), DecodeStatus::kOk);
        sent_.push_back(std::move(s));
        return true;
      },
      [](uint16_t, DecodeStatus) {},
      [this](uint32_t vni, const IpAddress& vtep, std::span<const uint8_t> f) {
        EXPECT_EQ(vni, 100u);
        Sent s{true, 0, vtep, {}};
        EXPECT_EQ(decode_frame(f, s.fm), DecodeStatus::kOk);
        sent_.push_back(std::move(s));
        return overlay_up_;
      }}};
};

std::vector<IpAddress> overlay_targets(const std::vector<Sent>& sent, MessageKind kind, uint8_t family = 4) {
  std::vector<IpAddress> out;
  for (const auto& s : sent) {
    if (s.overlay && s.fm.message.kind == kind && s.fm.message.family == family) out.push_back(s.vtep);
  }
  return out;
}

TEST_F(OverlaySnooping, IngressQueriesEachVtepAndRoutesAGroupOnlyToTheOneThatJoined) {
  // Startup general queries go to each flood-list VTEP, one per protocol.
  advance(10);
  auto sent = take();
  auto queried = overlay_targets(sent, MessageKind::kQuery);
  std::sort(queried.begin(), queried.end());
  EXPECT_EQ(queried, (std::vector<IpAddress>{kA, kB}));
  EXPECT_EQ(overlay_targets(sent, MessageKind::kQuery, 6).size(), 2u);

  ASSERT_TRUE(snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, kGroup), now_));
  EXPECT_FALSE(snooping_.handle_overlay(2, 999, kA, report("10.100.0.2", RecordType::kToExclude, kGroup), now_));
  advance(10);
  ASSERT_NE(route(kGroup), nullptr);
  EXPECT_TRUE(snooping_.tables()->bd(100)->overlay_snooped);
  EXPECT_EQ(route(kGroup)->remote_vteps, std::vector<IpAddress>{kA});
  EXPECT_TRUE(route(kGroup)->locals.empty());
  // Nothing of it went anywhere: no attachment has a multicast router, and
  // reports never go on to other VTEPs.
  for (const auto& s : take()) EXPECT_NE(s.fm.message.kind, MessageKind::kReport);

  // The leave: Q(G) to A only, twice, then the route goes after LMQT.
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToInclude, kGroup), now_);
  advance(450);
  const auto specific = overlay_targets(take(), MessageKind::kQuery);
  EXPECT_EQ(specific, (std::vector<IpAddress>{kA, kA}));
  EXPECT_EQ(route(kGroup), nullptr);
}

TEST_F(OverlaySnooping, NewProtocolSettingsKeepEveryReceiversStream) {
  advance(10);
  snooping_.handle(0, 0, report("10.100.0.9", RecordType::kToExclude, kGroup), now_);          // a local host
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, kGroup), now_);  // an edge
  advance(10);
  take();
  ASSERT_NE(route(kGroup), nullptr);
  const auto locals = route(kGroup)->locals;
  const auto remotes = route(kGroup)->remote_vteps;
  ASSERT_FALSE(locals.empty());
  ASSERT_EQ(remotes, std::vector<IpAddress>{kA});
  // Every protocol setting at once: the routes are the same, no report or
  // leave goes anywhere, and the hosts are not asked again by a burst of startup queries.
  apply({{"vni", 100}, {"query_interval_s", 30}, {"query_response_interval_ms", 3000}, {"robustness", 3},
         {"last_member_query_interval_ms", 300}, {"igmp_version", 2}, {"fast_leave", true},
         {"querier", {{"ipv4", "10.100.0.200"}}}});
  ASSERT_NE(route(kGroup), nullptr);
  EXPECT_EQ(route(kGroup)->locals, locals);
  EXPECT_EQ(route(kGroup)->remote_vteps, remotes);
  advance(10);
  for (const auto& sent : take()) {
    EXPECT_NE(sent.fm.message.kind, MessageKind::kReport);
    EXPECT_NE(sent.fm.message.kind, MessageKind::kLeave);
    EXPECT_NE(sent.fm.message.kind, MessageKind::kQuery) << "the queriers keep their schedule";
  }
  EXPECT_NE(route(kGroup), nullptr);
}

TEST_F(OverlaySnooping, EdgeReportsItsAttachmentsToTheFloodListThenOnlyToItsQuerier) {
  advance(10);
  take();
  // A host on a1 joins: the merged membership leaves at once for both VTEPs
  // (no overlay querier heard yet), the reports never to an attachment.
  ASSERT_TRUE(snooping_.handle(0, 0, report("10.100.0.9", RecordType::kToExclude, kGroup), now_));
  advance(10);
  auto sent = take();
  auto to = overlay_targets(sent, MessageKind::kReport);
  std::sort(to.begin(), to.end());
  EXPECT_EQ(to, (std::vector<IpAddress>{kA, kB}));
  for (const auto& s : sent) {
    if (s.overlay && s.fm.message.kind == MessageKind::kReport) {
      EXPECT_EQ(s.fm.message.records[0].group, kGroup);
      EXPECT_EQ(s.fm.message.records[0].type, RecordType::kToExclude);
    }
  }
  // B queries us (QQIC 60 s): its current-state answer goes to B alone, and
  // so does the next change, while B counts as present.
  auto only_b = [](const std::vector<IpAddress>& to) {
    return !to.empty() && std::all_of(to.begin(), to.end(), [](const IpAddress& v) { return v == kB; });
  };
  ASSERT_TRUE(snooping_.handle_overlay(2, 100, kB, query("10.100.0.250", 60), now_));
  advance(1100);  // the answer, and the join's retransmission
  EXPECT_TRUE(only_b(overlay_targets(take(), MessageKind::kReport)));
  snooping_.handle(1, 0, report("10.100.0.8", RecordType::kToExclude, ip("239.2.2.2")), now_);
  advance(10);
  EXPECT_EQ(overlay_targets(take(), MessageKind::kReport), (std::vector<IpAddress>{kB}));
  // The querier's presence follows its own QQIC (2 x 60 s + 0.5 s), not ours (2 x 20 s + 1 s).
  advance(50'000);
  take();
  snooping_.handle(1, 0, report("10.100.0.8", RecordType::kToExclude, ip("239.3.3.3")), now_);
  advance(10);
  EXPECT_TRUE(only_b(overlay_targets(take(), MessageKind::kReport)));
  const json q = snooping_.querier_json(now_);
  const auto edge = std::find_if(q["overlay"].begin(), q["overlay"].end(),
                                 [](const json& e) { return e.value("role", "") == "edge" && e["protocol"] == "igmp"; });
  ASSERT_NE(edge, q["overlay"].end());
  EXPECT_EQ((*edge)["queriers"], json::array({"10.1.0.3"}));
}

TEST_F(OverlaySnooping, AnUpstreamQuerierHearsTheOverlaysMergedMembershipFromOurProxy) {
  advance(10);
  take();
  // A router queries on a2 (the production side): a2 is a router port, and
  // our upstream proxy there reports what the remote edges want (RFC 4605).
  snooping_.handle(1, 0, query("10.100.0.1"), now_);
  advance(10);
  take();
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, kGroup), now_);
  EXPECT_TRUE(take().empty());  // the remote host's own report is not relayed...
  advance(10);
  auto sent = take();
  ASSERT_EQ(sent.size(), 1u);   // ...our merged one goes, out of a2 only
  EXPECT_FALSE(sent[0].overlay);
  EXPECT_EQ(sent[0].port, 1);
  EXPECT_EQ(sent[0].fm.source, ip("0.0.0.0"));
  ASSERT_EQ(sent[0].fm.message.records.size(), 1u);
  EXPECT_EQ(sent[0].fm.message.records[0].type, RecordType::kToExclude);
  EXPECT_EQ(sent[0].fm.message.records[0].group, kGroup);
  // Its next general query is answered with the current state, within its
  // 1 s Max Resp Time (the retransmission of the change may come too).
  snooping_.handle(1, 0, query("10.100.0.1"), now_);
  advance(1100);
  bool answered = false;
  for (const auto& s : take()) {
    if (!s.overlay && s.port == 1 && s.fm.message.kind == MessageKind::kReport) {
      answered |= s.fm.message.records[0].type == RecordType::kIsExclude;
    }
  }
  EXPECT_TRUE(answered);
  // The last edge leaves: after its LMQT the proxy leaves upstream.
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToInclude, kGroup), now_);
  advance(450);
  bool left = false;
  for (const auto& s : take()) {
    if (!s.overlay && s.port == 1 && s.fm.message.kind == MessageKind::kReport) {
      left |= s.fm.message.records[0].type == RecordType::kToInclude && s.fm.message.records[0].sources.empty();
    }
  }
  EXPECT_TRUE(left);
}

TEST_F(OverlaySnooping, AProxyEndsWithItsRouterWhileASnoopingSwitchKeepsQuerying) {
  advance(10);
  snooping_.handle(1, 0, query("10.100.0.1"), now_);  // a production router on a2
  advance(10);
  ASSERT_NE(snooping_.domains()[0].attachments[1]->upstream[0], nullptr);
  // The router goes quiet; a snooping switch goes on querying from 0.0.0.0.
  // Its queries keep a2 a router port, but the proxy was for the router:
  // it ends after the router's Other Querier Present Interval (2 × 20 s + 1 s).
  for (int i = 0; i < 3; ++i) {
    advance(20'000);
    snooping_.handle(1, 0, query("0.0.0.0"), now_);
  }
  advance(10);
  EXPECT_EQ(snooping_.domains()[0].attachments[1]->upstream[0], nullptr);
  EXPECT_TRUE(snooping_.domains()[0].attachments[1]->router_port_now(0, now_));
}

TEST_F(OverlaySnooping, AConfiguredUpstreamWhosePortIsNotRunningIsShownAsSuch) {
  ports_.erase(ports_.begin());  // a1's device did not start
  apply({{"vni", 100}, {"upstream", {{"port", "a1"}}}});
  const json q = snooping_.querier_json(now_);
  bool shown = false;
  for (const auto& e : q["overlay"]) {
    if (e.value("role", "") != "upstream") continue;
    EXPECT_EQ(e["port"], "a1");
    EXPECT_EQ(e["running"], false);
    shown = true;
  }
  EXPECT_TRUE(shown) << q.dump();
  ports_.insert(ports_.begin(), SnoopPort{});  // back up
  ports_.front().name = "a1";
  ports_.front().port_id = 0;
  ports_.front().mac[0] = 0x02;
  ports_.front().mac[5] = 1;
  apply({{"vni", 100}, {"upstream", {{"port", "a1"}}}});
  size_t running = 0;
  const json again = snooping_.querier_json(now_);  // (a temporary's member would not outlive the loop's start)
  for (const auto& e : again["overlay"]) {
    if (e.value("role", "") == "upstream") {
      EXPECT_EQ(e["running"], true) << e.dump();
      ++running;
    }
  }
  EXPECT_EQ(running, 2u);  // its IGMP and MLD proxies
}

TEST_F(OverlaySnooping, AConfiguredUpstreamReportsFromTheStartAndIsTheOnlyOne) {
  json domain = {{"vni", 100}, {"query_interval_s", 20}, {"query_response_interval_ms", 2000},
                 {"last_member_query_interval_ms", 200}, {"upstream", {{"port", "a1"}}}};
  apply(domain);
  auto reports_on = [](const std::vector<Sent>& sent, uint16_t port) {
    std::vector<GroupRecord> out;
    for (const auto& s : sent) {
      if (!s.overlay && s.port == port && s.fm.message.kind == MessageKind::kReport) {
        out.insert(out.end(), s.fm.message.records.begin(), s.fm.message.records.end());
      }
    }
    return out;
  };
  auto queries_on = [](const std::vector<Sent>& sent, uint16_t port) {
    return std::count_if(sent.begin(), sent.end(), [&](const Sent& s) {
      return !s.overlay && s.port == port && s.fm.message.kind == MessageKind::kQuery;
    });
  };
  advance(10);
  auto sent = take();
  EXPECT_EQ(queries_on(sent, 0), 0) << "never a query toward the production router";
  EXPECT_GT(queries_on(sent, 1), 0);
  // An edge joins: the proxy on a1 reports at once, no router query heard.
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, kGroup), now_);
  advance(10);
  auto records = reports_on(take(), 0);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].type, RecordType::kToExclude);
  EXPECT_EQ(records[0].group, kGroup);
  // a1 is a router port, heard or not (RFC 4605 §4.2). A router heard on
  // a2 makes it one too, but gets no proxy there, and its query is not
  // relayed to a1: the production router never hears a rival querier.
  EXPECT_EQ(route(kGroup)->locals, (std::vector<dataplane::BridgePort>{{0, 0}}));
  snooping_.handle(1, 0, query("10.100.0.1"), now_);
  advance(10);
  EXPECT_EQ(snooping_.domains()[0].attachments[1]->upstream[0], nullptr);
  EXPECT_EQ(route(kGroup)->locals, (std::vector<dataplane::BridgePort>{{0, 0}, {1, 0}}));
  sent = take();
  EXPECT_TRUE(reports_on(sent, 1).empty());
  EXPECT_EQ(queries_on(sent, 0), 0);
  // A snooping switch's query on a1 (from 0.0.0.0) is answered by the proxy.
  snooping_.handle(0, 0, query("0.0.0.0"), now_);
  advance(1100);
  records = reports_on(take(), 0);
  EXPECT_TRUE(std::any_of(records.begin(), records.end(), [](const GroupRecord& r) {
    return r.type == RecordType::kIsExclude && r.group == kGroup;
  }));
  // Well past any querier's timeout (A answering our queries) the proxy on
  // a1 stays, and it has withheld its queries.
  for (int i = 0; i < 2; ++i) {
    advance(30'000);
    snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kIsExclude, kGroup), now_);
  }
  ASSERT_NE(snooping_.domains()[0].attachments[0]->upstream[0], nullptr);
  EXPECT_EQ(queries_on(take(), 0), 0);
  const json q = snooping_.querier_json(now_);
  bool shown = false;
  for (const auto& e : q["overlay"]) shown |= e.value("role", "") == "upstream" && e["port"] == "a1" && e["configured"] == true;
  EXPECT_TRUE(shown) << q.dump();
  for (const auto& i : q["interfaces"]) {
    if (i["port"] == "a1" && i["protocol"] == "igmp") {
      EXPECT_GT(i["queries_withheld"].get<uint64_t>(), 0u) << i.dump();
    }
  }
  // The upstream moves to a2: a1's proxy leaves, a2's joins, the edges' memberships kept.
  domain["upstream"] = {{"port", "a2"}};
  apply(domain);
  advance(10);
  sent = take();
  records = reports_on(sent, 0);
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records[0].type, RecordType::kToInclude);
  EXPECT_TRUE(records[0].sources.empty());
  records = reports_on(sent, 1);
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records[0].type, RecordType::kToExclude);
  EXPECT_EQ(records[0].group, kGroup);
  EXPECT_EQ(snooping_.domains()[0].attachments[0]->upstream[0], nullptr);
  // A production router queries on a1 meanwhile: no proxy there while a2 is the configured one.
  snooping_.handle(0, 0, query("10.100.0.1"), now_);
  advance(10);
  EXPECT_TRUE(reports_on(take(), 0).empty());
  EXPECT_EQ(snooping_.domains()[0].attachments[0]->upstream[0], nullptr);
  // Taken out of the config where no router was heard: it leaves, it does
  // not go silently; and a1's router gets a proxy at once, not at its next query.
  domain.erase("upstream");
  apply(domain);
  advance(10);
  sent = take();
  records = reports_on(sent, 1);
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records[0].type, RecordType::kToInclude);
  EXPECT_EQ(snooping_.domains()[0].attachments[1]->upstream[0], nullptr);
  records = reports_on(sent, 0);
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records[0].type, RecordType::kToExclude);
  EXPECT_EQ(records[0].group, kGroup);
  EXPECT_NE(snooping_.domains()[0].attachments[0]->upstream[0], nullptr);
}

TEST_F(OverlaySnooping, AnUpstreamProxyOutlivesASettingsChangeAndLeavesWhenItsRoleOrDomainGoes) {
  // Our querier's address is below the router's: we win the election on a2.
  const json settings = {{"vni", 100}, {"query_interval_s", 20}, {"query_response_interval_ms", 2000},
                         {"last_member_query_interval_ms", 200}, {"querier", {{"ipv4", "10.99.0.1"}}}};
  auto proxy_reports = [&](RecordType type) {  // reports of `type` for kGroup out of a2
    size_t n = 0;
    for (const auto& s : take()) {
      if (s.overlay || s.port != 1 || s.fm.message.kind != MessageKind::kReport) continue;
      for (const auto& r : s.fm.message.records) n += r.type == type && r.group == kGroup && r.sources.empty();
    }
    return n;
  };
  auto proxying = [&] {
    const json q = snooping_.querier_json(now_);
    for (const auto& e : q["overlay"]) {
      if (e.value("role", "") == "upstream") return true;
    }
    return false;
  };
  for (const char* change : {"roles", "mode"}) {
    SCOPED_TRACE(change);
    apply(settings);
    advance(10);
    snooping_.handle(1, 0, query("10.100.0.1"), now_);
    snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, kGroup), now_);
    advance(10);
    EXPECT_EQ(proxy_reports(RecordType::kToExclude), 1u);
    if (std::string(change) == "roles") {
      // Toward the router it proxies for, our querier on a2 sends nothing,
      // and says so: its queries are counted as withheld, not sent.
      const json before = snooping_.querier_json(now_);
      advance(21'000);
      const json after = snooping_.querier_json(now_);
      auto a2_igmp = [](const json& q) {
        for (const auto& e : q["interfaces"]) {
          if (e["port"] == "a2" && e["protocol"] == "igmp") return e;
        }
        return json();
      };
      EXPECT_EQ(a2_igmp(after)["querier"], "self");
      EXPECT_EQ(a2_igmp(after)["queries_sent"], a2_igmp(before)["queries_sent"]);
      EXPECT_GT(a2_igmp(after)["queries_withheld"].get<uint64_t>(), a2_igmp(before)["queries_withheld"].get<uint64_t>());
      for (const auto& sent : take()) {  // (MLD is not proxied there: its queries go)
        EXPECT_FALSE(!sent.overlay && sent.port == 1 && sent.fm.message.kind == MessageKind::kQuery &&
                     sent.fm.message.family == 4);
      }
      snooping_.handle(1, 0, query("10.100.0.1"), now_);  // the router is still there
      snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kIsExclude, kGroup), now_);
      advance(10);
      take();
    }
    // Other protocol settings keep the memberships: the group stays routed
    // to the edge, the proxy keeps reporting it (no leave, no new join) and
    // answers the router's next query with it.
    json more_robust = settings;
    more_robust["robustness"] = 3;
    more_robust["query_interval_s"] = 30;
    apply(more_robust);
    EXPECT_TRUE(proxying());
    ASSERT_NE(route(kGroup), nullptr);
    advance(10);
    EXPECT_EQ(proxy_reports(RecordType::kToInclude), 0u);
    snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kIsExclude, kGroup), now_);
    advance(10);
    EXPECT_EQ(proxy_reports(RecordType::kToExclude), 0u);
    snooping_.handle(1, 0, query("10.100.0.1"), now_);
    advance(1100);
    EXPECT_EQ(proxy_reports(RecordType::kIsExclude), 1u);
    // The group now outlives the old group membership interval (2 × 20 s +
    // 2 s) by the new one (3 × 30 s + 2 s) without another report.
    advance(60'000);
    EXPECT_NE(route(kGroup), nullptr) << "the new timers apply to the next report";
    // No longer an ingress, or no longer snooping: it leaves at once and goes.
    json next = more_robust;
    if (std::string(change) == "roles") next["roles"] = {"edge"};
    else next["mode"] = "flood";
    apply(next);
    EXPECT_EQ(proxy_reports(RecordType::kToInclude), 1u);
    EXPECT_FALSE(proxying());
  }
}

TEST_F(OverlaySnooping, OverlayQueriesReachTheAttachmentsOnlyWhenWeDoNotQueryThem) {
  advance(10);
  take();
  snooping_.handle_overlay(2, 100, kB, query("10.100.0.250"), now_);
  EXPECT_TRUE(take().empty());
  // The remote VTEPs are still queried with the attachments' querier off.
  apply({{"vni", 100}, {"querier", {{"enabled", false}}}, {"query_interval_s", 20},
         {"query_response_interval_ms", 2000}});
  snooping_.handle_overlay(2, 100, kB, query("10.100.0.250"), now_);
  auto sent = take();
  EXPECT_EQ(std::count_if(sent.begin(), sent.end(), [](const Sent& s) { return !s.overlay; }), 2);
  advance(20'000);  // a query interval: the edges' routers kept their schedule
  EXPECT_EQ(overlay_targets(take(), MessageKind::kQuery).size(), 2u);
}

TEST_F(OverlaySnooping, AnEdgeOnlyDomainRelaysTheOverlaysReportsToRouterPorts) {
  apply({{"vni", 100}, {"roles", {"edge"}}, {"query_interval_s", 20}, {"query_response_interval_ms", 2000}});
  advance(10);
  take();
  snooping_.handle(1, 0, query("10.100.0.1"), now_);
  advance(10);
  take();
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, kGroup), now_);
  auto sent = take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].port, 1);
  EXPECT_EQ(sent[0].fm.source, ip("10.100.0.2"));  // the remote host's own report
  EXPECT_EQ(route(kGroup), nullptr);                // and no overlay state
}

TEST_F(OverlaySnooping, AVtepLeavingTheFloodListLosesItsStateAndFailedSendsAreCounted) {
  snooping_.handle_overlay(2, 100, kB, report("10.100.0.3", RecordType::kToExclude, kGroup), now_);
  advance(10);
  ASSERT_NE(route(kGroup), nullptr);
  // Only A is left on the flood list: B's state goes with it.
  auto parsed = doc({{"vni", 100}, {"query_interval_s", 20}, {"query_response_interval_ms", 2000}});
  parsed["vxlan"]["bridge_domains"][0]["flood"] = {"10.1.0.2"};
  auto c = config::parse_config(parsed);
  ASSERT_TRUE(c.config);
  snooping_.apply(*c.config, ports_, now_);
  EXPECT_EQ(route(kGroup), nullptr);
  EXPECT_EQ(snooping_.groups_json(4, 100, now_)["groups"].size(), 0u);
  // A VTEP not on the flood list is not tracked either.
  advance(10);
  snooping_.handle_overlay(2, 100, kB, report("10.100.0.3", RecordType::kToExclude, kGroup), now_);
  advance(10);
  EXPECT_EQ(route(kGroup), nullptr);
  // Sends the overlay refuses are counted in the view.
  overlay_up_ = false;
  snooping_.handle(0, 0, report("10.100.0.9", RecordType::kToExclude, kGroup), now_);
  advance(10);
  const json q = snooping_.querier_json(now_);
  const auto counts = std::find_if(q["overlay"].begin(), q["overlay"].end(),
                                   [](const json& e) { return e.contains("send_failures"); });
  ASSERT_NE(counts, q["overlay"].end());
  EXPECT_GE((*counts)["send_failures"].get<uint64_t>(), 1u);
  // A malformed frame from the overlay is refused by name and changes nothing.
  auto bad = report("10.100.0.2", RecordType::kToExclude, kGroup);
  bad.back() ^= 0xff;
  EXPECT_TRUE(snooping_.handle_overlay(2, 100, kA, bad, now_));
  EXPECT_EQ(snooping_.refused(DecodeStatus::kBadChecksum), 1u);
}

TEST_F(OverlaySnooping, StaticSubscriptionsJoinRoutesThatEdgesDoNotSignal) {
  apply({{"vni", 100},
         {"static_subscriptions",
          {{{"group", "239.5.5.5"}, {"vtep", "10.1.0.3"}},
           {{"group", "232.1.1.1"}, {"source", "10.10.0.5"}, {"port", "a2"}}}}});
  advance(10);
  ASSERT_NE(route(ip("239.5.5.5")), nullptr);
  EXPECT_EQ(route(ip("239.5.5.5"))->remote_vteps, std::vector<IpAddress>{kB});
  // An (S,G) a static (*,G) subscriber shares with a dynamic one goes to both.
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, ip("239.5.5.5")), now_);
  advance(10);
  std::vector<IpAddress> both = route(ip("239.5.5.5"))->remote_vteps;
  std::sort(both.begin(), both.end());
  EXPECT_EQ(both, (std::vector<IpAddress>{kA, kB}));
  // The (S,G) static: a route keyed by the source, to the attachment.
  const auto* bd = snooping_.tables()->bd(100);
  dataplane::MulticastKey k;
  const IpAddress g = ip("232.1.1.1"), src = ip("10.10.0.5");
  std::copy(g.bytes.begin(), g.bytes.begin() + 4, k.group.begin());
  std::copy(src.bytes.begin(), src.bytes.begin() + 4, k.source.begin());
  ASSERT_TRUE(bd->routes.count(k));
  EXPECT_EQ(bd->routes.at(k).locals, (std::vector<dataplane::BridgePort>{{1, 0}}));
  // Static routes never expire.
  advance(300'000);
  EXPECT_NE(route(ip("239.5.5.5")), nullptr);
}

TEST_F(OverlaySnooping, AJoinThatWouldExceedItsEgressBudgetIsRefusedWholeUntilBandwidthIsFreed) {
  // Flows of 3 Gbit/s in 239.1.1.0/24; VTEP A may carry 5 Gbit/s.
  apply({{"vni", 100}, {"last_member_query_interval_ms", 200},
         {"flows", {{{"group", "239.1.1.0/24"}, {"rate_kbps", 3'000'000}}}},
         {"budgets", {{{"vtep", "10.1.0.2"}, {"rate_kbps", 5'000'000}}}}});
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, ip("239.1.1.1")), now_);
  advance(10);
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, ip("239.1.1.2")), now_);
  // B has no budget: it takes both.
  snooping_.handle_overlay(2, 100, kB, report("10.100.0.3", RecordType::kToExclude, ip("239.1.1.2")), now_);
  // A group outside the declared flows is not admission-controlled.
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, ip("239.9.9.9")), now_);
  advance(10);
  EXPECT_EQ(route(ip("239.1.1.1"))->remote_vteps, std::vector<IpAddress>{kA});
  EXPECT_EQ(route(ip("239.1.1.2"))->remote_vteps, std::vector<IpAddress>{kB});  // none of it to A
  EXPECT_EQ(route(ip("239.9.9.9"))->remote_vteps, std::vector<IpAddress>{kA});
  json routes = snooping_.routes_json(now_);
  const auto refused = std::find_if(routes["routes"].begin(), routes["routes"].end(),
                                    [](const json& r) { return r["group"] == "239.1.1.2"; });
  ASSERT_NE(refused, routes["routes"].end());
  EXPECT_EQ((*refused)["rate_kbps"], 3'000'000);
  ASSERT_EQ((*refused)["denied"].size(), 1u) << routes.dump();
  EXPECT_EQ((*refused)["denied"][0]["admission"], "denied");
  EXPECT_EQ((*refused)["denied"][0]["egress"], "vtep 10.1.0.2");
  EXPECT_EQ((*refused)["denied"][0]["in_use_kbps"], 3'000'000);
  EXPECT_EQ((*refused)["denied"][0]["budget_kbps"], 5'000'000);
  EXPECT_EQ(snooping_.domains()[0].denials, 1u);
  // The older flow leaves: the refused one is admitted, counted once.
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToInclude, ip("239.1.1.1")), now_);
  advance(500);
  EXPECT_EQ(route(ip("239.1.1.1")), nullptr);
  std::vector<IpAddress> now_both = route(ip("239.1.1.2"))->remote_vteps;
  std::sort(now_both.begin(), now_both.end());
  EXPECT_EQ(now_both, (std::vector<IpAddress>{kA, kB}));
  EXPECT_FALSE(snooping_.routes_json(now_)["routes"][0].contains("denied"));
  EXPECT_EQ(snooping_.domains()[0].denials, 1u);
}

TEST_F(OverlaySnooping, ANewSourceInAnOldGroupNeverCutsARunningStream) {
  // Flows of 3 Mbit/s per source; A may carry 6.
  apply({{"vni", 100},
         {"flows", {{{"group", "239.1.1.0/24"}, {"source", "10.10.0.1"}, {"rate_kbps", 3000}},
                    {{"group", "239.1.1.0/24"}, {"source", "10.10.0.2"}, {"rate_kbps", 3000}},
                    {{"group", "239.1.1.0/24"}, {"source", "10.10.0.3"}, {"rate_kbps", 3000}}}},
         {"budgets", {{{"vtep", "10.1.0.2"}, {"rate_kbps", 6000}}}}});
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kAllow, ip("239.1.1.1"), {ip("10.10.0.1")}), now_);
  advance(100);
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kAllow, ip("239.1.1.2"), {ip("10.10.0.3")}), now_);
  advance(100);
  // The first group, older, asks for a second source: that is the newcomer.
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kAllow, ip("239.1.1.1"), {ip("10.10.0.2")}), now_);
  advance(100);
  ASSERT_NE(sg_route("10.10.0.1", "239.1.1.1"), nullptr);
  ASSERT_NE(sg_route("10.10.0.3", "239.1.1.2"), nullptr);
  ASSERT_NE(sg_route("10.10.0.2", "239.1.1.1"), nullptr);
  EXPECT_EQ(sg_route("10.10.0.1", "239.1.1.1")->remote_vteps, std::vector<IpAddress>{kA});
  EXPECT_EQ(sg_route("10.10.0.3", "239.1.1.2")->remote_vteps, std::vector<IpAddress>{kA});
  EXPECT_TRUE(sg_route("10.10.0.2", "239.1.1.1")->remote_vteps.empty());
  ASSERT_EQ(snooping_.domains()[0].denied.size(), 1u);
}

TEST_F(OverlaySnooping, AnAnySourceReceiversRefusalSpanningTheGroupsRoutesCountsOnce) {
  // B's static (S,G) gives 239.2.0.2 a route of its own next to (*,G).
  apply({{"vni", 100},
         {"last_member_query_interval_ms", 200},
         {"flows", {{{"group", "239.2.0.0/16"}, {"rate_kbps", 2000}}}},
         {"budgets", {{{"vtep", "10.1.0.2"}, {"rate_kbps", 3000}}}},
         {"static_subscriptions", {{{"group", "239.2.0.2"}, {"source", "10.10.0.9"}, {"vtep", "10.1.0.3"}}}}});
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, ip("239.2.0.1")), now_);
  advance(100);
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, ip("239.2.0.2")), now_);
  advance(100);
  // A's second group would exceed its budget: refused on both of its routes, one refusal.
  EXPECT_EQ(route(ip("239.2.0.1"))->remote_vteps, std::vector<IpAddress>{kA});
  ASSERT_NE(sg_route("10.10.0.9", "239.2.0.2"), nullptr);
  EXPECT_EQ(sg_route("10.10.0.9", "239.2.0.2")->remote_vteps, std::vector<IpAddress>{kB});
  EXPECT_TRUE(route(ip("239.2.0.2")) == nullptr || route(ip("239.2.0.2"))->remote_vteps.empty());
  EXPECT_EQ(snooping_.domains()[0].denied.size(), 2u);
  EXPECT_EQ(snooping_.domains()[0].denials, 1u);
  // The first group leaves: the second is admitted on both routes, and nothing more is counted.
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToInclude, ip("239.2.0.1")), now_);
  advance(1000);
  EXPECT_EQ(route(ip("239.2.0.1")), nullptr);
  EXPECT_EQ(route(ip("239.2.0.2"))->remote_vteps, std::vector<IpAddress>{kA});
  std::vector<IpAddress> both = sg_route("10.10.0.9", "239.2.0.2")->remote_vteps;
  std::sort(both.begin(), both.end());
  EXPECT_EQ(both, (std::vector<IpAddress>{kA, kB}));
  EXPECT_TRUE(snooping_.domains()[0].denied.empty());
  EXPECT_EQ(snooping_.domains()[0].denials, 1u);
}

TEST_F(OverlaySnooping, RefusalsOfOneGroupUnderDifferentFlowsAreTheirOwn) {
  // In 239.3.0.2 the source S is a 2 Mbit/s flow of its own, the rest of the
  // group a 1 Mbit/s one; A (any source) may carry 2.5 Mbit/s.
  apply({{"vni", 100},
         {"flows", {{{"group", "239.3.0.2"}, {"source", "10.10.0.9"}, {"rate_kbps", 2000}},
                    {{"group", "239.3.0.0/16"}, {"rate_kbps", 1000}}}},
         {"budgets", {{{"vtep", "10.1.0.2"}, {"rate_kbps", 2500}}}},
         {"static_subscriptions", {{{"group", "239.3.0.2"}, {"source", "10.10.0.9"}, {"vtep", "10.1.0.3"}}}}});
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, ip("239.3.0.1")), now_);
  advance(100);
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, ip("239.3.0.2")), now_);
  advance(100);
  // S's flow does not fit, the group's other flow does: one refusal, of S only.
  EXPECT_EQ(sg_route("10.10.0.9", "239.3.0.2")->remote_vteps, std::vector<IpAddress>{kB});
  EXPECT_EQ(route(ip("239.3.0.2"))->remote_vteps, std::vector<IpAddress>{kA});
  ASSERT_EQ(snooping_.domains()[0].denied.size(), 1u);
  EXPECT_EQ(snooping_.domains()[0].denied[0].flow, 0);
  EXPECT_EQ(snooping_.domains()[0].denials, 1u);
  // A third group of the second flow no longer fits either: a refusal of its own.
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, ip("239.3.0.3")), now_);
  advance(100);
  EXPECT_EQ(snooping_.domains()[0].denied.size(), 2u);
  EXPECT_EQ(snooping_.domains()[0].denials, 2u);
}

TEST_F(OverlaySnooping, AnAnySourceReceiverIsWeighedForEachDeclaredSourceOncePerGroup) {
  // A flow declared from 10.10.0.5 only; A (any source, twice) may carry 5 Mbit/s.
  apply({{"vni", 100},
         {"flows", {{{"group", "239.1.1.0/24"}, {"source", "10.10.0.5"}, {"rate_kbps", 3000}},
                    {{"group", "239.2.0.0/16"}, {"rate_kbps", 2000}}}},
         {"budgets", {{{"vtep", "10.1.0.2"}, {"rate_kbps", 5000}}}}});
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, ip("239.1.1.1")), now_);
  advance(100);
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, ip("239.1.1.2")), now_);
  advance(100);
  // The declared source has (S,G) routes of its own: the first fits, the second would not.
  ASSERT_NE(sg_route("10.10.0.5", "239.1.1.1"), nullptr);
  ASSERT_NE(sg_route("10.10.0.5", "239.1.1.2"), nullptr);
  EXPECT_EQ(sg_route("10.10.0.5", "239.1.1.1")->remote_vteps, std::vector<IpAddress>{kA});
  EXPECT_TRUE(sg_route("10.10.0.5", "239.1.1.2")->remote_vteps.empty());
  // (*,G) carries what no flow declares: not weighed.
  EXPECT_EQ(route(ip("239.1.1.2"))->remote_vteps, std::vector<IpAddress>{kA});
  // A source-less flow: an (S,G) route for the same group on the same egress
  // (a static subscription for B names S) costs A nothing more.
  apply({{"vni", 100},
         {"flows", {{{"group", "239.2.0.0/16"}, {"rate_kbps", 2000}}}},
         {"budgets", {{{"vtep", "10.1.0.2"}, {"rate_kbps", 5000}}}},
         {"static_subscriptions", {{{"group", "239.2.0.1"}, {"source", "10.10.0.9"}, {"vtep", "10.1.0.3"}}}}});
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, ip("239.2.0.1")), now_);
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, ip("239.2.0.2")), now_);
  advance(100);
  EXPECT_EQ(route(ip("239.2.0.1"))->remote_vteps, std::vector<IpAddress>{kA});
  EXPECT_EQ(route(ip("239.2.0.2"))->remote_vteps, std::vector<IpAddress>{kA});
  ASSERT_NE(sg_route("10.10.0.9", "239.2.0.1"), nullptr);
  std::vector<IpAddress> sg = sg_route("10.10.0.9", "239.2.0.1")->remote_vteps;
  std::sort(sg.begin(), sg.end());
  EXPECT_EQ(sg, (std::vector<IpAddress>{kA, kB}));
  EXPECT_EQ(snooping_.domains()[0].in_use_kbps.at("vtep 10.1.0.2"), 4000u);
}

TEST_F(OverlaySnooping, ListedSourcesAreSeparateStreamsAndRouterPortsAreNotBudgeted) {
  // Source-less flows of 3 Mbit/s; every egress may carry 5.
  apply({{"vni", 100}, {"flows", {{{"group", "239.1.1.0/24"}, {"rate_kbps", 3000}}}}, {"default_budget_kbps", 5000}});
  // A takes two sources of one group: two streams, the second does not fit.
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kAllow, ip("239.1.1.1"),
                                              {ip("10.10.0.1"), ip("10.10.0.2")}), now_);
  advance(10);
  ASSERT_NE(sg_route("10.10.0.1", "239.1.1.1"), nullptr);
  ASSERT_NE(sg_route("10.10.0.2", "239.1.1.1"), nullptr);
  EXPECT_EQ(sg_route("10.10.0.1", "239.1.1.1")->remote_vteps.size() + sg_route("10.10.0.2", "239.1.1.1")->remote_vteps.size(),
            1u);
  // A router queries on a2 and a host there joins two groups: a router port
  // gets every group, nothing of it is refused or counted against a budget.
  snooping_.handle(1, 0, query("10.100.0.1"), now_);
  snooping_.handle(1, 0, report("10.100.0.7", RecordType::kToExclude, ip("239.1.1.2")), now_);
  snooping_.handle(1, 0, report("10.100.0.7", RecordType::kToExclude, ip("239.1.1.3")), now_);
  advance(10);
  for (const auto& n : snooping_.domains()[0].denied) EXPECT_NE(n.egress, "a2") << n.egress;
  EXPECT_FALSE(snooping_.domains()[0].in_use_kbps.count("a2"));
  ASSERT_NE(route(ip("239.1.1.3")), nullptr);
  EXPECT_EQ(route(ip("239.1.1.3"))->locals, (std::vector<dataplane::BridgePort>{{1, 0}}));
  // Every egress carrying a declared flow shows what it uses, budgeted or not.
  EXPECT_EQ(snooping_.domains()[0].in_use_kbps.at("vtep 10.1.0.2"), 3000u);
}

TEST_F(OverlaySnooping, ASnoopingSwitchsQueryGetsNoUpstreamProxy) {
  advance(10);
  snooping_.handle(1, 0, query("0.0.0.0"), now_);
  advance(10);
  const json q = snooping_.querier_json(now_);
  for (const auto& e : q["overlay"]) EXPECT_NE(e.value("role", ""), "upstream") << e.dump();
  // A router's query does.
  snooping_.handle(1, 0, query("10.100.0.1"), now_);
  advance(10);
  const json r = snooping_.querier_json(now_);
  EXPECT_TRUE(std::any_of(r["overlay"].begin(), r["overlay"].end(),
                          [](const json& e) { return e.value("role", "") == "upstream"; }));
}

TEST_F(OverlaySnooping, StaticSubscriptionsAreReportedByBothProxies) {
  apply({{"vni", 100},
         {"static_subscriptions", {{{"group", "239.5.5.5"}, {"port", "a1"}},
                                   {{"group", "239.6.6.6"}, {"source", "10.10.0.5"}, {"vtep", "10.1.0.3"}}}}});
  advance(10);
  // Edge: the attachment's static subscription goes into the overlay.
  bool edge_reported = false;
  for (const auto& x : take()) {
    if (x.overlay && x.fm.message.kind == MessageKind::kReport) {
      edge_reported |= x.fm.message.records[0].group == ip("239.5.5.5");
    }
  }
  EXPECT_TRUE(edge_reported);
  // Ingress: a querier heard on a2 gets the VTEP's static (S,G) from our upstream proxy.
  snooping_.handle(1, 0, query("10.100.0.1"), now_);
  advance(10);
  bool upstream_reported = false;
  for (const auto& x : take()) {
    if (!x.overlay && x.port == 1 && x.fm.message.kind == MessageKind::kReport) {
      for (const auto& r : x.fm.message.records) {
        upstream_reported |= r.group == ip("239.6.6.6") && r.sources == std::vector<IpAddress>{ip("10.10.0.5")};
      }
    }
  }
  EXPECT_TRUE(upstream_reported);
}

TEST_F(OverlaySnooping, AJoinStormOf10000GroupsStaysWithinTheLimitsAndKeepsWhatWasThere) {
  // Every group a declared flow, so admission weighs each (route, egress) pair.
  apply({{"vni", 100}, {"max_groups", 1024}, {"flows", {{{"group", "239.0.0.0/8"}, {"rate_kbps", 1}}}},
         {"default_budget_kbps", 100'000}});
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, kGroup), now_);
  advance(10);
  ASSERT_NE(route(kGroup), nullptr);
  // 10,000 groups from a host on a1 and from the hosts behind B, 100 records a report.
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < 100; ++r) {
    std::vector<GroupRecord> records;
    for (int k = 0; k < 100; ++k) {
      const int n = r * 100 + k;
      const uint8_t g[4] = {239, 200, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
      records.push_back({RecordType::kToExclude, IpAddress::v4(g), {}});
    }
    Sender h{{0x02, 0xaa, 0, 0, 0, 9}, ip("10.100.0.9")};
    for (const auto& f : build_report_frames(h, 4, records)) {
      snooping_.handle(0, 0, f, now_);
      snooping_.handle_overlay(2, 100, kB, f, now_);
    }
    snooping_.flush(now_);  // as the punt poll does after each batch
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  take();
  const auto* bd = snooping_.tables()->bd(100);
  size_t on_a1 = 0, on_b = 0;
  for (const auto& [k, r] : bd->routes) {
    on_a1 += !r.locals.empty();
    on_b += std::count(r.remote_vteps.begin(), r.remote_vteps.end(), kB);
  }
  std::printf("10,000-group storm on an attachment and a VTEP: %.1f ms for 200 reports and 100 rebuilds "
              "with admission\n", ms);
  EXPECT_EQ(on_a1, 1024u);
  EXPECT_EQ(on_b, 1024u);
  // What was there before the storm still goes where it went.
  ASSERT_NE(route(kGroup), nullptr);
  EXPECT_EQ(route(kGroup)->remote_vteps, std::vector<IpAddress>{kA});
  const json q = snooping_.querier_json(now_);
  uint64_t limited = 0;
  for (const auto& e : q["interfaces"]) limited += e["ignored"]["group_limit"].get<uint64_t>();
  for (const auto& e : q["overlay"]) {
    if (e.contains("ignored")) limited += e["ignored"]["group_limit"].get<uint64_t>();
  }
  EXPECT_EQ(limited, 2u * (10'000 - 1024));
}

TEST_F(OverlaySnooping, ARouteAndEachOutgoingCountWhatTheySentInSlotsKeptAcrossRebuilds) {
  using dataplane::MulticastIngress;
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, ip("239.1.1.1")), now_);
  advance(10);
  const uint32_t in = route(ip("239.1.1.1"))->counter_slot;
  ASSERT_NE(in, dataplane::MulticastRouteCounters::kNoSlot);
  ASSERT_EQ(route(ip("239.1.1.1"))->remote_vtep_slots.size(), 1u);
  const uint32_t to_a = route(ip("239.1.1.1"))->remote_vtep_slots[0];
  auto counters = snooping_.tables()->counters;
  ASSERT_TRUE(counters);
  // A worker forwards 10 frames of 1,000 bytes from attachment a2 to A; then B joins.
  for (int i = 0; i < 10; ++i) {
    counters->count_in(0, in, 1000, MulticastIngress::attachment({1, 0}));
    counters->count_out(0, to_a, 1000);
  }
  snooping_.handle_overlay(2, 100, kB, report("10.100.0.3", RecordType::kToExclude, ip("239.1.1.1")), now_);
  advance(10);
  // A change of admission settings keeps the routers' state and the counts.
  apply({{"vni", 100}, {"query_interval_s", 20}, {"query_response_interval_ms", 2000},
         {"last_member_query_interval_ms", 200}, {"default_budget_kbps", 1'000'000}});
  const dataplane::MulticastRoute* r = route(ip("239.1.1.1"));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->counter_slot, in) << "a rebuild keeps the route's slot";
  ASSERT_EQ(r->remote_vteps.size(), 2u);
  const size_t a = r->remote_vteps[0] == kA ? 0 : 1;
  EXPECT_EQ(r->remote_vtep_slots[a], to_a);
  const uint32_t to_b = r->remote_vtep_slots[1 - a];
  for (int i = 0; i < 5; ++i) {
    counters->count_in(0, in, 1000, MulticastIngress::attachment({1, 0}));
    counters->count_out(0, to_a, 1000);
    counters->count_out(0, to_b, 1000);
  }
  counters->count_in(0, in, 1000, MulticastIngress::attachment({1, 0}));  // a frame B's copy failed for
  counters->count_out(0, to_a, 1000);
  advance(1000);  // a rate sample
  json j = snooping_.routes_json(now_)["routes"][0];
  EXPECT_EQ(j["packets"], 16) << j.dump();
  EXPECT_EQ(j["bytes"], 16'000);
  EXPECT_EQ(j["incoming"], (json{{"port", "a2"}, {"vlan", 0}}));
  ASSERT_EQ(j["outgoing"].size(), 2u) << j.dump();
  for (const auto& o : j["outgoing"]) {
    EXPECT_EQ(o["packets"], o["vtep"] == "10.1.0.2" ? 16 : 5) << o.dump();
    EXPECT_GT(o["expires_in_ms"].get<int64_t>(), 40'000) << "the group timer (GMI 42 s): " << o.dump();
  }
  // Both leave: the route goes. A route made within the grace period takes
  // fresh slots (a worker may still count into the old ones); one made after
  // it reuses them, from their counts then and with no ingress yet.
  for (const auto& v : {kA, kB}) {
    snooping_.handle_overlay(2, 100, v, report("10.100.0.2", RecordType::kToInclude, ip("239.1.1.1")), now_);
  }
  advance(1000);
  ASSERT_EQ(route(ip("239.1.1.1")), nullptr);
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, ip("239.2.2.2")), now_);
  advance(10);
  const std::set<uint32_t> old_slots{in, to_a, to_b};
  ASSERT_NE(route(ip("239.2.2.2")), nullptr);
  EXPECT_FALSE(old_slots.count(route(ip("239.2.2.2"))->counter_slot));
  EXPECT_FALSE(old_slots.count(route(ip("239.2.2.2"))->remote_vtep_slots[0]));
  advance(5000);
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, ip("239.3.3.3")), now_);
  advance(10);
  ASSERT_NE(route(ip("239.3.3.3")), nullptr);
  EXPECT_TRUE(old_slots.count(route(ip("239.3.3.3"))->counter_slot)) << "reused after its grace";
  const json reused = snooping_.routes_json(now_)["routes"];
  for (const auto& x : reused) {
    EXPECT_EQ(x["packets"], 0) << x.dump();
    EXPECT_FALSE(x.contains("incoming")) << x.dump();
    EXPECT_EQ(x["outgoing"][0]["packets"], 0) << x.dump();
  }
}

TEST_F(OverlaySnooping, AMeasuredFlowIsChargedTheHighestRateItRanAtAndWhatRunsKeepsRunning) {
  // Flows in 239.1.1.0/24 are measured (at least 1 Mbit/s); VTEP A may carry 5 Mbit/s.
  apply({{"vni", 100}, {"last_member_query_interval_ms", 200},
         {"flows", {{{"group", "239.1.1.0/24"}, {"measured", true}, {"rate_kbps", 1000}}}},
         {"budgets", {{{"vtep", "10.1.0.2"}, {"rate_kbps", 5000}}}}});
  auto by_group = [&](const char* g) {
    const json routes = snooping_.routes_json(now_)["routes"];
    for (const auto& r : routes) {
      if (r["group"] == g) return r;
    }
    return json();
  };
  auto sorted = [](std::vector<IpAddress> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  auto counters = snooping_.tables()->counters;
  // `bits` through a route's slot, then the sampling period that holds them
  // (about a second: the routes' first sample only set its start).
  auto run = [&](const char* g, int frames) {
    const uint64_t before = by_group(g).value("peak_kbps", uint64_t{0});
    for (int i = 0; i < frames; ++i) {
      counters->count_in(0, route(ip(g))->counter_slot, 1000, dataplane::MulticastIngress::attachment({0, 0}));
    }
    for (int t = 0; t < 220 && by_group(g).value("peak_kbps", uint64_t{0}) == before; ++t) advance(10);
  };
  // B (no budget) takes two groups, each running at 4 Mbit/s through the ingress.
  for (const char* g : {"239.1.1.1", "239.1.1.2"}) {
    snooping_.handle_overlay(2, 100, kB, report("10.100.0.3", RecordType::kToExclude, ip(g)), now_);
  }
  advance(2100);  // the routes' sampling has started
  run("239.1.1.1", 500);
  run("239.1.1.2", 500);
  for (const char* g : {"239.1.1.1", "239.1.1.2"}) EXPECT_NEAR(by_group(g)["peak_kbps"].get<double>(), 4000, 50);
  // A joins both: the first fits (4 of 5 Mbit/s), the second is refused whole.
  for (const char* g : {"239.1.1.1", "239.1.1.2"}) {
    snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, ip(g)), now_);
    advance(10);
  }
  EXPECT_EQ(sorted(route(ip("239.1.1.1"))->remote_vteps), (std::vector<IpAddress>{kA, kB}));
  EXPECT_EQ(route(ip("239.1.1.2"))->remote_vteps, std::vector<IpAddress>{kB});
  const json refused = by_group("239.1.1.2");
  ASSERT_EQ(refused["denied"].size(), 1u) << refused.dump();
  EXPECT_NEAR(refused["denied"][0]["rate_kbps"].get<double>(), 4000, 50);
  EXPECT_EQ(snooping_.domains()[0].denials, 1u);
  // A group not measured yet weighs its declared rate: 4 + 1 fits.
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, ip("239.1.1.3")), now_);
  advance(10);
  EXPECT_EQ(route(ip("239.1.1.3"))->remote_vteps, std::vector<IpAddress>{kA});
  // 239.1.1.1 speeds up to 4.8 Mbit/s: it is weighed again, and what runs
  // keeps running though A now carries 5.8 of its 5 Mbit/s.
  run("239.1.1.1", 600);
  advance(10);
  EXPECT_NEAR(by_group("239.1.1.1")["peak_kbps"].get<double>(), 4800, 60);
  EXPECT_EQ(sorted(route(ip("239.1.1.1"))->remote_vteps), (std::vector<IpAddress>{kA, kB}));
  EXPECT_EQ(route(ip("239.1.1.3"))->remote_vteps, std::vector<IpAddress>{kA});
  bool shown = false;
  const json budgets = snooping_.routes_json(now_)["budgets"];
  for (const auto& b : budgets) {
    if (b["egress"] == "vtep 10.1.0.2") {
      shown = true;
      EXPECT_NEAR(b["in_use_kbps"].get<double>(), 5800, 60) << b.dump();
    }
  }
  EXPECT_TRUE(shown);
  EXPECT_EQ(snooping_.domains()[0].denials, 1u);
}

TEST_F(OverlaySnooping, AnAnySourceReceiverOfAMeasuredFlowIsChargedTheGroupsTrafficOnce) {
  // A takes 239.1.1.1 from any source; B only from 10.10.0.5, so the group
  // has an (S,G) and a (*,G) route. Each source sends 2 Mbit/s.
  apply({{"vni", 100}, {"last_member_query_interval_ms", 200},
         {"flows", {{{"group", "239.1.1.0/24"}, {"measured", true}, {"rate_kbps", 100}}}},
         {"budgets", {{{"vtep", "10.1.0.2"}, {"rate_kbps", 5000}}}}});
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, ip("239.1.1.1")), now_);
  snooping_.handle_overlay(2, 100, kB, report("10.100.0.3", RecordType::kAllow, ip("239.1.1.1"), {ip("10.10.0.5")}), now_);
  advance(2100);
  auto counters = snooping_.tables()->counters;
  auto send = [&](const dataplane::MulticastRoute* r) {
    for (int i = 0; i < 250; ++i) counters->count_in(0, r->counter_slot, 1000, 0);
    advance(1010);  // a sample ends the period that holds them
  };
  // One source in one period, the other in the next: the group never ran
  // above 2 Mbit/s (a sum of the routes' own peaks would say 4).
  send(sg_route("10.10.0.5", "239.1.1.1"));
  send(route(ip("239.1.1.1")));  // from 10.10.0.6
  const auto& peaks = snooping_.domains()[0].group_peaks;
  ASSERT_EQ(peaks.size(), 1u);
  EXPECT_NEAR(static_cast<double>(peaks.begin()->second.peak_kbps), 2000, 30);
  // Both in one period: 4 Mbit/s, each frame counted once.
  for (int i = 0; i < 250; ++i) {
    counters->count_in(0, sg_route("10.10.0.5", "239.1.1.1")->counter_slot, 1000, 0);
    counters->count_in(0, route(ip("239.1.1.1"))->counter_slot, 1000, 0);
  }
  advance(1010);
  EXPECT_NEAR(static_cast<double>(peaks.begin()->second.peak_kbps), 4000, 50);
  // A joins 239.1.1.2 (not measured yet: its floor): 4 + 0.1 fits.
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, ip("239.1.1.2")), now_);
  advance(10);
  EXPECT_EQ(route(ip("239.1.1.2"))->remote_vteps, std::vector<IpAddress>{kA});
  // B leaves: the (S,G) route goes; the group's peak stays while the (*,G) route does.
  snooping_.handle_overlay(2, 100, kB, report("10.100.0.3", RecordType::kBlock, ip("239.1.1.1"), {ip("10.10.0.5")}), now_);
  advance(1000);
  EXPECT_EQ(sg_route("10.10.0.5", "239.1.1.1"), nullptr);
  ASSERT_EQ(snooping_.domains()[0].group_peaks.size(), 1u);
  EXPECT_NEAR(static_cast<double>(snooping_.domains()[0].group_peaks.begin()->second.peak_kbps), 4000, 50);
  // A leaves too: no route of the group is left, nor its peak.
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToInclude, ip("239.1.1.1")), now_);
  advance(1000);
  EXPECT_EQ(route(ip("239.1.1.1")), nullptr);
  for (const auto& [g, p] : snooping_.domains()[0].group_peaks) {
    EXPECT_NE(std::get<1>(g)[3], 1) << "239.1.1.1's peak outlived its routes";
  }
}

TEST_F(OverlaySnooping, ChangingTheFlowsDropsTheGroupPeaksKeptByFlowIndex) {
  json mc = {{"vni", 100},
             {"flows", {{{"group", "239.1.1.0/24"}, {"measured", true}, {"rate_kbps", 100}}}},
             {"budgets", {{{"vtep", "10.1.0.2"}, {"rate_kbps", 5000}}}}};
  apply(mc);
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, ip("239.1.1.1")), now_);
  advance(2100);
  for (int i = 0; i < 250; ++i) snooping_.tables()->counters->count_in(0, route(ip("239.1.1.1"))->counter_slot, 1000, 0);
  advance(1010);
  ASSERT_EQ(snooping_.domains()[0].group_peaks.size(), 1u);
  // The flows go: no peak is left under an index that no longer exists.
  mc["flows"] = json::array();
  apply(mc);
  EXPECT_TRUE(snooping_.domains()[0].group_peaks.empty());
  advance(2100);
  EXPECT_TRUE(snooping_.domains()[0].group_peaks.empty()) << "no measured flow, no peak";
  EXPECT_EQ(route(ip("239.1.1.1"))->remote_vteps, std::vector<IpAddress>{kA});
}

TEST_F(OverlaySnooping, NewcomersOfOneRebuildAreWeighedInTheOrderTheirRoutesAreListed) {
  // An any-source receiver wants a declared source's (S,G) route (4 Mbit/s)
  // and the group's (*,G) (3 Mbit/s) at once; 5 Mbit/s fit one of them: the
  // (S,G), listed first, as before the rebuilds sorted by route.
  apply({{"vni", 100},
         {"flows", {{{"group", "239.1.1.1"}, {"source", "10.10.0.5"}, {"rate_kbps", 4000}},
                    {{"group", "239.1.1.0/24"}, {"rate_kbps", 3000}}}},
         {"budgets", {{{"vtep", "10.1.0.2"}, {"rate_kbps", 5000}}}}});
  snooping_.handle_overlay(2, 100, kA, report("10.100.0.2", RecordType::kToExclude, ip("239.1.1.1")), now_);
  advance(10);
  EXPECT_EQ(sg_route("10.10.0.5", "239.1.1.1")->remote_vteps, std::vector<IpAddress>{kA});
  EXPECT_TRUE(route(ip("239.1.1.1"))->remote_vteps.empty());
}

TEST_F(OverlaySnooping, IncrementalRebuildsDecideAsWholeOnesUnderRandomChurn) {
  // Two flows that overlap (a source of its own and the rest of the
  // groups, measured: traffic counted into random routes grows charges), budgets that refuse some joins, a static subscription, local
  // and remote receivers joining, leaving and changing sources at random,
  // timers running out, and now and then a router port: after each
  // incremental rebuild, a whole one must agree (verify_incremental), and
  // the upstream proxy a router's query starts must report the whole merge.
  apply({{"vni", 100}, {"query_interval_s", 20}, {"query_response_interval_ms", 2000},
         {"last_member_query_interval_ms", 200},
         {"flows", {{{"group", "239.1.1.0/29"}, {"source", "10.10.0.1"}, {"rate_kbps", 2000}},
                    {{"group", "239.1.1.0/24"}, {"rate_kbps", 1000}, {"measured", true}}}},
         {"budgets", {{{"vtep", "10.1.0.2"}, {"rate_kbps", 4500}}, {{"port", "a1"}, {"rate_kbps", 3000}}}},
         {"static_subscriptions", {{{"group", "239.1.1.3"}, {"vtep", "10.1.0.3"}}}}});
  std::mt19937 rng(21);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const RecordType types[] = {RecordType::kToExclude, RecordType::kToInclude, RecordType::kAllow, RecordType::kBlock,
                              RecordType::kIsInclude};
  const char* sources[] = {"10.10.0.1", "10.10.0.2", "10.10.0.3"};
  size_t refusals_seen = 0, proxy_checks = 0;
  for (int step = 0; step < 600; ++step) {
    const IpAddress g = ip(("239.1.1." + std::to_string(1 + pick(10))).c_str());
    std::vector<IpAddress> srcs;
    for (int i = pick(3); i > 0; --i) srcs.push_back(ip(sources[pick(3)]));
    std::sort(srcs.begin(), srcs.end());
    srcs.erase(std::unique(srcs.begin(), srcs.end()), srcs.end());
    const RecordType t = types[pick(5)];
    switch (const int link = pick(4)) {
      case 0:
      case 1:  // a remote edge's host
        snooping_.handle_overlay(2, 100, link ? kB : kA, report(link ? "10.100.0.3" : "10.100.0.2", t, g, srcs), now_);
        break;
      default:  // a host on attachment a1 or a2
        snooping_.handle(static_cast<uint16_t>(link - 2), 0, report("10.100.0.9", t, g, srcs), now_);
    }
    if (pick(40) == 0) snooping_.handle(1, 0, query("10.100.0.1"), now_);  // a router on a2 (a whole rebuild)
    const auto& routes = snooping_.tables()->bd(100)->routes;
    if (!routes.empty()) {  // up to 10 kB of a random route's traffic
      auto it = std::next(routes.begin(), pick(static_cast<int>(routes.size())));
      if (it->second.counter_slot != dataplane::MulticastRouteCounters::kNoSlot) {
        snooping_.tables()->counters->count_in(0, it->second.counter_slot, static_cast<uint32_t>(pick(10'000)),
                                               dataplane::MulticastIngress::attachment({0, 0}));
      }
    }
    snooping_.flush(now_);
    // Its upstream proxy, updated for the changed groups only, holds the
    // merge of every edge and the other static targets.
    const SnoopedDomain& d = snooping_.domains()[0];
    if (const auto& proxy = d.attachments[1]->upstream[0]) {
      std::vector<const std::map<IpAddress, GroupState>*> links;
      for (const auto& [vtep, e] : d.edges) links.push_back(&e->igmp.groups());
      for (const auto& st : d.statics) links.push_back(&st.groups);
      ASSERT_EQ(proxy->state(), merge_interest(links, now_)) << "step " << step;
      ++proxy_checks;
    }
    advance(static_cast<Millis>(pick(4) == 0 ? 1000 + pick(3000) : pick(30)));
    refusals_seen += snooping_.domains()[0].denied.size();
  }
  EXPECT_GT(snooping_.incremental_checks(), 300u);
  EXPECT_GT(refusals_seen, 0u) << "the budgets refused nothing: admission was not exercised";
  EXPECT_GT(proxy_checks, 100u);
  EXPECT_EQ(snooping_.incremental_mismatches(), 0u);
}

}  // namespace
}  // namespace meridian::mcast
