#include "ptp/module.h"

#include <algorithm>

#include <rte_ethdev.h>

#include "config/log.h"
#include "net/wire.h"

namespace meridian::ptp {

using dataplane::RestResource;

std::unique_ptr<dataplane::Module> PtpModule::create(const dataplane::ModuleHost& host, std::string& error) {
  drop_id(Drop{});  // its drop reasons are listed from the start
  std::unique_ptr<PtpModule> m(new PtpModule(host));
  // Frames the PTP punt stage hands over carry its Rx timestamp flag.
  RxTimestampField rx_timestamp;
  if (!register_rx_timestamp(rx_timestamp)) {
    error = "cannot register the mbuf Rx timestamp field for PTP";
    return nullptr;
  }
  m->io_ = PtpServiceIo{host.pool, host.transmit, rx_timestamp, host.tsc_hz, host.control_counters, host.presence};
  if (config::ptp_section(host.config).enabled()) {
    config::FieldErrors errors;
    m->service_ = PtpService::create(config::ptp_section(host.config), m->bindings(), m->io_, nullptr, errors);
    if (!m->service_) {
      error = errors.empty() ? "ptp: cannot start" : errors[0].path + ": " + errors[0].reason;
      return nullptr;
    }
    m->service_->attach_to_host();
  }
  return m;
}

std::vector<dataplane::PlacedStage> PtpModule::stages() {
  std::vector<PtpTransparentStage::KernelPort> kernel_ports;  // by port id: the TC's kernel stamps
  for (const auto& p : host_.ports) {
    if (kernel_ports.size() <= p.port_id) kernel_ports.resize(p.port_id + 1u);
    kernel_ports[p.port_id] = {dataplane::linux_interface(p), p.driver == "net_af_packet"};
  }
  auto tc = std::make_unique<PtpTransparentStage>(host_.workers, host_.tsc_hz, std::move(kernel_ports));
  tc_ = tc.get();
  std::vector<dataplane::PlacedStage> out;
  out.push_back({dataplane::StagePlace::kIngress, 10, std::make_unique<PtpPuntStage>(io_.rx_timestamp)});
  out.push_back({dataplane::StagePlace::kIngress, 20, std::move(tc)});
  out.push_back({dataplane::StagePlace::kEgress, 0, std::make_unique<PtpTransparentEgressStage>(*tc_)});
  return out;
}

std::vector<PtpPortBinding> PtpModule::bindings() const {
  std::vector<PtpPortBinding> out;
  for (const auto& p : host_.ports) {
    if (!p.started) continue;
    PtpPortBinding b;
    b.name = p.name;
    b.port_id = p.port_id;
    b.linux_interface = dataplane::linux_interface(p);
    b.kernel_tx_socket = p.kernel_tx_socket;
    rte_ether_addr mac{};
    if (rte_eth_macaddr_get(p.port_id, &mac) == 0) std::copy(mac.addr_bytes, mac.addr_bytes + 6, b.mac.begin());
    out.push_back(b);
  }
  return out;
}

std::function<void()> PtpModule::prepare(const config::Config& running, const config::Config& next,
                                         config::FieldErrors& errors) {
  // The instance restarts on any change of the section; the clock carries
  // over, so time and frequency do not jump.
  if (config::ptp_section(next) == config::ptp_section(running)) return nullptr;
  std::shared_ptr<PtpService> created;
  if (config::ptp_section(next).enabled()) {
    created = PtpService::create(config::ptp_section(next), bindings(), io_, service_ ? service_.get() : parked_.get(), errors);
    if (!created) return nullptr;
  }
  // The commit hands the service over (the function may outlive the engine).
  return [this, created]() mutable {
    if (created) created->attach_to_host();
    service_ = std::move(created);
    parked_.reset();
  };
}

void PtpModule::contribute(dataplane::ForwardingTables& t, const config::Config& config) const {
  auto ptp = std::make_shared<PtpTables>();
  for (const auto& pp : config::ptp_section(config).ports) {
    for (const auto& p : host_.ports) {
      if (p.name != pp.port || p.port_id >= dataplane::kMaxPorts) continue;
      ptp->port[p.port_id] = true;
      if (pp.address) {
        ptp->address_family[p.port_id] = pp.address->family;
        ptp->address[p.port_id] = pp.address->bytes;
      }
    }
  }
  ptp->enabled = config::ptp_section(config).enabled();
  ptp->tc_enabled = config::ptp_section(config).transparent_clock;
  t.set<PtpTables>(std::move(ptp));
}

bool PtpModule::claim_punt(rte_mbuf* m, const net::PacketView& view) {
  // PTP frames from the punt stage (host/ answers the ports' ARP/ND).
  const uint16_t type = view.ethertype;
  const bool candidate = type == net::kEtherPtp || type == net::kEtherIpv4 || type == net::kEtherIpv6;
  return candidate && service_ && service_->handle_punt(m);
}

bool PtpModule::tick(bool) {
  if (service_) service_->tick();
  return false;
}

void PtpModule::links_polled() {
  if (parked_ && std::chrono::steady_clock::now() >= retry_at_) resume();
}

bool PtpModule::runs_on(const dataplane::PortRuntime& port) const {
  const auto& ports = config::ptp_section(host_.config).ports;
  return std::any_of(ports.begin(), ports.end(),
                     [&port](const config::PtpPortConfig& c) { return c.port == port.name; });
}

void PtpModule::port_closing(const dataplane::PortRuntime& port) {
  if (service_ && port.started && runs_on(port)) {
    parked_ = std::move(service_);  // before its packet socket closes
    parked_->detach_from_host();
  }
}

void PtpModule::port_recreated(const dataplane::PortRuntime& port) {
  if (tc_) tc_->reopen_port(port.port_id);
}

void PtpModule::resume() {
  // Waits for every PTP port whose device was closed; one still offline but
  // not yet closed is no obstacle (its own re-creation pauses PTP again).
  if (std::any_of(host_.ports.begin(), host_.ports.end(),
                  [this](const dataplane::PortRuntime& q) { return !q.started && runs_on(q); })) {
    return;
  }
  config::FieldErrors errors;
  if (auto next = PtpService::create(config::ptp_section(host_.config), bindings(), io_, parked_.get(), errors)) {
    next->attach_to_host();
    service_ = std::move(next);
    parked_.reset();
    retry_backoff_ = std::chrono::milliseconds(0);
    log::info("ptp", "resumed after the port's device was re-created");
    return;
  }
  retry_backoff_ = std::clamp<std::chrono::milliseconds>(retry_backoff_ * 2, std::chrono::seconds(1),
                                                         std::chrono::seconds(30));
  retry_at_ = std::chrono::steady_clock::now() + retry_backoff_;
  for (const auto& e : errors) {
    log::error("ptp", "cannot resume; retrying",
               {{"path", e.path}, {"error", e.reason}, {"retry_in_ms", retry_backoff_.count()}});
  }
}

void PtpModule::metrics(config::MetricsWriter& out, bool) {
  if (service_) service_->metrics(out);
  if (!tc_) return;
  dataplane::write_counters<PtpTransparentStage::Counters>(out, tc_->totals());
}

std::optional<RestResource> PtpModule::resource(const dataplane::RestRequest& request) {
  using config::http::status;
  if (request.path != "/api/v1/ptp") return std::nullopt;
  if (request.method != config::http::verb::get) return RestResource::not_allowed("GET, HEAD");
  const bool tc_enabled = config::ptp_section(host_.config).transparent_clock;
  nlohmann::json tc_json = dataplane::counters_json<PtpTransparentStage::Counters>(
      tc_ ? tc_->totals() : PtpTransparentStage::Counters::Totals{});
  tc_json["enabled"] = tc_enabled;
  if (!service_ && parked_) {
    return RestResource::error(status::service_unavailable, "/ptp", "PTP is paused while a port's device is re-created");
  }
  if (!service_) {
    if (tc_enabled) {
      return RestResource{status::ok, {{"transparent_clock", tc_json}, {"ports", nlohmann::json::array()}}};
    }
    return RestResource::error(status::not_found, "/ptp", "PTP is not configured (no ptp ports, no transparent clock)");
  }
  nlohmann::json body = service_->status();
  body["transparent_clock"] = tc_json;
  return RestResource{status::ok, body};
}

}  // namespace meridian::ptp
