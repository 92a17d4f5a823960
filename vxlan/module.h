// The VXLAN VTEP as an engine module: its control side (control.h, a client
// of host/ for its underlay addresses and next hops), its stage (stage.h),
// its tables in every published version, and its views (/api/v1/vxlan/...,
// meridian_vxlan_*).
#pragma once

#include <memory>

#include "dataplane/module.h"
#include "vxlan/control.h"

namespace meridian::vxlan {

class VxlanModule final : public dataplane::Module {
 public:
  static std::unique_ptr<dataplane::Module> create(const dataplane::ModuleHost& host, std::string& error);

  const char* name() const override { return "vxlan"; }
  std::vector<dataplane::PlacedStage> stages() override;
  std::function<void()> prepare(const config::Config& running, const config::Config& next,
                                config::FieldErrors& errors) override;
  void contribute(dataplane::ForwardingTables& tables, const config::Config& config) const override;
  void published() override { control_->published(); }
  std::optional<uint16_t> overlay_udp_port(const config::Config& config) const override;
  std::optional<bool> send_into_overlay(uint32_t vni, const config::IpAddress& vtep,
                                        std::span<const uint8_t> frame) override;
  bool tick(bool) override { return control_->tick(); }
  void port_recreated(const dataplane::PortRuntime& port) override;
  void metrics(config::MetricsWriter& out, bool) override { control_->metrics(out); }
  std::optional<dataplane::RestResource> resource(const dataplane::RestRequest& request) override;

  /// The control side, for tests and benches.
  VxlanControl& control() { return *control_; }

 private:
  explicit VxlanModule(const dataplane::ModuleHost& host) : host_(host) {}
  std::vector<PortInfo> port_infos() const;

  const dataplane::ModuleHost& host_;
  std::unique_ptr<VxlanControl> control_;
  mutable std::shared_ptr<const dataplane::OverlayVtepSlots> vtep_slots_;  // for vtep_slots_tables_
  mutable std::shared_ptr<const VxlanTables> vtep_slots_tables_;
};

}  // namespace meridian::vxlan
