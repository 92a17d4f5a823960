// The "qos" section of the config document: one HTB class tree per egress
// port, with its classifier rules. Rates and sizes are written as for `tc`
// (units.h) and stored as bit/s and bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/field_error.h"
#include "config/model.h"
#include "config/net_types.h"

namespace meridian::config {

/// RED-like ECN marking of ECT packets on the leaf's queue bytes.
struct QosEcn {
  uint64_t kmin_bytes = 0;
  uint64_t kmax_bytes = 0;
  double pmax = 0.1;
  bool operator==(const QosEcn&) const = default;
};

struct QosClass {
  std::string id;
  std::string parent;  // empty: the root
  uint64_t rate_bps = 0;
  std::optional<uint64_t> ceil_bps;     // default: rate
  std::optional<uint64_t> burst_bytes;  // default: 1 ms at rate + 1600 bytes
  std::optional<uint64_t> cburst_bytes; // default: 1 ms at ceil + 1600 bytes
  unsigned prio = 0;                    // leaves only, 0 is served first
  std::optional<unsigned> quantum;      // default: proportional to rate among siblings
  unsigned overhead = 24;               // preamble + IFG + FCS
  unsigned limit_packets = 1000;
  std::optional<uint64_t> limit_bytes;
  std::optional<unsigned> dscp_remark;
  std::optional<QosEcn> ecn;
  bool operator==(const QosClass&) const = default;
};

/// An inclusive L4 port range ("4791" or "1000-2000").
struct PortRange {
  uint16_t first = 0;
  uint16_t last = 65535;
  bool operator==(const PortRange&) const = default;
};

/// A 5-tuple match; unset fields match anything.
struct FlowMatch {
  std::optional<uint8_t> protocol;  // "tcp", "udp", "icmp", "icmpv6" or a number
  std::optional<IpPrefix> src;
  std::optional<IpPrefix> dst;
  std::optional<PortRange> src_ports;
  std::optional<PortRange> dst_ports;
  bool operator==(const FlowMatch&) const = default;
};

/// One classifier rule: every given field must match. Rules are tried in order.
struct QosRule {
  std::string class_id;
  std::vector<unsigned> dscp;  // any of
  std::vector<unsigned> pcp;   // any of (tagged frames only)
  std::optional<uint32_t> vni;
  std::optional<std::string> ingress_port;
  FlowMatch outer;             // the packet as it leaves (the outer headers when encapsulated)
  std::optional<FlowMatch> inner;  // the inner packet of a VXLAN frame
  bool operator==(const QosRule&) const = default;
};

struct QosPort {
  std::string port;
  /// Strict: children whose rates add up to more than their parent's rate are
  /// an error (otherwise a warning).
  bool strict = false;
  std::string default_class;
  std::vector<QosClass> classes;
  std::vector<QosRule> rules;
  bool operator==(const QosPort&) const = default;
};

struct QosConfig {
  std::vector<QosPort> ports;
  bool operator==(const QosConfig&) const = default;
};

inline constexpr size_t kMaxQosClasses = 131072;
inline constexpr size_t kMaxQosRules = 4096;
inline constexpr unsigned kMaxQosDepth = 8;

void parse_qos(const nlohmann::json& j, const std::string& path, QosConfig& out, FieldErrors& errors);
/// Tree rules (ids, parents, cycles, depth, ceil >= rate, default class,
/// rule targets, ports). Over-subscription goes to `errors` in strict mode,
/// else to `warnings`.
void validate_qos(const QosConfig& qos, const Config& config, FieldErrors& errors, FieldErrors& warnings);
nlohmann::json to_json(const QosConfig& qos);

/// The section's registration (config/section.h) and typed access.
SectionSpec qos_section_spec();
inline const QosConfig& qos_section(const Config& c) { return c.section<QosConfig>("qos"); }
inline QosConfig& qos_section(Config& c) { return c.section<QosConfig>("qos"); }

}  // namespace meridian::config
