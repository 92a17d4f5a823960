// PTP as an engine module: the service (ordinary/boundary clock) on the
// control lcore, the punt stage that stamps PTP frames on arrival, the
// end-to-end transparent clock on forwarded PTP, and their views
// (/api/v1/ptp, meridian_ptp_*).
#pragma once

#include <chrono>
#include <memory>

#include "dataplane/module.h"
#include "ptp/service.h"
#include "ptp/stage.h"

namespace meridian::ptp {

class PtpModule final : public dataplane::Module {
 public:
  static std::unique_ptr<dataplane::Module> create(const dataplane::ModuleHost& host, std::string& error);

  const char* name() const override { return "ptp"; }
  std::vector<dataplane::PlacedStage> stages() override;
  std::function<void()> prepare(const config::Config& running, const config::Config& next,
                                config::FieldErrors& errors) override;
  void contribute(dataplane::ForwardingTables& tables, const config::Config& config) const override;
  bool claim_punt(rte_mbuf* m, const net::PacketView& view) override;
  void links_polled() override;
  bool tick(bool workers_running) override;
  void port_closing(const dataplane::PortRuntime& port) override;
  void port_recreated(const dataplane::PortRuntime& port) override;
  void metrics(config::MetricsWriter& out, bool workers_running) override;
  std::optional<dataplane::RestResource> resource(const dataplane::RestRequest& request) override;

 private:
  explicit PtpModule(const dataplane::ModuleHost& host) : host_(host) {}
  std::vector<PtpPortBinding> bindings() const;
  /// Whether the PTP config runs on `port`.
  bool runs_on(const dataplane::PortRuntime& port) const;
  /// Restarts the parked service (clock kept) once none of its ports is
  /// closed; retried after 1 s doubling to 30 s when it cannot start.
  void resume();

  const dataplane::ModuleHost& host_;
  PtpServiceIo io_;
  std::shared_ptr<PtpService> service_;
  /// The service while a port's device is re-created: it holds the
  /// device's packet socket (send stamps), so it pauses before the device
  /// closes and resumes, clock kept, once the ports are back.
  std::shared_ptr<PtpService> parked_;
  std::chrono::steady_clock::time_point retry_at_{};
  std::chrono::milliseconds retry_backoff_{0};
  const PtpTransparentStage* tc_ = nullptr;  // owned by the engine's pipeline
};

}  // namespace meridian::ptp
