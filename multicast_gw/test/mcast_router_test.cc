// The router side of IGMPv3/MLDv2 on simulated time: every row of RFC 3376
// §6.4.1 and §6.4.2 (table-driven), the §6.5 mode switch, specific-query
// retransmission, compatibility with older hosts (§7.3.2), the querier
// election (§6.6.2), SSM (RFC 4604), limits and fast leave.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <set>
#include <string>

#include "multicast_gw/router.h"

using namespace meridian;
using namespace meridian::mcast;

namespace {

IpAddress ip(const std::string& text) { return *config::parse_ip(text); }
const IpAddress G = ip("239.1.1.1");
IpAddress src(char name) { return ip(std::string("10.10.0.") + std::to_string(name - 'a' + 1)); }
std::vector<IpAddress> srcs(const std::string& names) {
  std::vector<IpAddress> out;
  for (char c : names) out.push_back(src(c));
  return out;
}

Membership report(RecordType t, const std::string& sources, const IpAddress& group = G) {
  Membership m;
  m.family = 4;
  m.kind = MessageKind::kReport;
  m.version = 3;
  m.records.push_back({t, group, srcs(sources)});
  return m;
}
Membership older(MessageKind kind, uint8_t version, const IpAddress& group = G) {
  Membership m;
  m.family = 4;
  m.kind = kind;
  m.version = version;
  m.records.push_back({kind == MessageKind::kLeave ? RecordType::kToInclude : RecordType::kIsExclude, group, {}});
  return m;
}
Membership query_from(const IpAddress& group, const std::string& sources, bool s_flag = false) {
  Membership m;
  m.family = 4;
  m.kind = MessageKind::kQuery;
  m.version = 3;
  m.query.group = group;
  m.query.sources = srcs(sources);
  m.query.suppress_router_side = s_flag;
  m.query.max_response_ms = 1000;
  return m;
}

RouterConfig querier_config() {
  RouterConfig c;
  c.address = ip("10.0.0.1");
  return c;
}

const IpAddress kHost1 = ip("10.0.0.11"), kHost2 = ip("10.0.0.12");

/// Sources of a group by state: running timers (INCLUDE's A, EXCLUDE's X) and stopped (Y).
std::string running(const MembershipRouter& r, Millis now) {
  std::string out;
  const GroupState* gs = r.group(G);
  if (!gs) return "-";
  for (const auto& [s, rec] : gs->sources) {
    if (rec.expires > now) out += static_cast<char>('a' + s.bytes[3] - 1);
  }
  return out;
}
std::string stopped(const MembershipRouter& r, Millis now) {
  std::string out;
  const GroupState* gs = r.group(G);
  if (!gs) return "-";
  for (const auto& [s, rec] : gs->sources) {
    if (rec.expires <= now) out += static_cast<char>('a' + s.bytes[3] - 1);
  }
  return out;
}
Millis timer(const MembershipRouter& r, char s) { return r.group(G)->sources.at(src(s)).expires; }

struct Row {
  const char* name;
  bool exclude_before;     // INCLUDE(A = ab) or EXCLUDE(X = ad, Y = be)
  RecordType type;         // with B = abc (EXCLUDE) / bc (INCLUDE)
  FilterMode mode_after;
  const char* x_after;     // running sources after
  const char* y_after;     // stopped sources after
  const char* gmi_sources; // sources set to GMI by the record
  const char* queried;     // Q(G, ...) sources (lowered to LMQT)
  bool query_group;        // Q(G)
  bool group_timer_gmi;    // Group Timer = GMI
};

// Setup at t = 0 (GMI lands at 260 s), record at t = 1 s (GMI at 261 s,
// LMQT at 3 s). EXCLUDE(X, Y) setup: IS_EX(be) then IS_IN(ad).
const Row kRows[] = {
    // §6.4.1 current-state records
    {"INCLUDE IS_IN: INCLUDE(A+B), (B)=GMI", false, RecordType::kIsInclude, FilterMode::kInclude, "abc", "", "bc", "", false, false},
    {"INCLUDE IS_EX: EXCLUDE(A*B,B-A), (B-A)=0, Delete(A-B), GT=GMI", false, RecordType::kIsExclude, FilterMode::kExclude, "b", "c", "", "", false, true},
    {"EXCLUDE IS_IN: EXCLUDE(X+A,Y-A), (A)=GMI", true, RecordType::kIsInclude, FilterMode::kExclude, "abcd", "e", "abc", "", false, false},
    {"EXCLUDE IS_EX: EXCLUDE(A-Y,Y*A), (A-X-Y)=GMI, Delete(X-A), Delete(Y-A), GT=GMI", true, RecordType::kIsExclude, FilterMode::kExclude, "ac", "b", "c", "", false, true},
    // §6.4.2 state-change records
    {"INCLUDE ALLOW: INCLUDE(A+B), (B)=GMI", false, RecordType::kAllow, FilterMode::kInclude, "abc", "", "bc", "", false, false},
    {"INCLUDE BLOCK: INCLUDE(A), Q(G,A*B)", false, RecordType::kBlock, FilterMode::kInclude, "ab", "", "", "b", false, false},
    {"INCLUDE TO_EX: EXCLUDE(A*B,B-A), (B-A)=0, Delete(A-B), Q(G,A*B), GT=GMI", false, RecordType::kToExclude, FilterMode::kExclude, "b", "c", "", "b", false, true},
    {"INCLUDE TO_IN: INCLUDE(A+B), (B)=GMI, Q(G,A-B)", false, RecordType::kToInclude, FilterMode::kInclude, "abc", "", "bc", "a", false, false},
    {"EXCLUDE ALLOW: EXCLUDE(X+A,Y-A), (A)=GMI", true, RecordType::kAllow, FilterMode::kExclude, "abcd", "e", "abc", "", false, false},
    {"EXCLUDE BLOCK: EXCLUDE(X+(A-Y),Y), (A-X-Y)=GT, Q(G,A-Y)", true, RecordType::kBlock, FilterMode::kExclude, "acd", "be", "", "ac", false, false},
    {"EXCLUDE TO_EX: EXCLUDE(A-Y,Y*A), (A-X-Y)=GT, Delete(X-A), Delete(Y-A), Q(G,A-Y), GT=GMI", true, RecordType::kToExclude, FilterMode::kExclude, "ac", "b", "", "ac", false, true},
    {"EXCLUDE TO_IN: EXCLUDE(X+A,Y-A), (A)=GMI, Q(G,X-A), Q(G)", true, RecordType::kToInclude, FilterMode::kExclude, "abcd", "e", "abc", "d", true, false},
};

// Run once as the querier (queried sources and Q(G)'s group timer drop to
// LMQT, the queries go out) and once as a non-querier (nothing is sent and
// nothing lowered: what the table itself set shows, e.g. (A-X-Y)=GT).
TEST(McastRouter, EveryRowOfTheStateTables) {
  const Millis t1 = 1000, gmi0 = 260'000, gmi1 = t1 + 260'000, lmqt = t1 + 2000;
  for (const bool querier : {true, false}) {
    for (const Row& row : kRows) {
      SCOPED_TRACE(std::string(row.name) + (querier ? " (querier)" : " (non-querier)"));
      RouterConfig c = querier_config();
      c.querier = querier;
      MembershipRouter r(c, 0);
      RouterOutput out;
      r.tick(0, out);  // the startup general query
      if (row.exclude_before) {
        r.on_membership(report(RecordType::kIsExclude, "be"), kHost1, 0, out);
        r.on_membership(report(RecordType::kIsInclude, "ad"), kHost1, 0, out);
        ASSERT_EQ(running(r, 0), "ad");
        ASSERT_EQ(stopped(r, 0), "be");
        ASSERT_EQ(r.group(G)->group_timer, gmi0);
      } else {
        r.on_membership(report(RecordType::kIsInclude, "ab"), kHost1, 0, out);
        ASSERT_EQ(r.group(G)->mode, FilterMode::kInclude);
      }
      RouterOutput after;
      r.on_membership(report(row.type, row.exclude_before ? "abc" : "bc"), kHost2, t1, after);
      ASSERT_TRUE(r.group(G));
      EXPECT_EQ(r.group(G)->mode, row.mode_after);
      EXPECT_EQ(running(r, t1), row.x_after);
      EXPECT_EQ(stopped(r, t1), row.y_after);
      for (const char* s = row.gmi_sources; *s; ++s) EXPECT_EQ(timer(r, *s), gmi1) << "source " << *s;
      for (const char* s = row.queried; *s; ++s) {
        EXPECT_EQ(timer(r, *s), querier ? lmqt : gmi0) << "queried source " << *s;
      }
      // Sources neither refreshed nor queried keep their timers (set at t = 0,
      // or the group timer for (A-X-Y)=GT, which is GMI at t = 0 too).
      for (const char* s = row.x_after; *s; ++s) {
        if (!std::strchr(row.gmi_sources, *s) && !std::strchr(row.queried, *s)) {
          EXPECT_EQ(timer(r, *s), gmi0) << *s;
        }
      }
      if (row.mode_after == FilterMode::kExclude) {
        EXPECT_EQ(r.group(G)->group_timer, row.group_timer_gmi ? gmi1 : row.query_group && querier ? lmqt : gmi0);
      }
      // The querier's queries go out at once, S clear (every queried timer is at LMQT).
      std::set<IpAddress> asked;
      bool asked_group = false;
      for (const auto& q : after.queries) {
        EXPECT_EQ(q.group, G);
        EXPECT_FALSE(q.suppress_router_side);
        EXPECT_EQ(q.max_response_ms, 1000u);
        if (q.sources.empty()) asked_group = true;
        asked.insert(q.sources.begin(), q.sources.end());
      }
      EXPECT_EQ(asked_group, querier && row.query_group);
      const auto want = querier ? srcs(row.queried) : std::vector<IpAddress>{};
      EXPECT_EQ(asked, std::set<IpAddress>(want.begin(), want.end()));
      EXPECT_EQ(after.changed, std::vector<IpAddress>{G});
    }
  }
}

TEST(McastRouter, ForwardingFollowsTheFilterMode) {
  MembershipRouter r(querier_config(), 0);
  RouterOutput out;
  r.on_membership(report(RecordType::kIsInclude, "a"), kHost1, 0, out);
  EXPECT_TRUE(r.group(G)->wants(src('a'), 0));
  EXPECT_FALSE(r.group(G)->wants(src('b'), 0));
  r.on_membership(report(RecordType::kIsExclude, "b"), kHost2, 0, out);
  EXPECT_TRUE(r.group(G)->wants(src('a'), 0));
  EXPECT_FALSE(r.group(G)->wants(src('b'), 0)) << "excluded by every host (Y)";
  EXPECT_TRUE(r.group(G)->wants(src('z'), 0)) << "any other source";
}

TEST(McastRouter, GroupTimerEndsExcludeModeAndSourceTimersEndTheGroup) {
  RouterConfig c = querier_config();
  c.querier = false;
  MembershipRouter r(c, 0);
  RouterOutput out;
  r.on_membership(report(RecordType::kIsExclude, ""), kHost1, 0, out);
  r.on_membership(report(RecordType::kIsInclude, "a"), kHost2, 100'000, out);
  // GT runs out at 260 s: INCLUDE with the source still running (until 360 s).
  RouterOutput at_gt;
  r.tick(260'000, at_gt);
  ASSERT_TRUE(r.group(G));
  EXPECT_EQ(r.group(G)->mode, FilterMode::kInclude);
  EXPECT_EQ(at_gt.changed, std::vector<IpAddress>{G});
  EXPECT_EQ(r.next_deadline(), 360'000);
  RouterOutput at_source;
  r.tick(360'000, at_source);
  EXPECT_FALSE(r.group(G));
  EXPECT_EQ(at_source.changed, std::vector<IpAddress>{G});
}

TEST(McastRouter, SpecificQueriesRetransmitAndARefreshSetsTheSFlag) {
  MembershipRouter r(querier_config(), 0);
  RouterOutput out;
  r.tick(0, out);
  r.on_membership(older(MessageKind::kJoin, 2), kHost1, 0, out);
  r.on_membership(older(MessageKind::kJoin, 2), kHost2, 0, out);
  // Host 1 leaves: Q(G) now and once more after LMQI (LMQC = 2).
  RouterOutput leave;
  r.on_membership(older(MessageKind::kLeave, 2), kHost1, 10'000, leave);
  ASSERT_EQ(leave.queries.size(), 1u);
  EXPECT_EQ(leave.queries[0].group, G);
  EXPECT_FALSE(leave.queries[0].suppress_router_side);
  EXPECT_EQ(r.group(G)->group_timer, 12'000);
  // Host 2 answers: the group timer is back at GMI, so the retransmission
  // carries S (other routers must not lower their timers).
  r.on_membership(older(MessageKind::kJoin, 2), kHost2, 10'500, out);
  RouterOutput again;
  r.tick(11'000, again);
  ASSERT_EQ(again.queries.size(), 1u);
  EXPECT_TRUE(again.queries[0].suppress_router_side);
  RouterOutput none;
  r.tick(12'000, none);
  EXPECT_TRUE(none.queries.empty()) << "LMQC sent, no more";
  EXPECT_TRUE(r.group(G));

  // Host 2 leaves too, nobody answers: the group ends at LMQT.
  RouterOutput last;
  r.on_membership(older(MessageKind::kLeave, 2), kHost2, 20'000, last);
  EXPECT_EQ(last.queries.size(), 1u);
  r.tick(21'000, last);
  EXPECT_TRUE(r.group(G));
  RouterOutput gone;
  r.tick(22'000, gone);
  EXPECT_FALSE(r.group(G));
  EXPECT_EQ(gone.changed, std::vector<IpAddress>{G});
}

TEST(McastRouter, OlderHostsSwitchTheGroupsCompatibilityMode) {
  MembershipRouter r(querier_config(), 0);
  RouterOutput out;
  // An IGMPv2 host joins: EXCLUDE({}); its presence makes BLOCK ignored and
  // TO_EX(x) into TO_EX({}).
  r.on_membership(older(MessageKind::kJoin, 2), kHost1, 0, out);
  EXPECT_EQ(r.group(G)->compatibility(0, 4, 3), 2);
  r.on_membership(report(RecordType::kBlock, "a"), kHost2, 1000, out);
  EXPECT_EQ(r.counters().ignored[static_cast<size_t>(Ignore::kCompatibility)], 1u);
  r.on_membership(report(RecordType::kToExclude, "a"), kHost2, 1000, out);
  EXPECT_EQ(stopped(r, 1000), "") << "TO_EX(a) read as TO_EX({})";
  // An IGMPv1 host: leaves are ignored (v2 leave and v3 TO_IN alike).
  r.on_membership(older(MessageKind::kJoin, 1), kHost2, 2000, out);
  EXPECT_EQ(r.group(G)->compatibility(2000, 4, 3), 1);
  RouterOutput leave;
  r.on_membership(older(MessageKind::kLeave, 2), kHost1, 3000, leave);
  EXPECT_TRUE(leave.queries.empty());
  EXPECT_EQ(r.counters().ignored[static_cast<size_t>(Ignore::kCompatibility)], 2u);
  // Older Host Present Interval (260 s) later, without older reports: v3
  // again, and BLOCK counts.
  const Millis later = 2000 + 260'000;
  EXPECT_EQ(r.group(G)->compatibility(later, 4, 3), 3);
  r.on_membership(report(RecordType::kIsExclude, ""), kHost2, later, out);
  RouterOutput block;
  r.on_membership(report(RecordType::kBlock, "a"), kHost2, later, block);
  EXPECT_EQ(r.counters().ignored[static_cast<size_t>(Ignore::kCompatibility)], 2u);
  EXPECT_EQ(running(r, later), "a") << "EXCLUDE BLOCK: (A-X-Y)=GT, then queried";
  EXPECT_EQ(block.queries.size(), 1u);

  // MLDv1 hosts: TO_EX(x) -> TO_EX({}), leaves honoured (MLDv1 has Done).
  RouterConfig c6;
  c6.family = 6;
  c6.address = ip("fe80::1");
  MembershipRouter r6(c6, 0);
  const IpAddress g6 = ip("ff0e::1");
  Membership join;
  join.family = 6;
  join.kind = MessageKind::kJoin;
  join.version = 1;
  join.records.push_back({RecordType::kIsExclude, g6, {}});
  r6.on_membership(join, ip("fe80::11"), 0, out);
  EXPECT_EQ(r6.group(g6)->compatibility(0, 6, 2), 1);
  Membership done = join;
  done.kind = MessageKind::kLeave;
  done.records[0].type = RecordType::kToInclude;
  RouterOutput q6;
  r6.on_membership(done, ip("fe80::11"), 1000, q6);
  ASSERT_EQ(q6.queries.size(), 1u) << "MLDv1 Done queries the group";
  EXPECT_EQ(q6.queries[0].group, g6);
}

TEST(McastRouter, QuerierElectionYieldsToALowerAddressAndTakesOverWhenItGoesQuiet) {
  MembershipRouter r(querier_config(), 0);
  RouterOutput out;
  // Startup: robustness (2) queries a quarter interval apart, then every 125 s.
  r.tick(0, out);
  EXPECT_EQ(out.queries.size(), 1u);
  EXPECT_TRUE(out.queries[0].general());
  EXPECT_EQ(out.queries[0].interval_s, 125u);
  EXPECT_EQ(r.next_deadline(), 31'250);
  r.tick(31'250, out);
  EXPECT_EQ(out.queries.size(), 2u);
  EXPECT_EQ(r.next_deadline(), 31'250 + 125'000);
  // A higher address and 0.0.0.0 do not win.
  r.on_query(query_from(ip("0.0.0.0"), ""), ip("10.0.0.9"), 40'000, out);
  r.on_query(query_from(ip("0.0.0.0"), ""), ip("0.0.0.0"), 40'000, out);
  EXPECT_TRUE(r.is_querier());
  // A lower one does; its QRV and QQIC are adopted.
  Membership q = query_from(ip("0.0.0.0"), "");
  q.query.robustness = 3;
  q.query.interval_s = 60;
  r.on_query(q, ip("10.0.0.0"), 50'000, out);
  EXPECT_FALSE(r.is_querier());
  EXPECT_EQ(r.other_querier(), ip("10.0.0.0"));
  EXPECT_EQ(r.timers().robustness, 3);
  // Other Querier Present Interval = 3 * 60 s + 5 s.
  EXPECT_EQ(r.other_querier_expires(), 50'000 + 185'000);
  RouterOutput quiet;
  r.tick(200'000, quiet);
  EXPECT_TRUE(quiet.queries.empty());
  r.tick(235'000, quiet);
  EXPECT_TRUE(r.is_querier());
  ASSERT_EQ(quiet.queries.size(), 1u);
  EXPECT_TRUE(quiet.queries[0].general());
  EXPECT_EQ(r.timers().robustness, 2) << "our own variables again";
}

TEST(McastRouter, ANonQuerierLowersItsTimersOnTheQueriersSpecificQuery) {
  RouterConfig c = querier_config();
  c.querier = false;  // snooping only
  MembershipRouter r(c, 0);
  RouterOutput out;
  r.tick(0, out);
  EXPECT_TRUE(out.queries.empty());
  r.on_membership(report(RecordType::kIsExclude, ""), kHost1, 0, out);
  r.on_membership(report(RecordType::kIsInclude, "a"), kHost1, 0, out);
  RouterOutput leave;
  r.on_membership(report(RecordType::kToInclude, ""), kHost1, 1000, leave);
  EXPECT_TRUE(leave.queries.empty()) << "only the querier sends";
  EXPECT_EQ(r.group(G)->group_timer, 260'000);
  r.on_query(query_from(G, "", true), ip("10.0.0.2"), 1100, out);
  EXPECT_EQ(r.group(G)->group_timer, 260'000) << "S set: no change";
  r.on_query(query_from(G, ""), ip("10.0.0.2"), 1100, out);
  EXPECT_EQ(r.group(G)->group_timer, 3100);
  r.on_query(query_from(G, "a"), ip("10.0.0.2"), 1100, out);
  EXPECT_EQ(timer(r, 'a'), 3100);
}

TEST(McastRouter, NewSettingsKeepTheMembershipsAndApplyFromNowOn) {
  MembershipRouter r(querier_config(), 0);
  RouterOutput out;
  r.tick(0, out);
  r.on_membership(report(RecordType::kIsExclude, "a"), kHost1, 1000, out);  // EXCLUDE {a}: (*,G)
  r.on_membership(report(RecordType::kIsInclude, "b"), kHost1, 1000, out);
  ASSERT_TRUE(r.group(G));
  const Millis group_timer = r.group(G)->group_timer;
  EXPECT_EQ(group_timer, 1000 + 260'000);

  // A shorter interval and another robustness: the state stays, its running
  // timers keep their deadlines, the next general query comes sooner, and
  // the next report sets the new group membership interval (3 × 20 s + 10 s).
  RouterConfig c = querier_config();
  c.timers.robustness = 3;
  c.timers.query_interval_ms = 20'000;
  RouterOutput changed;
  r.reconfigure(c, 2000, changed);
  EXPECT_TRUE(changed.changed.empty());
  ASSERT_TRUE(r.group(G));
  EXPECT_EQ(r.group(G)->group_timer, group_timer);
  EXPECT_TRUE(r.is_querier());
  r.on_membership(report(RecordType::kIsExclude, "a"), kHost1, 3000, out);
  EXPECT_EQ(r.group(G)->group_timer, 3000 + 70'000);
  RouterOutput general;
  r.tick(6999, general);
  EXPECT_TRUE(general.queries.empty());
  r.tick(7000, general);  // the second startup query, a new startup interval (20 s / 4) after the change
  ASSERT_EQ(general.queries.size(), 1u);
  EXPECT_EQ(general.queries[0].robustness, 3);

  // Querier off: no more queries; the memberships stay.
  c.querier = false;
  r.reconfigure(c, 8000, changed);
  EXPECT_FALSE(r.is_querier());
  RouterOutput none;
  r.tick(60'000, none);
  EXPECT_TRUE(none.queries.empty());
  EXPECT_TRUE(r.group(G));
  // On again with nobody else heard: it starts as a router does, at once.
  c.querier = true;
  r.reconfigure(c, 61'000, changed);
  EXPECT_TRUE(r.is_querier());
  RouterOutput startup;
  r.tick(61'000, startup);
  ASSERT_EQ(startup.queries.size(), 1u);
  EXPECT_EQ(startup.queries[0].interval_s, 20u);

  // A lower querier is heard; our new address is lower still: we win at once.
  r.on_query(query_from(ip("0.0.0.0"), ""), ip("10.0.0.0"), 62'000, out);
  EXPECT_FALSE(r.is_querier());
  c.address = ip("9.0.0.1");
  r.reconfigure(c, 63'000, changed);
  EXPECT_TRUE(r.is_querier());
  // ... and a higher one would not have.
  r.on_query(query_from(ip("0.0.0.0"), ""), ip("8.0.0.1"), 64'000, out);
  EXPECT_FALSE(r.is_querier());
  c.address = ip("10.0.0.5");
  r.reconfigure(c, 65'000, changed);
  EXPECT_FALSE(r.is_querier());

  // The group falls in a new SSM range: its any-source state goes at once
  // (RFC 4604), the sources it asked for stay in INCLUDE mode.
  r.on_membership(report(RecordType::kAllow, "b"), kHost1, 65'500, out);  // EXCLUDE {b running, a}
  c.ssm_ranges = {*parse_ssm_range("239.0.0.0/8")};
  RouterOutput ssm;
  r.reconfigure(c, 66'000, ssm);
  ASSERT_TRUE(r.group(G));
  EXPECT_EQ(r.group(G)->mode, FilterMode::kInclude);
  EXPECT_EQ(running(r, 66'000), "b");
  EXPECT_FALSE(r.group(G)->wants(src('c'), 66'000));
  ASSERT_EQ(ssm.changed.size(), 1u);
  EXPECT_EQ(ssm.changed[0], G);
}

TEST(McastRouter, FastLeaveSwitchedOnDoesNotEndAGroupForMembersItNeverTracked) {
  RouterConfig c = querier_config();
  MembershipRouter r(c, 0);
  RouterOutput out;
  r.on_membership(report(RecordType::kIsExclude, ""), kHost1, 1000, out);
  r.on_membership(report(RecordType::kIsExclude, ""), kHost2, 1000, out);
  c.fast_leave = true;
  r.reconfigure(c, 2000, out);
  r.on_membership(report(RecordType::kToInclude, ""), kHost1, 3000, out);
  ASSERT_TRUE(r.group(G)) << "host 2 was never tracked: the group is queried, not ended";
  EXPECT_EQ(r.group(G)->group_timer, 3000 + c.timers.last_member_query_time());
  // A group that starts after the switch is tracked: its last host's leave ends it at once.
  const IpAddress g2 = ip("239.1.1.2");
  r.on_membership(report(RecordType::kIsExclude, "", g2), kHost1, 4000, out);
  r.on_membership(report(RecordType::kToInclude, "", g2), kHost1, 5000, out);
  EXPECT_FALSE(r.group(g2));
}

TEST(McastRouter, ANonQuerierTakesNewSettingsWhereTheQuerierAdvertisesNone) {
  RouterConfig c = querier_config();
  MembershipRouter r(c, 0);
  RouterOutput out;
  Membership q = query_from(ip("0.0.0.0"), "");
  q.query.robustness = 4;  // advertised; QQIC 0: "ours"
  r.on_query(q, ip("10.0.0.0"), 1000, out);
  ASSERT_FALSE(r.is_querier());
  c.timers.robustness = 3;
  c.timers.query_interval_ms = 30'000;
  r.reconfigure(c, 2000, out);
  EXPECT_EQ(r.timers().robustness, 4) << "the querier's QRV";
  EXPECT_EQ(r.timers().query_interval_ms, 30'000u) << "our new interval: the querier gave none";
  // Behind an IGMPv2 querier (no QRV, no QQIC), all of ours.
  Membership v2 = older(MessageKind::kQuery, 2, ip("0.0.0.0"));
  v2.query.group = ip("0.0.0.0");
  r.on_query(v2, ip("10.0.0.0"), 3000, out);
  c.timers.robustness = 5;
  r.reconfigure(c, 4000, out);
  EXPECT_EQ(r.timers().robustness, 5);
}

TEST(McastRouter, SsmLimitsAndLinkLocalGroups) {
  RouterConfig c = querier_config();
  c.ssm_ranges = {*parse_ssm_range("232.0.0.0/8")};
  c.max_groups = 2;
  c.max_sources = 2;
  MembershipRouter r(c, 0);
  RouterOutput out;
  const IpAddress ssm = ip("232.1.1.1");
  r.on_membership(report(RecordType::kToExclude, "", ssm), kHost1, 0, out);
  r.on_membership(older(MessageKind::kJoin, 2, ssm), kHost1, 0, out);
  EXPECT_FALSE(r.group(ssm));
  EXPECT_EQ(r.counters().ignored[static_cast<size_t>(Ignore::kSsmExclude)], 2u);
  r.on_membership(report(RecordType::kAllow, "abc", ssm), kHost1, 0, out);
  ASSERT_TRUE(r.group(ssm));
  EXPECT_EQ(r.group(ssm)->sources.size(), 2u);
  EXPECT_EQ(r.counters().ignored[static_cast<size_t>(Ignore::kSourceLimit)], 1u);
  r.on_membership(report(RecordType::kIsExclude, "", ip("239.1.1.2")), kHost1, 0, out);
  r.on_membership(report(RecordType::kIsExclude, "", ip("239.1.1.3")), kHost1, 0, out);
  EXPECT_EQ(r.groups().size(), 2u);
  EXPECT_EQ(r.counters().ignored[static_cast<size_t>(Ignore::kGroupLimit)], 1u);
  r.on_membership(report(RecordType::kIsExclude, "", ip("224.0.0.251")), kHost1, 0, out);
  EXPECT_EQ(r.counters().ignored[static_cast<size_t>(Ignore::kLinkLocalGroup)], 1u);
  // Unknown group, nothing to add: no state, no limit counted.
  r.on_membership(report(RecordType::kBlock, "a", ip("239.9.9.9")), kHost1, 0, out);
  r.on_membership(report(RecordType::kToInclude, "", ip("239.9.9.9")), kHost1, 0, out);
  EXPECT_EQ(r.counters().ignored[static_cast<size_t>(Ignore::kGroupLimit)], 1u);
}

TEST(McastRouter, FastLeaveEndsWhatNoTrackedHostWantsAtOnce) {
  RouterConfig c = querier_config();
  c.fast_leave = true;
  MembershipRouter r(c, 0);
  RouterOutput out;
  r.on_membership(report(RecordType::kIsInclude, "ab"), kHost1, 0, out);
  r.on_membership(report(RecordType::kIsInclude, "a"), kHost2, 0, out);
  RouterOutput leave1;
  r.on_membership(report(RecordType::kToInclude, ""), kHost1, 1000, leave1);
  EXPECT_TRUE(leave1.queries.empty());
  EXPECT_EQ(running(r, 1000), "a") << "b was host 1's alone";
  RouterOutput leave2;
  r.on_membership(report(RecordType::kBlock, "a"), kHost2, 2000, leave2);
  EXPECT_FALSE(r.group(G)) << "the last host left: gone without a query";
  EXPECT_EQ(leave2.changed, std::vector<IpAddress>{G});
  // IGMPv2 hosts suppress each other's reports, so they cannot all be
  // tracked: their group leaves the normal way, through Q(G).
  r.on_membership(older(MessageKind::kJoin, 2), kHost1, 3000, out);
  RouterOutput v2leave;
  r.on_membership(older(MessageKind::kLeave, 2), kHost1, 4000, v2leave);
  ASSERT_TRUE(r.group(G)) << "host 2 may be listening unheard";
  EXPECT_EQ(v2leave.queries.size(), 1u);
  r.tick(6000, out);
  EXPECT_FALSE(r.group(G));
  // A reporter beyond the tracked-host limit turns fast leave off for the group.
  RouterConfig small = c;
  small.max_hosts = 1;
  MembershipRouter r2(small, 0);
  r2.on_membership(report(RecordType::kIsInclude, "a"), kHost1, 0, out);
  r2.on_membership(report(RecordType::kIsInclude, "a"), kHost2, 0, out);
  EXPECT_EQ(r2.counters().ignored[static_cast<size_t>(Ignore::kHostLimit)], 1u);
  RouterOutput q;
  r2.on_membership(report(RecordType::kBlock, "a"), kHost1, 1000, q);
  EXPECT_EQ(q.queries.size(), 1u) << "queried, not ended";
  EXPECT_TRUE(r2.group(G));
}

TEST(McastRouter, SourceQueriesSplitAtTheMtuAndZeroVariablesMeanOurOwn) {
  MembershipRouter r(querier_config(), 0);
  RouterOutput out;
  Membership m = report(RecordType::kIsInclude, "");
  for (unsigned i = 0; i < 1000; ++i) {
    m.records[0].sources.push_back(IpAddress::v4(std::array<uint8_t, 4>{10, 20, uint8_t(i >> 8), uint8_t(i)}.data()));
  }
  r.on_membership(m, kHost1, 0, out);
  RouterOutput leave;
  r.on_membership(report(RecordType::kToInclude, ""), kHost1, 1000, leave);
  // (1500 - 24 - 12) / 4 = 366 sources a query: 366 + 366 + 268.
  ASSERT_EQ(leave.queries.size(), 3u);
  size_t total = 0;
  for (const auto& q : leave.queries) {
    EXPECT_LE(q.sources.size(), 366u);
    total += q.sources.size();
  }
  EXPECT_EQ(total, 1000u);
  // A querier's QRV 0 and QQIC 0 mean "use your own" (§4.1.6, §4.1.7), and
  // losing the election drops our pending retransmissions.
  Membership q = query_from(ip("0.0.0.0"), "");
  q.query.robustness = 5;
  r.on_query(q, ip("10.0.0.0"), 1100, out);
  EXPECT_EQ(r.timers().robustness, 5);
  q.query.robustness = 0;
  r.on_query(q, ip("10.0.0.0"), 1200, out);
  EXPECT_EQ(r.timers().robustness, 2);
  RouterOutput later;
  r.tick(2000, later);
  EXPECT_TRUE(later.queries.empty()) << "no stale retransmission from a non-querier";
  for (const auto& [s, rec] : r.group(G)->sources) ASSERT_EQ(rec.queries_left, 0);
}

}  // namespace
