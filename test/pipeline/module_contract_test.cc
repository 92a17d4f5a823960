// The module contract, proven by a module the engine has never heard of:
// "probe" is defined here, registered with one line, and gets a stage at
// its place in the pipeline, the punted frames it claims, a part in every
// config change (and can refuse one, leaving everything as it was), its
// timer, a REST route and a /metrics family, without an edit anywhere else.
#include <atomic>

#include "dataplane/module.h"
#include "test/pipeline/fixture.h"

namespace meridian::pipeline_test {
namespace {

constexpr uint16_t kProbeEtherType = 0x88b5;  // IEEE 802 local experimental 1
constexpr uint16_t kRefusedEtherType = 0x88b6;

struct ProbeState {
  std::atomic<uint64_t> stage_seen{0};
  uint64_t claimed = 0, prepares = 0, commits = 0, ticks = 0;
};

/// Punts the probe EtherType at ingress (before PTP and VXLAN look at it).
class ProbeStage final : public dataplane::Stage {
 public:
  explicit ProbeStage(ProbeState& s) : state_(s) {}
  const char* name() const override { return "probe"; }
  void process(dataplane::PacketBatch& b, const dataplane::StageContext&) const override {
    for (uint16_t i = 0; i < b.count; ++i) {
      const auto* f = rte_pktmbuf_mtod(b.pkts[i], const uint8_t*);
      if (!b.undecided(i) || rte_pktmbuf_data_len(b.pkts[i]) < 14 || (f[12] << 8 | f[13]) != kProbeEtherType) continue;
      state_.stage_seen.fetch_add(1, std::memory_order_relaxed);
      b.punt(i);
    }
  }

 private:
  ProbeState& state_;
};

class ProbeModule final : public dataplane::Module {
 public:
  explicit ProbeModule(ProbeState& s) : state_(s) {}
  const char* name() const override { return "probe"; }
  std::vector<dataplane::PlacedStage> stages() override {
    std::vector<dataplane::PlacedStage> out;
    out.push_back({dataplane::StagePlace::kIngress, 5, std::make_unique<ProbeStage>(state_)});
    return out;
  }
  std::function<void()> prepare(const config::Config&, const config::Config& next, config::FieldErrors& errors) override {
    ++state_.prepares;
    const auto& types = next.punt.ethertypes;
    if (std::find(types.begin(), types.end(), kRefusedEtherType) != types.end()) {
      errors.push_back({"/punt/ethertypes", "the probe refuses 0x88b6"});
      return nullptr;
    }
    return [this] { ++state_.commits; };
  }
  bool claim_punt(rte_mbuf* m, const dataplane::PacketView& view) override {
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
  }
  std::optional<dataplane::RestResource> resource(const dataplane::RestRequest& r) override {
    if (r.path != "/api/v1/probe") return std::nullopt;
    if (r.method != config::http::verb::get) return dataplane::RestResource::not_allowed("GET, HEAD");
    return dataplane::RestResource{config::http::status::ok,
                                   {{"claimed", state_.claimed}, {"stage_seen", state_.stage_seen.load()}}};
  }

 private:
  ProbeState& state_;
};

uint64_t table_version(dataplane::Dataplane& dp) { return dp.stats()["tables"]["version"].get<uint64_t>(); }

TEST(ModuleContract, AModuleRegisteredWithOneLineGetsStagePuntConfigTimerRestAndMetrics) {
  ProbeState state;
  dataplane::register_module({"probe", [&state](const dataplane::ModuleHost&, std::string&) {
                                return std::make_unique<ProbeModule>(state);
                              }});
  struct Unregister {
    ~Unregister() { dataplane::unregister_module("probe"); }
  } unregister;

  RingPort a = make_ring_port("a"), b = make_ring_port("b");
  const json doc = config_for({a, b}, json::array({{{"a", "a"}, {"b", "b"}}}));
  auto dp = make_dataplane(doc);
  ASSERT_TRUE(dp);
  EXPECT_NE(dp->module<ProbeModule>(), nullptr);
  // Its stage sits at its place: after the punt classifier (order 0), before
  // PTP's ingress stages, and the forward and egress stages follow.
  EXPECT_EQ(dp->stage_names(), (std::vector<std::string>{"punt-classifier", "probe", "ptp-punt", "ptp-tc", "vxlan",
                                                         "xconnect", "ptp-tc-egress"}));

  const auto probe1 = frame(1, 60, kProbeEtherType), probe2 = frame(2, 80, kProbeEtherType), ip = frame(3, 100);
  inject(a, {probe1, ip, probe2});
  ASSERT_EQ(dp->start_workers(), "");
  auto forwarded = collect(b.tx[0], 1, dp.get());
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (state.claimed < 2 && std::chrono::steady_clock::now() < deadline) {
    dp->control_tick();
    std::this_thread::sleep_for(1ms);
  }
  dp->stop_workers();
  ASSERT_EQ(forwarded.size(), 1u);
  EXPECT_EQ(forwarded[0], ip);
  EXPECT_EQ(state.stage_seen.load(), 2u);
  EXPECT_EQ(state.claimed, 2u);
  EXPECT_GT(state.ticks, 0u);
  EXPECT_EQ(dp->port_totals(*dp->port_id("a")).punted, 2u);
  EXPECT_EQ(drops(dp->port_totals(*dp->port_id("a")), DropReason::kPuntUnhandled), 0u);

  // Its REST route and its metric family.
  auto got = dp->resource(config::http::verb::get, "/api/v1/probe", {});
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, config::http::status::ok);
  EXPECT_EQ(got->body["claimed"], 2);
  auto post = dp->resource(config::http::verb::post, "/api/v1/probe", {});
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, config::http::status::method_not_allowed);
  config::MetricsWriter metrics;
  dp->metrics(metrics);
  EXPECT_NE(metrics.text().find("\nmeridian_probe_claimed_total 2\n"), std::string::npos) << metrics.text();

  // A config change it refuses: the error names its path, and no module
  // commits (no new table version, the other modules' state unchanged).
  const auto running = *config::parse_config(doc).config;
  json refused_doc = doc;
  refused_doc["punt"]["ethertypes"] = {"0x88cc", "0x88b6"};
  refused_doc["xconnect"] = json::array();
  const auto refused = *config::parse_config(refused_doc).config;
  const uint64_t version = table_version(*dp);
  config::FieldErrors errors;
  EXPECT_FALSE(dp->prepare(running, refused, errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].path, "/punt/ethertypes");
  EXPECT_EQ(state.commits, 0u);
  EXPECT_EQ(table_version(*dp), version);

  // One it accepts: every module commits, then one new version is published.
  json accepted_doc = doc;
  accepted_doc["punt"]["ethertypes"] = {"0x88cc"};
  const auto accepted = *config::parse_config(accepted_doc).config;
  errors.clear();
  auto commit = dp->prepare(running, accepted, errors);
  ASSERT_TRUE(commit) << errors[0].path << ": " << errors[0].reason;
  commit();
  EXPECT_EQ(state.commits, 1u);
  EXPECT_EQ(table_version(*dp), version + 1);
  EXPECT_EQ(state.prepares, 2u);

  dp.reset();
  free_ring_port(a);
  free_ring_port(b);
}

}  // namespace
}  // namespace meridian::pipeline_test
