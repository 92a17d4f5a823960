#include "ptp/module.h"

#include <algorithm>

#include <rte_ethdev.h>

#include "config/log.h"
#include "net/wire.h"
#include "vxlan/model.h"

namespace meridian::ptp {

using dataplane::RestResource;

std::unique_ptr<dataplane::Module> PtpModule::create(const dataplane::ModuleHost& host, std::string& error) {
  std::unique_ptr<PtpModule> m(new PtpModule(host));
  // Frames the PTP punt stage hands over carry its Rx timestamp flag.
  RxTimestampField rx_timestamp;
  if (!register_rx_timestamp(rx_timestamp)) {
    error = "cannot register the mbuf Rx timestamp field for PTP";
    return nullptr;
  }
  m->io_ = PtpServiceIo{host.pool, host.transmit, rx_timestamp, host.tsc_hz};
  if (config::ptp_section(host.config).enabled()) {
    config::FieldErrors errors;
    m->service_ = PtpService::create(config::ptp_section(host.config), m->bindings(), m->io_, nullptr, errors);
    if (!m->service_) {
      error = errors.empty() ? "ptp: cannot start" : errors[0].path + ": " + errors[0].reason;
      return nullptr;
    }
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
  return [this, created] {
    service_ = created;
    parked_.reset();
  };
}

void PtpModule::contribute(dataplane::ForwardingTables& t, const config::Config& config) const {
  for (const auto& pp : config::ptp_section(config).ports) {
    for (const auto& p : host_.ports) {
      if (p.name != pp.port || p.port_id >= dataplane::kMaxPorts) continue;
      t.ptp_port[p.port_id] = true;
      if (pp.address) {
        t.ptp_address_family[p.port_id] = pp.address->family;
        t.ptp_address[p.port_id] = pp.address->bytes;
      }
    }
  }
  t.ptp_enabled = config::ptp_section(config).enabled();
  t.ptp_tc_enabled = config::ptp_section(config).transparent_clock;
  // The transparent clock also corrects PTP inside VXLAN to this UDP port.
  t.ptp_tc_vxlan_port = static_cast<uint16_t>(config::vxlan_section(config).vtep.udp_port);
}

bool PtpModule::claim_punt(rte_mbuf* m, const net::PacketView& view) {
  // PTP frames from the punt stage, and ARP/ND for the PTP ports' addresses.
  const uint16_t type = view.ethertype;
  const bool candidate = type == net::kEtherPtp || type == net::kEtherIpv4 || type == net::kEtherIpv6 || type == net::kEtherArp;
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
  if (service_ && port.started && runs_on(port)) parked_ = std::move(service_);  // before its packet socket closes
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
  using config::Labels;
  if (service_) service_->metrics(out);
  if (!tc_) return;
  const auto tc = tc_->totals();
  out.counter("meridian_ptp_tc_corrected_total", "Forwarded PTP messages the transparent clock corrected, by kind");
  out.sample(Labels{{"kind", "event"}}, tc.corrected);
  out.sample(Labels{{"kind", "follow_up"}}, tc.followups_corrected);
  out.sample(Labels{{"kind", "delay_resp"}}, tc.delay_resps_corrected);
  out.counter("meridian_ptp_tc_follow_up_unmatched_total", "Forwarded Follow_Ups whose Sync residence was not found");
  out.sample(Labels{}, tc.followups_unmatched);
  out.counter("meridian_ptp_tc_delay_resp_unmatched_total",
              "Forwarded Delay_Resps whose Delay_Req residence was not found (the request took another path)");
  out.sample(Labels{}, tc.delay_resps_unmatched);
  out.counter("meridian_ptp_tc_ingress_stamps_total",
              "Transparent-clock residences by receive timestamp: the kernel's, or the poll round's TSC");
  out.sample(Labels{{"source", "kernel"}}, tc.kernel_ingress);
  out.sample(Labels{{"source", "tsc"}}, tc.tsc_ingress);
  out.counter("meridian_ptp_tc_egress_stamps_total",
              "Transparent-clock residences by departure: the driver's stamp of the TC's own send, the packet "
              "tap's send stamp, or the stage");
  out.sample(Labels{{"source", "driver"}}, tc.driver_egress);
  out.sample(Labels{{"source", "kernel"}}, tc.kernel_egress);
  out.sample(Labels{{"source", "stage"}}, tc.stage_egress);
  out.counter("meridian_ptp_tc_egress_sends_total",
              "Forwarded two-step event messages bound for a net_af_packet port, by what the transparent clock's "
              "stamping socket did: sent, or left to the worker's TX queue (failed, unavailable, kept_in_order)");
  out.sample(Labels{{"result", "sent"}}, tc.egress_sent);
  out.sample(Labels{{"result", "failed"}}, tc.egress_send_failed);
  out.sample(Labels{{"result", "unavailable"}}, tc.egress_unavailable);
  out.sample(Labels{{"result", "kept_in_order"}}, tc.egress_kept_in_order);
}

std::optional<RestResource> PtpModule::resource(const dataplane::RestRequest& request) {
  using config::http::status;
  if (request.path != "/api/v1/ptp") return std::nullopt;
  if (request.method != config::http::verb::get) return RestResource::not_allowed("GET, HEAD");
  const auto tc = tc_ ? tc_->totals() : PtpTransparentStage::Counters{};
  const bool tc_enabled = config::ptp_section(host_.config).transparent_clock;
  nlohmann::json tc_json{{"enabled", tc_enabled},
                         {"corrected", tc.corrected},
                         {"follow_ups_corrected", tc.followups_corrected},
                         {"follow_ups_unmatched", tc.followups_unmatched},
                         {"delay_resps_corrected", tc.delay_resps_corrected},
                         {"delay_resps_unmatched", tc.delay_resps_unmatched},
                         {"kernel_ingress", tc.kernel_ingress},
                         {"tsc_ingress", tc.tsc_ingress},
                         {"driver_egress", tc.driver_egress},
                         {"kernel_egress", tc.kernel_egress},
                         {"stage_egress", tc.stage_egress},
                         {"egress_sent", tc.egress_sent},
                         {"egress_send_failed", tc.egress_send_failed},
                         {"egress_unavailable", tc.egress_unavailable},
                         {"egress_kept_in_order", tc.egress_kept_in_order}};
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
