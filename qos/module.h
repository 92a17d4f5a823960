// HTB QoS as an engine module: the plans it compiles on every config
// change, the egress runtimes its owner workers run, and its views
// (/api/v1/qos/classes, meridian_qos_*).
#pragma once

#include <memory>

#include "dataplane/module.h"
#include "qos/qos_control.h"

namespace meridian::qos {

class QosModule final : public dataplane::Module {
 public:
  static std::unique_ptr<dataplane::Module> create(const dataplane::ModuleHost& host, std::string& error);

  const char* name() const override { return "qos"; }
  std::function<void()> prepare(const config::Config& running, const config::Config& next,
                                config::FieldErrors& errors) override;
  void contribute(dataplane::ForwardingTables& tables, const config::Config& config) const override;
  bool tick(bool workers_running) override {
    control_->tick(workers_running);
    return false;
  }
  void setup_worker(dataplane::WorkerContext& worker) override;
  void metrics(config::MetricsWriter& out, bool workers_running) override { control_->metrics(out, workers_running); }
  std::optional<dataplane::RestResource> resource(const dataplane::RestRequest& request) override;

 private:
  explicit QosModule(const dataplane::ModuleHost& host) : host_(host) {}

  const dataplane::ModuleHost& host_;
  std::unique_ptr<QosControl> control_;
  std::vector<std::unique_ptr<WorkerScheduler>> schedulers_;  // one per lane (workers, control lcore)
};

}  // namespace meridian::qos
