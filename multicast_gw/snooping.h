// IGMP/MLD snooping on the attachments of the bridge domains the multicast
// section lists (control lcore): one IGMP and one MLD MembershipRouter per
// attachment, fed by the frames the multicast stage punts, whose queries go
// out of that attachment; their memberships become the bridge domains'
// multicast routes (dataplane/overlay_multicast.h) in the next table version.
// A query from another router is relayed to the bridge domain's other
// attachments, and reports are relayed toward the attachment it sits on, so
// that a querier elsewhere still hears the hosts (RFC 4541 §2.1.1).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/model.h"
#include "dataplane/overlay_multicast.h"
#include "multicast_gw/model.h"
#include "multicast_gw/router.h"

namespace meridian::mcast {

/// What the snooping side needs of the engine.
struct SnoopingIo {
  /// Sends a frame on a port (tagged with `vlan` when not 0).
  std::function<bool(uint16_t port, std::span<const uint8_t> frame)> send;
  /// Counts a refused frame on its port under a multicast drop reason name.
  std::function<void(uint16_t port, DecodeStatus why)> refused;
};

/// One port of the appliance, as the snooping side knows it.
struct SnoopPort {
  std::string name;
  uint16_t port_id = 0;
  uint8_t mac[6] = {};
};

struct Attachment {
  dataplane::BridgePort where{};
  std::string port_name;
  uint8_t mac[6] = {};
  IpAddress link_local;  // our MLD query source on this attachment
  MembershipRouter igmp, mld;
  /// Another multicast router was heard here (a query), per family [0] IPv4,
  /// [1] IPv6, until: a router port (RFC 4541), which gets the reports and
  /// every group's data.
  std::array<Millis, 2> router_until{};
  std::array<bool, 2> router_port{};  // as last published
  Attachment(dataplane::BridgePort w, std::string name, const uint8_t* port_mac, IpAddress ll, RouterConfig igmp_cfg,
             RouterConfig mld_cfg, Millis now);
  MembershipRouter& router(uint8_t family) { return family == 4 ? igmp : mld; }
};

struct SnoopedDomain {
  uint32_t vni = 0;
  config::MulticastBridgeDomain cfg;
  std::vector<std::unique_ptr<Attachment>> attachments;
};

class Snooping {
 public:
  explicit Snooping(SnoopingIo io) : io_(std::move(io)) {}

  /// The snooped domains under `next` (the multicast and vxlan sections):
  /// an attachment whose settings did not change keeps its state.
  void apply(const config::Config& next, const std::vector<SnoopPort>& ports, Millis now);
  /// A punted IGMP/MLD frame from `port` (VLAN `vlan`); true when taken
  /// (applied, or refused and counted). IPv6 that is not MLD is not taken.
  bool handle(uint16_t port, uint16_t vlan, std::span<const uint8_t> frame, Millis now);
  /// Timers and queries; true when the routes changed (a new table version is due).
  bool tick(Millis now);
  /// True when `port`/`vlan` is an attachment of a snooping domain.
  bool snoops(uint16_t port, uint16_t vlan) const;

  /// The routes of every domain, for the next table version.
  std::shared_ptr<const dataplane::OverlayMulticast> tables() const { return tables_; }

  nlohmann::json groups_json(uint8_t family, std::optional<uint32_t> vni, Millis now) const;
  nlohmann::json querier_json(Millis now) const;
  nlohmann::json routes_json() const;
  const std::vector<SnoopedDomain>& domains() const { return domains_; }
  uint64_t refused(DecodeStatus s) const { return refused_[static_cast<size_t>(s)]; }

 private:
  Attachment* find(uint16_t port, uint16_t vlan, SnoopedDomain** domain = nullptr);
  void send_queries(Attachment& a, const RouterOutput& out);
  void relay(const SnoopedDomain& d, const Attachment& from, std::span<const uint8_t> frame, bool to_querier_only,
             uint8_t family);
  void rebuild();

  SnoopingIo io_;
  std::vector<SnoopedDomain> domains_;
  std::shared_ptr<const dataplane::OverlayMulticast> tables_ = std::make_shared<dataplane::OverlayMulticast>();
  bool dirty_ = false;
  Millis last_now_ = 0;
  std::array<uint64_t, 16> refused_{};
};

/// A router's settings from a bridge domain's config.
RouterConfig router_config(const config::MulticastBridgeDomain& b, uint8_t family, const IpAddress& address);

}  // namespace meridian::mcast
