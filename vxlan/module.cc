#include "vxlan/module.h"

#include <algorithm>
#include <cstring>

#include "config/log.h"
#include "net/wire.h"
#include "vxlan/drop_reasons.h"

namespace meridian::vxlan {

using dataplane::RestResource;

std::unique_ptr<dataplane::Module> VxlanModule::create(const dataplane::ModuleHost& host, std::string& error) {
  drop_id(Drop{});  // its drop reasons are listed from the start
  std::unique_ptr<VxlanModule> m(new VxlanModule(host));
  // The control side first: it owns the learn ring the stage posts to.
  m->control_ = std::make_unique<VxlanControl>(*host.presence, host.workers, host.qsbr, host.tsc_hz);
  if (error = m->control_->init(); !error.empty()) return nullptr;
  config::FieldErrors errors;
  auto pending = m->control_->prepare(config::vxlan_section(host.config), m->port_infos(), errors);
  if (!pending) {
    error = errors.empty() ? "vxlan: cannot prepare" : errors[0].path + ": " + errors[0].reason;
    return nullptr;
  }
  m->control_->commit(std::move(pending));
  return m;
}

std::vector<PortInfo> VxlanModule::port_infos() const {
  std::vector<PortInfo> out;
  for (const auto& p : host_.ports) {
    PortInfo i;
    i.name = p.name;
    i.id = p.port_id;
    std::memcpy(i.mac.bytes.data(), p.mac.addr_bytes, 6);
    i.mtu = p.mtu;
    out.push_back(i);
  }
  return out;
}

std::vector<dataplane::PlacedStage> VxlanModule::stages() {
  std::vector<dataplane::PlacedStage> out;
  out.push_back({dataplane::StagePlace::kForward, 0,
                 std::make_unique<VxlanStage>(host_.pool, control_->learn_ring(), host_.workers)});
  return out;
}

std::function<void()> VxlanModule::prepare(const config::Config&, const config::Config& next,
                                           config::FieldErrors& errors) {
  auto pending = control_->prepare(config::vxlan_section(next), port_infos(), errors);
  if (!pending) return nullptr;
  return [this, pending]() mutable { control_->commit(std::move(pending)); };
}

void VxlanModule::contribute(dataplane::ForwardingTables& tables, const config::Config&) const {
  std::shared_ptr<const VxlanTables> vx = control_->tables();
  tables.set<VxlanTables>(vx);
  // A new lookup only with new tables: the multicast module re-resolves its
  // routes' VTEPs when this changes.
  if (!vtep_slots_ || vtep_slots_tables_ != vx) {
    auto slots = std::make_shared<dataplane::OverlayVtepSlots>();
    slots->generation = vtep_slots_ ? vtep_slots_->generation + 1 : 1;
    slots->slot = [vx](const config::IpAddress& ip) {
      const uint16_t s = vx->vtep_index.find(ip.bytes.data(), ip.family == 6);
      return s == kNoSlot ? dataplane::OverlayVtepSlots::kNone : s;
    };
    vtep_slots_ = std::move(slots);
    vtep_slots_tables_ = vx;
  }
  tables.set<dataplane::OverlayVtepSlots>(vtep_slots_);
}

std::optional<bool> VxlanModule::send_into_overlay(uint32_t vni, const config::IpAddress& vtep,
                                                   std::span<const uint8_t> frame) {
  std::vector<uint8_t> out;
  const uint16_t port = control_->encapsulate(vni, vtep, frame, out);
  if (port == dataplane::kNoPort) return false;
  return host_.send_frame && host_.send_frame(port, out);
}

std::optional<uint16_t> VxlanModule::overlay_udp_port(const config::Config& config) const {
  return static_cast<uint16_t>(config::vxlan_section(config).vtep.udp_port);
}

void VxlanModule::port_recreated(const dataplane::PortRuntime& port) {
  // The port's MAC and sockets may be new: rebuild what depends on them.
  config::FieldErrors errors;
  if (auto pending = control_->prepare(config::vxlan_section(host_.config), port_infos(), errors)) control_->commit(std::move(pending));
  for (const auto& e : errors) {
    log::error("port", "after re-creating the port", {{"port", port.name}, {"path", e.path}, {"error", e.reason}});
  }
}

std::optional<RestResource> VxlanModule::resource(const dataplane::RestRequest& request) {
  using config::http::status;
  static const std::string kPrefix = "/api/v1/vxlan/";
  if (request.path.rfind(kPrefix, 0) != 0) return std::nullopt;
  const std::string what = request.path.substr(kPrefix.size());
  static const std::map<std::string, std::vector<std::string>> kParams = {
      {"fdb", {"vni", "mac"}}, {"neighbors", {"vni"}}, {"vteps", {}}, {"bridge_domains", {"vni"}},
      {"counters/clear", {"vni"}}};
  auto known = kParams.find(what);
  if (known == kParams.end()) return std::nullopt;
  const bool is_clear = what == "counters/clear";
  if (is_clear ? request.method != config::http::verb::post : request.method != config::http::verb::get) {
    return RestResource::not_allowed(is_clear ? "POST" : "GET, HEAD");
  }
  if (auto refused = dataplane::refuse_unknown_query(request, known->second)) return refused;
  std::optional<uint32_t> vni;
  if (auto refused = dataplane::read_vni_query(request, vni)) return refused;
  std::optional<config::MacAddress> mac;
  if (auto it = request.query.find("mac"); it != request.query.end()) {
    mac = config::parse_mac(it->second);
    if (!mac) return RestResource::error(status::bad_request, "?mac", "mac: expected a MAC address like 02:00:00:00:00:01");
  }
  if (vni && !control_->has_vni(*vni)) {
    return RestResource::error(status::not_found, "?vni", "no bridge domain with VNI " + std::to_string(*vni));
  }
  if (what == "fdb") return RestResource{status::ok, control_->fdb_json(vni, mac)};
  if (what == "neighbors") return RestResource{status::ok, control_->neighbors_json(vni)};
  if (what == "vteps") return RestResource{status::ok, control_->vteps_json()};
  if (what == "bridge_domains") return RestResource{status::ok, control_->bridge_domains_json(vni)};
  control_->clear(vni);
  log::info("vxlan", "counters cleared", {{"vni", vni ? nlohmann::json(*vni) : nlohmann::json("all")}});
  return RestResource{status::ok, {{"cleared", vni ? nlohmann::json(*vni) : nlohmann::json("all")}}};
}

}  // namespace meridian::vxlan
