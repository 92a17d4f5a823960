// The host side (a proxy's upstream interface) on simulated time: the §3.2
// merge, state-change reports and their retransmission (§5.1), answers to
// queries (§5.2), and older queriers (§7.2.1).
#include <gtest/gtest.h>

#include <string>

#include "multicast_gw/host.h"

using namespace meridian;
using namespace meridian::mcast;

namespace meridian::mcast {
void PrintTo(const GroupRecord& r, std::ostream* os) {
  *os << record_type_name(r.type) << "(" << config::to_string(r.group) << ":";
  for (const auto& s : r.sources) *os << " " << config::to_string(s);
  *os << ")";
}
}  // namespace meridian::mcast

namespace {

IpAddress ip(const std::string& text) { return *config::parse_ip(text); }
const IpAddress G = ip("239.1.1.1"), G2 = ip("232.1.1.1");
IpAddress src(char name) { return ip(std::string("10.10.0.") + std::to_string(name - 'a' + 1)); }
std::vector<IpAddress> srcs(const std::string& names) {
  std::vector<IpAddress> out;
  for (char c : names) out.push_back(src(c));
  return out;
}
Subscription inc(const std::string& s) { return {FilterMode::kInclude, srcs(s)}; }
Subscription exc(const std::string& s) { return {FilterMode::kExclude, srcs(s)}; }
GroupRecord rec(RecordType t, const std::string& s, const IpAddress& g = G) { return {t, g, srcs(s)}; }

Membership query(const IpAddress& group, const std::string& sources, uint8_t version = 3) {
  Membership m;
  m.family = 4;
  m.kind = MessageKind::kQuery;
  m.version = version;
  m.query.group = group;
  m.query.sources = srcs(sources);
  m.query.max_response_ms = 10'000;
  return m;
}

TEST(McastHost, MergeFollowsTheSection3Point2Rules) {
  struct Case {
    Subscription a, b, merged;
  };
  const Case cases[] = {
      {inc("ab"), inc("bc"), inc("abc")},
      {inc("ab"), exc("bc"), exc("c")},   // EXCLUDE(B-A)
      {exc("ab"), inc("bc"), exc("a")},   // EXCLUDE(A-B)
      {exc("ab"), exc("bc"), exc("b")},   // EXCLUDE(A*B)
      {inc(""), exc(""), exc("")},
  };
  for (const auto& c : cases) {
    Subscription m = c.a;
    merge_subscription(m, c.b);
    EXPECT_EQ(m, c.merged);
  }
  // Three links: EXCLUDE with the intersection of the exclude lists less every include.
  Subscription m = exc("abc");
  merge_subscription(m, inc("a"));
  merge_subscription(m, exc("abd"));
  EXPECT_EQ(m, exc("b"));
}

TEST(McastHost, DownstreamRoutersMergeIntoOneInterest) {
  RouterConfig c;
  c.querier = false;
  MembershipRouter r1(c, 0), r2(c, 0);
  RouterOutput out;
  Membership m;
  m.kind = MessageKind::kReport;
  m.version = 3;
  m.records = {rec(RecordType::kIsInclude, "ab"), rec(RecordType::kIsInclude, "a", G2)};
  r1.on_membership(m, ip("10.0.0.11"), 0, out);
  m.records = {rec(RecordType::kIsExclude, "bc")};
  r2.on_membership(m, ip("10.0.0.12"), 0, out);
  const MembershipRouter* links[] = {&r1, &r2};
  const Interest merged = merge_interest(links, 0);
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged.at(G), exc("c")) << "EXCLUDE(Y=bc) merged with INCLUDE(ab)";
  EXPECT_EQ(merged.at(G2), inc("a"));
}

TEST(McastHost, StateChangesAreSentAtOnceAndRetransmitted) {
  MembershipHost h({}, 1);
  HostOutput out;
  h.set_interest({{G, exc("")}}, 0, out);
  EXPECT_EQ(out.records, std::vector<GroupRecord>{rec(RecordType::kToExclude, "")});
  // Robustness 2: once more within the unsolicited report interval, then quiet.
  const Millis t1 = h.next_deadline();
  EXPECT_GT(t1, 0);
  EXPECT_LE(t1, 1000);
  HostOutput again;
  h.tick(t1, again);
  EXPECT_EQ(again.records, std::vector<GroupRecord>{rec(RecordType::kToExclude, "")});
  EXPECT_EQ(h.next_deadline(), INT64_MAX);

  // INCLUDE(a) -> INCLUDE(ab): ALLOW(b); then the leave: BLOCK(ab).
  HostOutput inc_out;
  h.set_interest({{G2, inc("a")}}, 2000, inc_out);  // G leaves (TO_IN({})), G2 joins
  EXPECT_EQ(inc_out.records, (std::vector<GroupRecord>{rec(RecordType::kAllow, "a", G2), rec(RecordType::kToInclude, "")}));
  HostOutput more;
  h.set_interest({{G2, inc("ab")}}, 2100, more);
  // a's pending retransmission rides along (§5.1: pending changes merge).
  EXPECT_EQ(more.records, std::vector<GroupRecord>{rec(RecordType::kAllow, "ab", G2)});
  HostOutput leave;
  h.set_interest({}, 2200, leave);
  EXPECT_EQ(leave.records, std::vector<GroupRecord>{rec(RecordType::kBlock, "ab", G2)});
  // What is pending folds: the retransmissions carry BLOCK(ab) and the
  // pending TO_IN({}) of G, never the stale ALLOWs.
  HostOutput rest;
  for (Millis t = 2200; t < 10'000; t += 10) h.tick(t, rest);
  for (const auto& r : rest.records) {
    EXPECT_NE(r.type, RecordType::kAllow) << record_type_name(r.type);
  }
  EXPECT_EQ(h.next_deadline(), INT64_MAX);
  EXPECT_TRUE(h.state().empty());
}

TEST(McastHost, QueriesAreAnsweredWithCurrentStateWithinTheirResponseTime) {
  MembershipHost h({}, 7);
  HostOutput out;
  h.set_interest({{G, exc("a")}, {G2, inc("bc")}}, 0, out);
  for (Millis t = 0; t < 2000; t += 10) h.tick(t, out);
  HostOutput answer;
  h.on_query(query(ip("0.0.0.0"), ""), 5000);
  const Millis due = h.next_deadline();
  EXPECT_GT(due, 5000);
  EXPECT_LE(due, 15'000);
  h.tick(due - 1, answer);
  EXPECT_TRUE(answer.empty()) << "never before the chosen delay";
  h.tick(due, answer);
  EXPECT_EQ(answer.records, (std::vector<GroupRecord>{rec(RecordType::kIsInclude, "bc", G2), rec(RecordType::kIsExclude, "a")}));
  // Group-and-source queries: INCLUDE(A) answers IS_IN(A*Q), EXCLUDE(A) IS_IN(Q-A).
  HostOutput gs;
  h.on_query(query(G2, "cd"), 20'000);
  h.on_query(query(G, "ab"), 20'000);
  for (Millis t = 20'000; t <= 30'000; t += 10) h.tick(t, gs);
  EXPECT_EQ(gs.records, (std::vector<GroupRecord>{rec(RecordType::kIsInclude, "b"), rec(RecordType::kIsInclude, "c", G2)}));
  // A query for a group we do not want is not answered.
  HostOutput none;
  h.on_query(query(ip("239.9.9.9"), ""), 40'000);
  for (Millis t = 40'000; t <= 50'000; t += 10) h.tick(t, none);
  EXPECT_TRUE(none.empty());
}

TEST(McastHost, AnOlderQuerierSwitchesToJoinsAndLeaves) {
  MembershipHost h({}, 3);
  HostOutput out;
  h.on_query(query(ip("0.0.0.0"), "", 2), 0);
  EXPECT_EQ(h.compatibility(0), 2);
  h.set_interest({{G, inc("a")}}, 100, out);
  ASSERT_EQ(out.older.size(), 1u);
  EXPECT_EQ(out.older[0], (HostOutput::Older{G, MessageKind::kJoin, 2}));
  EXPECT_TRUE(out.records.empty());
  HostOutput leave;
  h.set_interest({}, 200, leave);
  EXPECT_EQ(leave.older, (std::vector<HostOutput::Older>{{G, MessageKind::kLeave, 2}}));
  // Older Version Querier Present Interval: 2 x 125 s + 10 s, then IGMPv3 again.
  EXPECT_EQ(h.compatibility(259'999), 2);
  EXPECT_EQ(h.compatibility(260'000), 3);
  // IGMPv1 querier: joins only, no leave.
  h.on_query(query(ip("0.0.0.0"), "", 1), 300'000);
  HostOutput v1;
  h.set_interest({{G, exc("")}}, 300'100, v1);
  h.set_interest({}, 300'200, v1);
  EXPECT_EQ(v1.older, (std::vector<HostOutput::Older>{{G, MessageKind::kJoin, 1}}));
}

}  // namespace
