// The "multicast" section of the config document: per bridge domain (a VNI
// of the vxlan section) how IP multicast is forwarded. A bridge domain not
// listed floods multicast like broadcast (as before this section existed);
// one listed snoops by default: IGMP/MLD on its attachments are taken by
// the control lcore, and multicast data goes only to attachments whose hosts
// asked for it. Every part of it changes live.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/field_error.h"
#include "config/model.h"
#include "config/net_types.h"
#include "multicast_gw/router.h"

namespace meridian::config {

struct MulticastQuerier {
  bool enabled = true;
  /// Query source addresses. IPv4 0.0.0.0 (the default) is a snooping
  /// querier's address: hosts answer it, routers do not elect it. IPv6 must
  /// be link-local; by default the port's EUI-64 link-local address.
  IpAddress ipv4;
  std::optional<IpAddress> ipv6;
  bool operator==(const MulticastQuerier&) const = default;
};

/// Where a static subscription or a bandwidth budget applies: one of the
/// bridge domain's attachments (port, VLAN) or a remote VTEP of its flood list.
struct MulticastEgress {
  std::string port;  // an attachment when set
  unsigned vlan = 0;
  std::optional<IpAddress> vtep;  // else a remote VTEP
  bool operator==(const MulticastEgress&) const = default;
};
std::string to_string(const MulticastEgress& e);

/// (S,G) or, without a source, (*,G) forwarded to an egress that does not
/// signal (a receiver or edge without IGMP/MLD).
struct StaticSubscription {
  IpAddress group;
  std::optional<IpAddress> source;
  MulticastEgress to;
  bool operator==(const StaticSubscription&) const = default;
};

/// A flow rate for admission: the first flow whose group range holds the
/// group and whose source (if any) is the route's source.
struct MulticastFlow {
  IpPrefix group;
  std::optional<IpAddress> source;
  unsigned rate_kbps = 0;  // declared; with `measured`, the least it is charged
  /// Charged the highest rate it has been measured at (while its routes
  /// exist), at least `rate_kbps`.
  bool measured = false;
  bool operator==(const MulticastFlow&) const = default;
};

struct MulticastBudget {
  MulticastEgress egress;
  unsigned rate_kbps = 0;
  bool operator==(const MulticastBudget&) const = default;
};

struct MulticastBridgeDomain {
  unsigned vni = 0;
  std::string mode = "snoop";  // "snoop" or "flood"
  MulticastQuerier querier;
  unsigned igmp_version = 3;   // 1..3: the queries sent; older hosts are handled in any
  unsigned mld_version = 2;    // 1..2
  unsigned robustness = 2;
  unsigned query_interval_s = 125;
  unsigned query_response_interval_ms = 10000;
  unsigned last_member_query_interval_ms = 1000;
  unsigned last_member_query_count = 2;
  bool fast_leave = false;
  std::vector<mcast::SsmRange> ssm_ranges = mcast::default_ssm_ranges();
  unsigned max_groups = 1024;        // per attachment
  unsigned max_sources = 64;         // per group
  /// Roles in the overlay (docs/multicast.md): `ingress` queries the remote
  /// VTEPs of the flood list and sends IP multicast data from attachments only
  /// to those whose edges asked (not the whole flood list); `edge` reports
  /// its attachments' merged membership into the overlay, toward the VTEPs
  /// it heard a query from. A node may be both (the default).
  bool ingress = true;
  bool edge = true;
  /// Ingress role: the attachment toward the production network's
  /// multicast router (`port` and `vlan`). Only there does an upstream
  /// proxy report the overlay's membership, from the start and whether or
  /// not that router's query has been heard, and Meridian never queries
  /// there. Unset: any attachment where a router's query is heard.
  std::optional<MulticastEgress> upstream;
  std::vector<StaticSubscription> static_subscriptions;
  /// Per-flow bandwidth admission: declared flow rates, and per egress the
  /// multicast bandwidth it may carry (budgets; default_budget_kbps for the
  /// egresses not listed, 0: no limit). A join whose flow would exceed its
  /// egress's budget is refused for that egress (first come, first served).
  std::vector<MulticastFlow> flows;
  std::vector<MulticastBudget> budgets;
  unsigned default_budget_kbps = 0;
  bool operator==(const MulticastBridgeDomain&) const = default;
};

struct MulticastConfig {
  std::vector<MulticastBridgeDomain> bridge_domains;
  bool operator==(const MulticastConfig&) const = default;
  const MulticastBridgeDomain* bd(unsigned vni) const {
    for (const auto& b : bridge_domains) {
      if (b.vni == vni) return &b;
    }
    return nullptr;
  }
};

void parse_multicast(const nlohmann::json& j, const std::string& path, MulticastConfig& out, FieldErrors& errors);
nlohmann::json to_json(const MulticastConfig& mc);
/// Needs the vxlan section: every VNI is a bridge domain there, once here.
void validate_multicast(const MulticastConfig& mc, const Config& config, FieldErrors& errors, FieldErrors& warnings);

SectionSpec multicast_section_spec();
inline const MulticastConfig& multicast_section(const Config& c) { return c.section<MulticastConfig>("multicast"); }

}  // namespace meridian::config
