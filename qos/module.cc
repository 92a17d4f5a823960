#include "qos/module.h"

#include <rte_cycles.h>

#include "qos/drop_reasons.h"

namespace meridian::qos {

using dataplane::RestResource;

std::unique_ptr<dataplane::Module> QosModule::create(const dataplane::ModuleHost& host, std::string& error) {
  drop_id(Drop{});  // its drop reasons are listed from the start
  std::unique_ptr<QosModule> m(new QosModule(host));
  // One egress runtime per port; trees may hold at most half the buffers,
  // so shaping cannot starve reception.
  std::vector<QosPortInfo> ports;
  for (const auto& p : host.ports) ports.push_back({p.name, p.port_id});
  m->control_ = std::make_unique<QosControl>(std::move(ports), host.workers, host.config.dataplane.mbufs / 2,
                                             TscClock(rte_rdtsc(), host.tsc_hz));
  config::FieldErrors errors;
  // The classifier finds packets inside the overlay by its UDP port.
  auto plans = m->control_->prepare(config::qos_section(host.config), host.overlay_udp_port(host.config), errors);
  if (!plans) {
    error = errors.empty() ? "qos: cannot prepare" : errors[0].path + ": " + errors[0].reason;
    return nullptr;
  }
  m->control_->commit(plans);
  return m;
}

std::function<void()> QosModule::prepare(const config::Config&, const config::Config& next,
                                         config::FieldErrors& errors) {
  auto plans = control_->prepare(config::qos_section(next), host_.overlay_udp_port(next), errors);
  if (!plans) return nullptr;
  return [this, plans] { control_->commit(plans); };
}

void QosModule::contribute(dataplane::ForwardingTables& tables, const config::Config&) const {
  auto qos = std::make_shared<const QosTables>(QosTables{control_->plans()});
  for (size_t p = 0; p < qos->plans.size(); ++p) {
    tables.shaped[p] = qos->plans[p] != nullptr;
    tables.any_shaped = tables.any_shaped || tables.shaped[p];
  }
  tables.set<QosTables>(std::move(qos));
}

void QosModule::setup_worker(dataplane::WorkerContext& worker) {
  schedulers_.push_back(
      std::make_unique<WorkerScheduler>(control_->egress(), control_->owned_by(worker.index), control_->clock()));
  worker.scheduler = schedulers_.back().get();  // the one slot (dataplane/port_scheduler.h)
}

std::optional<RestResource> QosModule::resource(const dataplane::RestRequest& request) {
  using config::http::status;
  if (request.path != "/api/v1/qos/classes") return std::nullopt;
  if (request.method != config::http::verb::get) return RestResource::not_allowed("GET, HEAD");
  std::optional<uint16_t> port;
  for (const auto& [key, value] : request.query) {
    if (key != "port") return RestResource::error(status::bad_request, "?" + key, "unknown query parameter '" + key + "'");
    const dataplane::PortRuntime* p = dataplane::find_port(host_.ports, value);
    if (!p) return RestResource::error(status::not_found, "?port", "no port named '" + value + "'");
    port = p->port_id;
    if (!control_->shaped(*port)) {
      return RestResource::error(status::not_found, "?port", "port '" + value + "' has no QoS tree");
    }
  }
  return RestResource{status::ok, control_->classes_json(port, request.workers_running)};
}

}  // namespace meridian::qos
