// The "vxlan" section of the config document: the local VTEP (underlay
// interfaces, static routes, encapsulation settings) and the bridge domains.
// Every part of it changes live.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/field_error.h"
#include "config/model.h"
#include "config/net_types.h"

namespace meridian::config {

/// One underlay port of the local VTEP, with its own addresses.
struct UnderlayInterface {
  std::string port;
  std::optional<IpPrefix> ipv4;  // host address with its on-link prefix, e.g. 10.1.0.1/24
  std::optional<IpPrefix> ipv6;
  bool operator==(const UnderlayInterface&) const = default;
};

/// Static underlay route: remote VTEPs inside `prefix` are reached via `next_hop`,
/// which must be on-link on some underlay interface.
struct UnderlayRoute {
  IpPrefix prefix;
  IpAddress next_hop;
  bool operator==(const UnderlayRoute&) const = default;
};

/// A next hop whose MAC is configured instead of resolved (static ARP/ND).
struct UnderlayNeighbor {
  IpAddress ip;
  MacAddress mac;
  bool operator==(const UnderlayNeighbor&) const = default;
};

struct VtepConfig {
  unsigned udp_port = 4789;
  /// Outer UDP source ports are drawn from a hash of the inner flow (RFC 7348 §5).
  unsigned source_port_min = 49152;
  unsigned source_port_max = 65535;
  unsigned ttl = 64;
  /// Outer DSCP: copied from the inner IP header when unset, else this value.
  std::optional<unsigned> dscp;
  std::vector<UnderlayInterface> interfaces;
  std::vector<UnderlayRoute> routes;
  std::vector<UnderlayNeighbor> neighbors;
  /// Answer a unicast frame too big for the underlay with ICMP Fragmentation
  /// Needed (IPv4 with DF) / Packet Too Big (IPv6) to the inner source.
  bool icmp_too_big = false;
  /// Head-end replication: a replica of an inner frame up to this many
  /// bytes is one buffer, outer headers and a copy of the frame; a larger
  /// one (or with 0, every one) is a header buffer chained to the shared
  /// frame, which is never copied (docs/benchmarks.md: copying is about a
  /// fifth cheaper per replica at 1,374 bytes where memory bandwidth is not
  /// the limit).
  unsigned replica_copy_max_bytes = 2048;
  /// Seconds a resolved underlay neighbour stays valid before re-resolution.
  unsigned neighbor_timeout_seconds = 300;
  bool operator==(const VtepConfig&) const = default;
};

/// An access port (and VLAN, 0 = untagged) in a bridge domain.
struct Attachment {
  std::string port;
  unsigned vlan = 0;
  auto operator<=>(const Attachment&) const = default;
};

/// A MAC pinned either to an attachment or to a remote VTEP.
struct StaticFdbEntry {
  MacAddress mac;
  std::optional<Attachment> local;
  std::optional<IpAddress> vtep;
  bool operator==(const StaticFdbEntry&) const = default;
};

struct StaticNeighbor {
  IpAddress ip;
  MacAddress mac;
  bool operator==(const StaticNeighbor&) const = default;
};

struct BridgeDomainConfig {
  unsigned vni = 0;
  std::string name;
  std::vector<Attachment> attachments;
  bool learning = true;
  unsigned aging_seconds = 300;
  unsigned max_fdb_entries = 16384;
  bool arp_suppression = true;
  /// Remote VTEPs that receive a head-end replica of every BUM frame.
  std::vector<IpAddress> flood;
  std::vector<StaticFdbEntry> static_fdb;
  std::vector<StaticNeighbor> static_neighbors;
  /// Decapsulate from (and learn) remote VTEPs that are neither on the flood
  /// list nor named by a static FDB entry. Off: such frames are dropped as
  /// vxlan_unknown_vtep, so an arbitrary underlay source cannot inject
  /// frames or move MACs.
  bool remote_vtep_learning = false;
  /// A MAC learned on a local attachment and seen there within this many
  /// seconds does not move to a remote VTEP (mac_move_held); 0: moves at once.
  unsigned mac_move_hold_seconds = 5;
  bool operator==(const BridgeDomainConfig&) const = default;
};

struct VxlanConfig {
  VtepConfig vtep;
  std::vector<BridgeDomainConfig> bridge_domains;
  bool operator==(const VxlanConfig&) const = default;
};

inline constexpr unsigned kMaxBridgeDomains = 4096;
/// Distinct remote VTEPs all flood lists and static FDB entries may name.
inline constexpr unsigned kMaxConfiguredVteps = 4096;
inline constexpr unsigned kMaxVni = 0xffffff;

/// Parses the section at `path` (structure and value ranges only).
void parse_vxlan(const nlohmann::json& j, const std::string& path, VxlanConfig& out, FieldErrors& errors);
nlohmann::json to_json(const VxlanConfig& vxlan);

/// Rules that need the rest of the document: ports exist, a port is either
/// underlay, access or cross-connected, attachments and VNIs are unique,
/// next hops are on-link, flood VTEPs have an underlay of their family.
void validate_vxlan(const VxlanConfig& vxlan, const Config& config, FieldErrors& errors, FieldErrors& warnings);

/// The section's registration (config/section.h) and typed access.
SectionSpec vxlan_section_spec();
inline const VxlanConfig& vxlan_section(const Config& c) { return c.section<VxlanConfig>("vxlan"); }
inline VxlanConfig& vxlan_section(Config& c) { return c.section<VxlanConfig>("vxlan"); }

}  // namespace meridian::config
