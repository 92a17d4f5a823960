// The control-lcore side of QoS: compiles the config's trees into plans
// (prepare/commit, like the VXLAN control), owns the per-port egress
// runtimes the workers run, and reads their counters through the stats
// mailbox into the always-on rate estimate, REST JSON and /metrics.
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/field_error.h"
#include "config/metrics.h"
#include "qos/egress.h"
#include "qos/model.h"

namespace meridian::qos {

struct QosPortInfo {
  std::string name;
  uint16_t id = 0;
};

class QosControl {
 public:
  /// `buffer_limit`: the most packets all trees of one port may hold (a
  /// share of the mempool, so shaping cannot starve reception).
  QosControl(std::vector<QosPortInfo> ports, unsigned workers, uint32_t buffer_limit, TscClock clock);
  ~QosControl();

  qos::EgressPort* const* egress() const { return egress_.data(); }
  std::vector<uint16_t> owned_by(unsigned worker) const;
  const TscClock& clock() const { return clock_; }

  /// Builds the plans for `cfg` (validated); nothing changes until commit.
  /// Fails with path errors only when memory runs out.
  std::shared_ptr<QosPlans> prepare(const config::QosConfig& cfg, uint16_t vxlan_udp_port,
                                    config::FieldErrors& errors);
  /// Installs prepared plans as current (no allocation); the caller then
  /// publishes tables that carry them.
  void commit(const std::shared_ptr<QosPlans>& plans);
  const QosPlans& plans() const { return current_; }

  /// Housekeeping from the control tick: collects finished snapshots into
  /// the rate estimate and asks for the next every kSampleInterval.
  void tick(bool workers_running);
  /// GET /api/v1/qos/classes[?port=NAME]; null port: every shaped port.
  nlohmann::json classes_json(std::optional<uint16_t> port, bool workers_running);
  void metrics(config::MetricsWriter& out, bool workers_running);
  bool shaped(uint16_t port) const { return port < current_.size() && current_[port] != nullptr; }

  /// Frees every packet still held (workers stopped).
  void release_all();

  static constexpr auto kSampleInterval = std::chrono::milliseconds(250);
  static constexpr double kRateTimeConstantSeconds = 1.0;

 private:
  struct PortStats {
    uint64_t plan_id = 0;
    bool requested = false;
    std::vector<std::string> class_ids;
    std::vector<ClassSnapshot> last;  // what REST and /metrics show
    // The rate estimate's previous sample.
    std::vector<ClassStats> base;
    uint64_t base_ps = 0;
    std::vector<double> rate_bps, rate_pps;  // EWMA of wire bits and packets per second
    std::chrono::steady_clock::time_point next_request{};
  };
  /// Takes a finished snapshot into `st` (and asks for the next one);
  /// returns true when a snapshot of the current plan was taken in.
  bool poll(uint16_t port, bool workers_running);
  /// poll() until a snapshot requested after this call arrives, or `wait` passes.
  bool refresh(uint16_t port, bool workers_running, std::chrono::milliseconds wait);
  void ingest(PortStats& st, const QosPlan& plan, const std::vector<ClassSnapshot>& snap, uint64_t taken_ps);

  std::vector<QosPortInfo> ports_;
  unsigned workers_;
  uint32_t buffer_limit_;
  TscClock clock_;
  std::array<std::unique_ptr<EgressPort>, dataplane::kMaxPorts> owned_;
  std::array<EgressPort*, dataplane::kMaxPorts> egress_{};
  QosPlans current_;
  // Plans replaced by a commit, kept until the owner has moved off them
  // (its active pointer is outside the RCU-protected tables).
  std::array<std::vector<std::shared_ptr<const QosPlan>>, dataplane::kMaxPorts> retained_;
  void drop_unused_plans();
  std::array<PortStats, dataplane::kMaxPorts> stats_;
  uint64_t plan_ids_ = 0;
};

}  // namespace meridian::qos
