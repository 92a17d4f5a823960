// The module contract, proven by a module the engine has never heard of:
// "probe" is defined here, registered with one line, and gets its own config
// section (parsed, validated with paths, written back), a stage at its
// place in the pipeline, the punted frames it claims, its own drop reason
// (counted per port beside the engine's) and counter set, a part in every
// config change (and can refuse one, leaving everything as it was), its
// timer, a REST route and /metrics families, without an edit anywhere else.
#include <algorithm>
#include <atomic>
#include <set>

#include "config/json_reader.h"
#include "dataplane/counter_set.h"
#include "dataplane/module.h"
#include "test/pipeline/fixture.h"

namespace meridian::pipeline_test {
namespace {

constexpr uint16_t kProbeEtherType = 0x88b5;  // IEEE 802 local experimental 1

/// The "probe" section: which port it watches, and whether its prepare
/// refuses the change (a failure only prepare can find).
struct ProbeConfig {
  std::string port;
  bool refuse = false;
  bool operator==(const ProbeConfig&) const = default;
};

void parse_probe(const json& j, const std::string& path, ProbeConfig& out, config::FieldErrors& errors) {
  config::ObjectReader r(j, path, errors);
  r.read_string("port", out.port);
  r.read_bool("refuse", out.refuse);
}
json probe_to_json(const ProbeConfig& c) { return {{"port", c.port}, {"refuse", c.refuse}}; }
void validate_probe(const ProbeConfig& c, const config::Config& doc, config::FieldErrors& errors, config::FieldErrors&) {
  const auto names = config::port_names(doc);
  if (!c.port.empty() && std::find(names.begin(), names.end(), c.port) == names.end()) {
    errors.push_back({"/probe/port", "unknown port '" + c.port + "'"});
  }
}
config::SectionSpec probe_section() {
  return config::make_section_spec<ProbeConfig>("probe", parse_probe, probe_to_json, validate_probe);
}
const ProbeConfig& probe_of(const config::Config& c) { return c.section<ProbeConfig>("probe"); }

// Its drop reasons and counters, declared as any module declares them.
#define PROBE_DROP_REASONS(X) X(kTooShort, "probe_too_short", kIngress, "probe frame shorter than 64 bytes")
MERIDIAN_DEFINE_DROP_REASONS(ProbeDrop, PROBE_DROP_REASONS)
#define PROBE_COUNTERS(X) \
  X(stage_frames, "stage_frames", "meridian_probe_stage_frames_total", "", "Probe frames the probe stage punted")
MERIDIAN_DEFINE_COUNTER_SET(ProbeCounters, PROBE_COUNTERS)

struct ProbeState {
  std::unique_ptr<ProbeCounters[]> counters;  // one block per worker
  unsigned workers = 0;
  uint64_t claimed = 0, prepares = 0, commits = 0, ticks = 0;
  std::string started_on, watching;  // the port of the startup config, of the last commit
  const dataplane::ModuleHost* host = nullptr;
  ProbeCounters::Totals totals() const { return dataplane::sum_counters<ProbeCounters>({counters.get(), workers}); }
};

/// The probe's own state in a table version: a type of its own, in a slot
/// of the tables (no field of ForwardingTables names it).
struct ProbeTables {
  uint32_t min_length = 0;
};

/// Punts the probe EtherType at ingress (before PTP and VXLAN look at it).
class ProbeStage final : public dataplane::Stage {
 public:
  explicit ProbeStage(ProbeState& s) : state_(s) {}
  const char* name() const override { return "probe"; }
  bool active(const dataplane::ForwardingTables& t) const override { return t.get<ProbeTables>() != nullptr; }
  void process(dataplane::PacketBatch& b, const dataplane::StageContext& ctx) const override {
    const uint32_t min_length = ctx.tables.get<ProbeTables>()->min_length;
    for (uint16_t i = 0; i < b.count; ++i) {
      if (!b.undecided(i) || b.ethertype(i) != kProbeEtherType) continue;
      if (rte_pktmbuf_pkt_len(b.pkts[i]) < min_length) {
        b.drop(i, ProbeDrop::kTooShort);
        continue;
      }
      ++state_.counters[ctx.worker].stage_frames;
      b.punt(i);
    }
  }

 private:
  ProbeState& state_;
};

class ProbeModule final : public dataplane::Module {
 public:
  ProbeModule(ProbeState& s, const dataplane::ModuleHost& host) : state_(s) {
    drop_id(ProbeDrop{});  // its reasons are listed from the start
    s.counters = std::make_unique<ProbeCounters[]>(host.workers);
    s.workers = host.workers;
    s.host = &host;
    s.started_on = s.watching = probe_of(host.config).port;
  }
  const char* name() const override { return "probe"; }
  std::vector<dataplane::PlacedStage> stages() override {
    std::vector<dataplane::PlacedStage> out;
    out.push_back({dataplane::StagePlace::kIngress, 5, std::make_unique<ProbeStage>(state_)});
    return out;
  }
  std::function<void()> prepare(const config::Config&, const config::Config& next, config::FieldErrors& errors) override {
    ++state_.prepares;
    if (probe_of(next).refuse) {
      errors.push_back({"/probe/refuse", "the probe refuses this change"});
      return nullptr;
    }
    return [this, port = probe_of(next).port]() mutable {
      ++state_.commits;
      state_.watching = std::move(port);
    };
  }
  void contribute(dataplane::ForwardingTables& t, const config::Config&) const override {
    auto tables = std::make_shared<ProbeTables>();
    tables->min_length = 64;
    t.set<ProbeTables>(std::move(tables));
  }
  bool claim_punt(rte_mbuf* m, const net::PacketView& view) override {
    if (view.ethertype != kProbeEtherType) return false;
    ++state_.claimed;
    rte_pktmbuf_free(m);
    return true;
  }
  bool tick(bool) override {
    ++state_.ticks;
    return false;
  }
  void metrics(config::MetricsWriter& out, bool) override {
    out.counter("meridian_probe_claimed_total", "Probe frames the probe module took from the punt ring");
    out.sample(config::Labels{}, state_.claimed);
    dataplane::write_counters<ProbeCounters>(out, state_.totals());
  }
  std::optional<dataplane::RestResource> resource(const dataplane::RestRequest& r) override {
    if (r.path != "/api/v1/probe") return std::nullopt;
    if (r.method != config::http::verb::get) return dataplane::RestResource::not_allowed("GET, HEAD");
    return dataplane::RestResource{config::http::status::ok, {{"claimed", state_.claimed},
                                                              {"stage", dataplane::counters_json<ProbeCounters>(state_.totals())},
                                                              {"watching", state_.watching}}};
  }

 private:
  ProbeState& state_;
};

uint64_t table_version(dataplane::Dataplane& dp) { return dp.stats()["tables"]["version"].get<uint64_t>(); }

TEST(ModuleContract, AModuleRegisteredWithOneLineGetsConfigStagePuntDropsCountersTimerRestAndMetrics) {
  ProbeState state;
  dataplane::register_module({"probe",
                              [&state](const dataplane::ModuleHost& host, std::string&) {
                                return std::make_unique<ProbeModule>(state, host);
                              },
                              probe_section});
  struct Unregister {
    ~Unregister() { dataplane::unregister_module("probe"); }
  } unregister;

  RingPort a = make_ring_port("a"), b = make_ring_port("b");
  struct FreePorts {
    RingPort &a, &b;
    ~FreePorts() {
      free_ring_port(a);
      free_ring_port(b);
    }
  } free_ports{a, b};
  json doc = config_for({a, b}, json::array({{{"a", "a"}, {"b", "b"}}}));
  // Its section is parsed and validated with the document, errors at its paths.
  doc["probe"] = {{"port", "c"}, {"colour", "red"}};
  auto bad = config::parse_config(doc);
  ASSERT_EQ(bad.errors.size(), 2u);
  std::set<std::string> paths{bad.errors[0].path, bad.errors[1].path};
  EXPECT_EQ(paths, (std::set<std::string>{"/probe/colour", "/probe/port"}));
  doc["probe"] = {{"port", "a"}};
  auto parsed = config::parse_config(doc);
  ASSERT_TRUE(parsed.config);
  const config::Config running = *parsed.config;
  EXPECT_EQ(config::to_json(running)["probe"], (json{{"port", "a"}, {"refuse", false}}));
  auto dp = make_dataplane(doc);
  ASSERT_TRUE(dp);
  EXPECT_NE(dp->module<ProbeModule>(), nullptr);
  EXPECT_EQ(state.started_on, "a");
  // Its stage sits at its place: after the punt classifier (order 0), before
  // PTP's ingress stages, and the forward and egress stages follow.
  EXPECT_EQ(dp->stage_names(), (std::vector<std::string>{"punt-classifier", "mcast-snoop", "probe", "ptp-punt", "ptp-tc", "vxlan",
                                                         "xconnect", "ptp-tc-egress"}));
  // Module claims come before EtherType handlers: this one never sees a frame.
  unsigned handler_saw = 0;
  dp->set_punt_handler(kProbeEtherType, [&handler_saw](rte_mbuf* m) {
    ++handler_saw;
    rte_pktmbuf_free(m);
    return true;
  });

  const auto probe1 = frame(1, 70, kProbeEtherType), probe2 = frame(2, 80, kProbeEtherType), ip = frame(3, 100);
  const auto short_probe = frame(5, 60, kProbeEtherType);
  inject(a, {probe1, ip, short_probe, probe2});
  ASSERT_EQ(dp->start_workers(), "");
  auto forwarded = collect(b.tx[0], 1, dp.get());
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (state.claimed < 2 && std::chrono::steady_clock::now() < deadline) {
    dp->control_tick();
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(forwarded.size(), 1u);
  EXPECT_EQ(forwarded[0], ip);
  EXPECT_EQ(state.totals().stage_frames, 2u);
  EXPECT_EQ(state.claimed, 2u);
  EXPECT_EQ(handler_saw, 0u);
  const uint64_t ticks = state.ticks;
  dp->control_tick();
  EXPECT_EQ(state.ticks, ticks + 1);
  const auto ta = dp->port_totals(*dp->port_id("a"));
  EXPECT_EQ(ta.punted, 2u);
  EXPECT_EQ(drops(ta, DropReason::kPuntUnhandled), 0u);
  // Its drop reason: counted on the port beside the engine's, and listed.
  EXPECT_EQ(drops(ta, ProbeDrop::kTooShort), 1u);
  EXPECT_EQ(ta.rx_packets, ta.forwarded + ta.punted + ta.ingress_drops());
  const json stats = dp->stats();
  EXPECT_EQ(stats["ports"][0]["drops"]["probe_too_short"], 1);
  const json& reasons = stats["drop_reasons"];
  EXPECT_TRUE(std::any_of(reasons.begin(), reasons.end(), [](const json& r) {
    return r["name"] == "probe_too_short" && r["counted_at"] == "ingress";
  })) << reasons;

  // Its REST route and its metric family.
  auto got = dp->resource(config::http::verb::get, "/api/v1/probe", {});
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, config::http::status::ok);
  EXPECT_EQ(got->body["claimed"], 2);
  EXPECT_EQ(got->body["stage"], (json{{"stage_frames", 2}}));
  auto post = dp->resource(config::http::verb::post, "/api/v1/probe", {});
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, config::http::status::method_not_allowed);
  config::MetricsWriter metrics;
  dp->metrics(metrics);
  EXPECT_NE(metrics.text().find("\nmeridian_probe_claimed_total 2\n"), std::string::npos) << metrics.text();
  EXPECT_NE(metrics.text().find("\nmeridian_probe_stage_frames_total 2\n"), std::string::npos);
  EXPECT_NE(metrics.text().find("meridian_port_drops_total{port=\"a\",reason=\"probe_too_short\"} 1\n"),
            std::string::npos);

  // A change it refuses, which also removes the cross-connect: the error
  // names its path, nothing commits, and traffic still crosses a -> b.
  json refused_doc = doc;
  refused_doc["probe"] = {{"port", "b"}, {"refuse", true}};
  refused_doc["xconnect"] = json::array();
  auto refused = config::parse_config(refused_doc);
  ASSERT_TRUE(refused.config);
  const uint64_t version = table_version(*dp);
  config::FieldErrors errors;
  EXPECT_FALSE(dp->prepare(running, *refused.config, errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].path, "/probe/refuse");
  EXPECT_EQ(state.commits, 0u);
  EXPECT_EQ(state.watching, "a");
  EXPECT_EQ(table_version(*dp), version);
  const auto after_refusal = frame(4, 90);
  inject(a, {after_refusal});
  auto still = collect(b.tx[0], 1, dp.get());
  ASSERT_EQ(still.size(), 1u);
  EXPECT_EQ(still[0], after_refusal);

  // One it accepts: every module commits, then one new version is published.
  json accepted_doc = doc;
  accepted_doc["probe"] = {{"port", "b"}};
  auto accepted = config::parse_config(accepted_doc);
  ASSERT_TRUE(accepted.config);
  errors.clear();
  auto commit = dp->prepare(running, *accepted.config, errors);
  ASSERT_TRUE(commit) << (errors.empty() ? "" : errors[0].path + ": " + errors[0].reason);
  commit();
  EXPECT_EQ(state.commits, 1u);
  EXPECT_EQ(state.watching, "b");
  EXPECT_EQ(table_version(*dp), version + 1);
  EXPECT_EQ(state.prepares, 2u);
  // The overlay's UDP port, as VXLAN (the overlay module) says, for any
  // config: modules that look inside overlay packets ask the host.
  EXPECT_EQ(state.host->overlay_udp_port(running), 4789);
  json other_port = doc;
  other_port["vxlan"] = {{"vtep", {{"udp_port", 8472}}}};
  auto other = config::parse_config(other_port);
  ASSERT_TRUE(other.config) << other.errors[0].path << ": " << other.errors[0].reason;
  EXPECT_EQ(state.host->overlay_udp_port(*other.config), 8472);
  EXPECT_EQ(dp->resource(config::http::verb::get, "/api/v1/probe", {})->body["watching"], "b");
  dp->stop_workers();
  dp.reset();
}

}  // namespace
}  // namespace meridian::pipeline_test
