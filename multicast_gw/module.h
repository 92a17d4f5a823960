// The multicast gateway as an engine module: IGMP/MLD snooping on the
// attachments of the bridge domains its section lists (snooping.h), the
// stage that punts their IGMP/MLD, the multicast routes it puts in every
// table version for the VXLAN stage (dataplane/overlay_multicast.h), and
// its views (/api/v1/multicast/..., meridian_multicast_*).
#pragma once

#include <bitset>
#include <memory>

#include "dataplane/module.h"
#include "multicast_gw/snooping.h"

namespace meridian::mcast {

/// Which (port, VLAN) pairs snoop, for the stage.
struct SnoopedAttachments {
  std::array<std::shared_ptr<const std::bitset<4096>>, dataplane::kMaxPorts> vlans{};
  bool snoops(uint16_t port, uint16_t vlan) const { return port < vlans.size() && vlans[port] && (*vlans[port])[vlan]; }
};

class MulticastModule final : public dataplane::Module {
 public:
  static std::unique_ptr<dataplane::Module> create(const dataplane::ModuleHost& host, std::string& error);

  const char* name() const override { return "multicast"; }
  std::vector<dataplane::PlacedStage> stages() override;
  std::function<void()> prepare(const config::Config& running, const config::Config& next,
                                config::FieldErrors& errors) override;
  void contribute(dataplane::ForwardingTables& tables, const config::Config& config) const override;
  bool claim_punt(rte_mbuf* m, const net::PacketView& view) override;
  bool tick(bool) override;
  bool punts_handled() override;
  void metrics(config::MetricsWriter& out, bool) override;
  std::optional<dataplane::RestResource> resource(const dataplane::RestRequest& request) override;

  Snooping& snooping() { return *snooping_; }

 private:
  explicit MulticastModule(const dataplane::ModuleHost& host);
  Millis now_ms() const;
  std::vector<SnoopPort> ports() const;
  void commit(const config::Config& next);
  bool claim_overlay(rte_mbuf* m, const net::PacketView& view);

  const dataplane::ModuleHost& host_;
  std::unique_ptr<Snooping> snooping_;
  std::shared_ptr<const SnoopedAttachments> attachments_ = std::make_shared<SnoopedAttachments>();
  /// The routes with their remote VTEPs as the overlay's slots, for the
  /// pair (routes, slot lookup) they were resolved from.
  mutable std::shared_ptr<const dataplane::OverlayMulticast> resolved_;
  mutable std::shared_ptr<const dataplane::OverlayMulticast> resolved_from_;
  mutable uint64_t resolved_slots_ = 0;  // OverlayVtepSlots::generation
};

}  // namespace meridian::mcast
