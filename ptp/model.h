// The "ptp" section of the config document: the PTP instance (profile,
// identity, priorities, servo, reference) and its ports. Values left out
// come from the profile (ptp/profile.h). Changes apply live by restarting
// the PTP instance; the clock keeps its time and frequency across them.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/field_error.h"
#include "config/model.h"
#include "config/net_types.h"

namespace meridian::config {

struct PtpPortConfig {
  std::string port;
  std::string transport = "udp_ipv4";   // udp_ipv4 | udp_ipv6 | l2
  std::optional<IpAddress> address;     // our address on the link (UDP transports)
  std::optional<std::string> delay_mechanism;  // e2e | p2p (profile default)
  std::optional<int> log_announce_interval;
  std::optional<int> log_sync_interval;
  std::optional<int> log_min_delay_req_interval;
  std::optional<unsigned> announce_receipt_timeout;
  unsigned local_priority = 128;
  bool master_only = false;
  int delay_asymmetry_ns = 0;
  int ingress_latency_ns = 0;
  int egress_latency_ns = 0;
  /// Where event timestamps come from: "kernel" (the kernel's software
  /// stamps through a packet socket on the port's Linux interface: needs a
  /// net_af_packet or net_tap port with iface=), "tsc" (the poll round's
  /// TSC and the TSC before the send), "auto" (kernel where possible).
  std::string timestamping = "auto";
  /// Unicast client (G.8275.2, ptp4l's unicast_master_table): the masters
  /// this port asks for Announce, Sync and Delay_Resp. Empty: multicast.
  std::vector<IpAddress> unicast_masters;
  bool operator==(const PtpPortConfig&) const = default;
};

struct PtpConfig {
  std::string profile = "default_e2e";
  std::optional<unsigned> domain;
  unsigned priority1 = 128;
  unsigned priority2 = 128;
  unsigned clock_class = 248;
  unsigned clock_accuracy = 0xfe;
  bool slave_only = false;
  bool two_step = true;
  /// EUI-64 written as 8 colon-separated octets; default: from the first
  /// port's MAC (ff:fe in the middle).
  std::optional<std::array<uint8_t, 8>> clock_identity;
  /// "system": the host clock (read, never written) is the grandmaster's
  /// reference; "none": free-running.
  std::string reference = "none";
  unsigned utc_offset = 37;
  std::string servo = "adaptive";        // adaptive | linuxptp_pi
  std::optional<std::string> filter;     // percentile | minimum | latest | linuxptp_median
  unsigned first_step_threshold_ns = 20'000;
  unsigned step_threshold_ns = 0;
  /// The servo's frequency range, ppb (ptp4l's max_frequency).
  unsigned max_frequency_ppb = 900'000'000;
  unsigned holdover_spec_ns = 1'000;
  /// Grant unicast negotiation requests (ptp4l's unicast_listen).
  bool unicast_listen = false;
  /// Unicast client: the duration asked for each grant (renewed at half
  /// time), and the retry period of unanswered or denied requests, 2^n s.
  unsigned unicast_request_duration_s = 300;
  int unicast_log_query_interval = 0;
  /// End-to-end transparent clock on every forwarded PTP event message.
  bool transparent_clock = false;
  /// Hands Meridian's clock to the host's time daemon, which decides
  /// whether to steer the host clock by it (Meridian never does): "off", or
  /// "ntp_shm": chrony's / ntpd's shared-memory refclock, unit
  /// ntp_shm_unit (chrony: refclock SHM <unit>).
  std::string host_clock_export = "off";
  unsigned ntp_shm_unit = 2;
  std::vector<PtpPortConfig> ports;
  bool operator==(const PtpConfig&) const = default;
  bool enabled() const { return !ports.empty(); }
};

/// Profile names the section accepts.
const std::vector<std::string>& ptp_profile_names();

void parse_ptp(const nlohmann::json& j, const std::string& path, PtpConfig& out, FieldErrors& errors);
nlohmann::json to_json(const PtpConfig& ptp);
/// Rules that need the rest of the document: ports exist and appear once;
/// profile constraints (G.8275.1 is L2 only; G.8275.2 is unicast: each
/// port a client with unicast_masters, or a master with unicast_listen).
/// Warns when workers sleep while idle (PTP stamps arrivals per poll round).
void validate_ptp(const PtpConfig& ptp, const Config& config, FieldErrors& errors, FieldErrors& warnings);

/// The section's registration (config/section.h) and typed access.
SectionSpec ptp_section_spec();
inline const PtpConfig& ptp_section(const Config& c) { return c.section<PtpConfig>("ptp"); }
inline PtpConfig& ptp_section(Config& c) { return c.section<PtpConfig>("ptp"); }

}  // namespace meridian::config
