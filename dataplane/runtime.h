// The running data plane: mempool, ports, punt ring, RCU-published tables and
// the worker lcores. It is the config manager's apply backend and the REST
// API's status provider. The EAL must be initialised before `create`.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "config/api.h"
#include "config/manager.h"
#include "config/model.h"
#include "dataplane/counters.h"
#include "dataplane/module.h"
#include "dataplane/pipeline.h"
#include "dataplane/ports.h"
#include "dataplane/rcu_publisher.h"
#include "dataplane/worker.h"

namespace meridian::dataplane {

/// The restart-only differences between two configs, as path errors.
config::FieldErrors restart_only_changes(const config::Config& running, const config::Config& next);

class Dataplane final : public config::ApplyBackend, public config::StatusProvider {
 public:
  /// Sets up the mempool, ports, punt ring, RCU and the first tables.
  /// Workers are not started. On failure returns null and sets `error`.
  static std::unique_ptr<Dataplane> create(const config::Config& config, std::string& error);
  ~Dataplane() override;

  /// Launches one worker per non-main lcore of the config.
  std::string start_workers();
  /// Signals the workers, waits for them, and reclaims retired tables.
  void stop_workers();

  /// Control-lcore housekeeping, called every few ms: RCU reclamation,
  /// draining the punt ring, sampling worker heartbeats.
  void control_tick();
  /// Between ticks (every millisecond): punted frames are offered at once,
  /// and a module whose tables they changed has them published
  /// (Module::punts_handled), so that a join or leave waits for no tick.
  void poll_punts();

  /// Handler for punted frames of one EtherType that no module claimed;
  /// returns true if it took ownership of the mbuf. Handlers of one
  /// EtherType are asked in the order they were added. Unhandled frames are
  /// freed and counted.
  using PuntHandler = std::function<bool(rte_mbuf*)>;
  void set_punt_handler(uint16_t ethertype, PuntHandler handler);

  /// Sends from the control lcore through the one egress path
  /// (dataplane/egress.h): to a shaped port through its QoS tree (handed to
  /// the worker that owns it) unless `timing` is kTimestamped or the workers
  /// are stopped, else on the port's own control TX queue. Returns how many were sent or queued; the
  /// rest are freed and counted.
  uint16_t control_transmit(uint16_t port_id, rte_mbuf** pkts, uint16_t n,
                            EgressTiming timing = EgressTiming::kScheduled);
  /// A frame the control lcore built, copied into a buffer and sent as above.
  bool control_send(uint16_t port_id, std::span<const uint8_t> frame);

  // config::ApplyBackend
  config::FieldErrors check_live_change(const config::Config& running,
                                        const config::Config& next) override;
  std::function<void()> prepare(const config::Config& running, const config::Config& next,
                                config::FieldErrors& errors) override;

  // config::StatusProvider
  nlohmann::json ports() override;
  nlohmann::json stats() override;
  void metrics(config::MetricsWriter& out) override;
  config::Health health() override;
  std::optional<Resource> resource(config::http::verb method, const std::string& path,
                                   const std::map<std::string, std::string>& query) override;

  // Accessors for meridiand, tests and benches.
  const std::vector<PortRuntime>& port_list() const { return ports_; }
  std::optional<uint16_t> port_id(const std::string& name) const;
  PortTotals port_totals(uint16_t port_id) const;
  rte_mempool* mempool() const { return pool_; }
  size_t retired_tables() const { return tables_->retired(); }
  std::vector<WorkerContext>& worker_contexts() { return workers_; }
  /// The running module of type M, or null.
  template <class M>
  M* module() const {
    for (const auto& m : modules_) {
      if (auto* found = dynamic_cast<M*>(m.get())) return found;
    }
    return nullptr;
  }
  /// Stage names in pipeline order.
  std::vector<std::string> stage_names() const;
  /// Per stage, summed over workers: the sampled bursts, their packets and
  /// cycles (`show runtime`; GET /api/v1/stats "runtime").
  nlohmann::json runtime_json() const;

 private:
  Dataplane() = default;
  void sample_heartbeats();
  /// Running, and the worker's heartbeat advanced within the last second.
  bool worker_polling(unsigned index, std::chrono::steady_clock::time_point now) const;
  /// Offers up to `budget` punted frames (0: a ring's worth).
  void drain_punt_ring(unsigned budget = 0);
  void republish();
  /// The snapshot for `config`: the engine's own state (offline ports),
  /// then every module's part.
  std::unique_ptr<const ForwardingTables> build_tables(const config::Config& config);
  /// ModuleHost::overlay_udp_port.
  uint16_t overlay_udp_port(const config::Config& config) const;
  static constexpr uint16_t kIanaVxlanPort = 4789;
  /// Link tracking (every kLinkPollInterval): logs and counts transitions,
  /// takes a port whose interface is gone out of the data path, and
  /// re-creates its device when the interface is back.
  void poll_links();
  void take_offline(PortRuntime& port);
  void recover_port(size_t index);
  static constexpr auto kLinkPollInterval = std::chrono::milliseconds(100);
  std::chrono::steady_clock::time_point last_link_poll_{};

  config::Config config_;
  unsigned instance_ = 0;
  rte_mempool* pool_ = nullptr;
  rte_ring* punt_ring_ = nullptr;
  rte_rcu_qsbr* qsbr_ = nullptr;
  std::vector<PortRuntime> ports_;
  Pipeline pipeline_;
  std::vector<StagePlace> stage_places_;  // beside pipeline_
  std::unique_ptr<RcuPublisher<ForwardingTables>> tables_;
  uint64_t table_versions_ = 0;
  // One counter block per worker plus a last one for the control lcore.
  std::unique_ptr<WorkerCounters[]> counter_storage_;
  std::span<WorkerCounters> counters_;
  std::vector<WorkerContext> workers_;
  /// The control lcore's lane out of every port (egress.h): the last
  /// counter block, each port's control queue, its module-given scheduler.
  WorkerContext control_lane_;
  std::atomic<bool> stop_{false};
  bool running_ = false;
  std::chrono::steady_clock::time_point started_at_ = std::chrono::steady_clock::now();

  struct HeartbeatSample {
    uint64_t value = 0;
    std::chrono::steady_clock::time_point changed_at{};
    bool seen = false;
  };
  std::vector<HeartbeatSample> heartbeats_;
  std::map<uint16_t, std::vector<PuntHandler>> punt_handlers_;
  std::map<uint16_t, uint64_t> punt_received_;
  /// Our addresses, ARP/ND and next hops (host/); outlives the modules, its clients.
  std::unique_ptr<host::Presence> presence_;
  /// What modules are given; refers to config_ and ports_, which outlive them.
  std::unique_ptr<ModuleHost> host_;
  /// In registration order (dataplane/modules.cc); destroyed before the ports close.
  std::vector<std::unique_ptr<Module>> modules_;
  /// The same, in the order punted frames are offered (Module::punt_order).
  std::vector<Module*> punt_claimants_;
};

}  // namespace meridian::dataplane
