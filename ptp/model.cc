#include "ptp/model.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "config/json_reader.h"

namespace meridian::config {
namespace {

bool one_of(const std::string& v, std::initializer_list<const char*> names) {
  return std::any_of(names.begin(), names.end(), [&](const char* n) { return v == n; });
}

void read_choice(ObjectReader& r, const std::string& key, std::string& out,
                 std::initializer_list<const char*> names) {
  std::string v;
  if (!r.read_string(key, v, false, 32)) return;
  if (!one_of(v, names)) {
    std::string list;
    for (const char* n : names) list += (list.empty() ? "" : ", ") + std::string(n);
    r.error(r.field_path(key), "expected one of " + list);
    return;
  }
  out = v;
}

bool read_int(ObjectReader& r, const std::string& key, int& out, int min, int max) {
  bool ok = false;
  r.read_raw(key, [&](const nlohmann::json& v, const std::string& p) {
    if (!v.is_number_integer() || v.get<int64_t>() < min || v.get<int64_t>() > max) {
      r.error(p, "expected an integer from " + std::to_string(min) + " to " + std::to_string(max));
      return;
    }
    out = static_cast<int>(v.get<int64_t>());
    ok = true;
  });
  return ok;
}

std::optional<std::array<uint8_t, 8>> parse_clock_identity(const std::string& s) {
  std::array<uint8_t, 8> id{};
  unsigned b[8];
  char tail;
  if (std::sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &b[6],
                  &b[7], &tail) != 8) {
    return std::nullopt;
  }
  for (int i = 0; i < 8; ++i) id[static_cast<size_t>(i)] = static_cast<uint8_t>(b[i]);
  return id;
}

std::string clock_identity_string(const std::array<uint8_t, 8>& id) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x:%02x:%02x", id[0], id[1], id[2], id[3], id[4],
                id[5], id[6], id[7]);
  return buf;
}

void parse_port(const nlohmann::json& j, const std::string& path, PtpPortConfig& p, FieldErrors& errors) {
  ObjectReader r(j, path, errors);
  if (!r.ok()) return;
  r.read_string("port", p.port, true, 32);
  read_choice(r, "transport", p.transport, {"udp_ipv4", "udp_ipv6", "l2"});
  std::string text;
  if (r.read_string("address", text, false, 64)) {
    auto ip = parse_ip(text);
    if (!ip || ip->is_multicast() || ip->is_unspecified()) r.error(r.field_path("address"), "expected a unicast IP address");
    else p.address = ip;
  }
  std::string mech;
  read_choice(r, "delay_mechanism", mech, {"e2e", "p2p"});
  if (!mech.empty()) p.delay_mechanism = mech;
  int v = 0;
  if (read_int(r, "log_announce_interval", v, -3, 4)) p.log_announce_interval = v;
  if (read_int(r, "log_sync_interval", v, -7, 4)) p.log_sync_interval = v;
  if (read_int(r, "log_min_delay_req_interval", v, -7, 5)) p.log_min_delay_req_interval = v;
  unsigned u = 0;
  if (r.read_uint("announce_receipt_timeout", u, 2, 255)) p.announce_receipt_timeout = u;
  r.read_uint("local_priority", p.local_priority, 1, 255);
  r.read_bool("master_only", p.master_only);
  read_int(r, "delay_asymmetry_ns", p.delay_asymmetry_ns, -1'000'000, 1'000'000);
  read_int(r, "ingress_latency_ns", p.ingress_latency_ns, -1'000'000, 1'000'000);
  read_int(r, "egress_latency_ns", p.egress_latency_ns, -1'000'000, 1'000'000);
  read_choice(r, "timestamping", p.timestamping, {"auto", "hardware", "kernel", "tsc"});
  p.unicast_masters.clear();
  r.read_array("unicast_masters", [&](const nlohmann::json& v, const std::string& at) {
    auto ip = v.is_string() ? parse_ip(v.get<std::string>()) : std::nullopt;
    if (!ip || ip->is_multicast() || ip->is_unspecified()) {
      r.error(at, "expected a unicast IP address");
    } else if (p.transport != "l2" && ip->is_v4() != (p.transport == "udp_ipv4")) {
      r.error(at, std::string("expected an ") + (ip->is_v4() ? "IPv6" : "IPv4") + " address for transport " + p.transport);
    } else if (p.address && *ip == *p.address) {
      r.error(at, "is this port's own address");
    } else {
      p.unicast_masters.push_back(*ip);
    }
  }, false, 16);
  if (!p.unicast_masters.empty() && p.transport == "l2") {
    r.error(r.field_path("unicast_masters"), "unicast negotiation runs over udp_ipv4 or udp_ipv6, not l2");
  }
  if (p.transport != "l2" && !p.address) {
    if (!j.contains("address")) r.error(r.field_path("address"), "required for transport " + p.transport);
  } else if (p.address && p.transport == "udp_ipv4" && !p.address->is_v4()) {
    r.error(r.field_path("address"), "expected an IPv4 address for udp_ipv4");
  } else if (p.address && p.transport == "udp_ipv6" && p.address->is_v4()) {
    r.error(r.field_path("address"), "expected an IPv6 address for udp_ipv6");
  }
}

}  // namespace

const std::vector<std::string>& ptp_profile_names() {
  static const std::vector<std::string> names{"default_e2e", "default_p2p", "smpte_2059_2",
                                              "aes67",       "g8275_1",     "g8275_2"};
  return names;
}

void parse_ptp(const nlohmann::json& j, const std::string& path, PtpConfig& c, FieldErrors& errors) {
  ObjectReader r(j, path, errors);
  if (!r.ok()) return;
  read_choice(r, "profile", c.profile, {"default_e2e", "default_p2p", "smpte_2059_2", "aes67", "g8275_1", "g8275_2"});
  unsigned u = 0;
  if (r.read_uint("domain", u, 0, 255)) c.domain = u;
  r.read_uint("priority1", c.priority1, 0, 255);
  r.read_uint("priority2", c.priority2, 0, 255);
  r.read_uint("clock_class", c.clock_class, 0, 255);
  r.read_uint("clock_accuracy", c.clock_accuracy, 0, 255);
  r.read_bool("slave_only", c.slave_only);
  r.read_bool("two_step", c.two_step);
  std::string text;
  if (r.read_string("clock_identity", text, false, 32)) {
    auto id = parse_clock_identity(text);
    if (!id) r.error(r.field_path("clock_identity"), "expected 8 octets such as 02:00:00:ff:fe:00:00:01");
    else c.clock_identity = id;
  }
  read_choice(r, "reference", c.reference, {"none", "system"});
  r.read_uint("utc_offset", c.utc_offset, 0, 1000);
  read_choice(r, "servo", c.servo, {"adaptive", "linuxptp_pi"});
  std::string filter;
  read_choice(r, "filter", filter, {"percentile", "minimum", "latest", "linuxptp_median"});
  if (!filter.empty()) c.filter = filter;
  r.read_uint("first_step_threshold_ns", c.first_step_threshold_ns, 0, 1'000'000'000);
  r.read_uint("step_threshold_ns", c.step_threshold_ns, 0, 1'000'000'000);
  r.read_uint("max_frequency_ppb", c.max_frequency_ppb, 1'000, 900'000'000);
  r.read_uint("holdover_spec_ns", c.holdover_spec_ns, 1, 1'000'000'000);
  r.read_bool("unicast_listen", c.unicast_listen);
  r.read_uint("unicast_request_duration_s", c.unicast_request_duration_s, 10, 3600);
  read_int(r, "unicast_log_query_interval", c.unicast_log_query_interval, -3, 4);
  r.read_bool("transparent_clock", c.transparent_clock);
  read_choice(r, "host_clock_export", c.host_clock_export, {"off", "ntp_shm"});
  r.read_uint("ntp_shm_unit", c.ntp_shm_unit, 0, 255);
  c.ports.clear();
  r.read_array("ports", [&](const nlohmann::json& v, const std::string& p) {
    c.ports.emplace_back();
    parse_port(v, p, c.ports.back(), errors);
  }, false, 32);
}

SectionSpec ptp_section_spec() { return make_section_spec<PtpConfig>("ptp", parse_ptp, to_json, validate_ptp); }

void validate_ptp(const PtpConfig& c, const Config& config, FieldErrors& errors, FieldErrors& warnings) {
  // PTP's software receive stamp is the poll round's TSC: a worker asleep
  // between rounds stamps a frame up to idle_sleep_us late.
  if ((c.enabled() || c.transparent_clock) && config.dataplane.idle_sleep_us > 0) {
    warnings.push_back({"/dataplane/idle_sleep_us",
                        "PTP timestamps are taken per poll round: sleeping " +
                            std::to_string(config.dataplane.idle_sleep_us) +
                            " us when idle adds up to that much error; use 0 with PTP"});
  }
  const std::vector<std::string> port_names = config::port_names(config);
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < c.ports.size(); ++i) {
    const auto& p = c.ports[i];
    const std::string base = pointer_append(pointer_append("/ptp/ports", i), "port");
    if (p.port.empty()) continue;
    if (std::find(port_names.begin(), port_names.end(), p.port) == port_names.end()) {
      errors.push_back({base, "unknown port '" + p.port + "'"});
    } else if (!seen.emplace(p.port, i).second) {
      errors.push_back({base, "port '" + p.port + "' already runs PTP at /ptp/ports/" + std::to_string(seen[p.port])});
    }
    const std::string transport = pointer_append(pointer_append("/ptp/ports", i), "transport");
    if (c.profile == "g8275_1" && p.transport != "l2") {
      errors.push_back({transport, "profile g8275_1 runs over l2 only"});
    }
  }
  if (c.profile == "g8275_2" && !c.unicast_listen) {
    for (size_t i = 0; i < c.ports.size(); ++i) {
      if (c.ports[i].unicast_masters.empty()) {
        errors.push_back({pointer_append(pointer_append("/ptp/ports", i), "unicast_masters"),
                          "profile g8275_2 is unicast: give the port its masters, or set /ptp/unicast_listen"});
      }
    }
  }
  if (c.slave_only && c.reference != "none") {
    errors.push_back({"/ptp/reference", "a slave-only clock takes its time from PTP, not from a reference"});
  }
  if (c.host_clock_export != "off" && c.reference == "system") {
    errors.push_back({"/ptp/host_clock_export",
                      "the clock follows the host clock (reference system): exporting it back would be circular"});
  }
}

nlohmann::json to_json(const PtpConfig& c) {
  nlohmann::json ports = nlohmann::json::array();
  for (const auto& p : c.ports) {
    nlohmann::json j{{"port", p.port},
                     {"transport", p.transport},
                     {"local_priority", p.local_priority},
                     {"master_only", p.master_only},
                     {"delay_asymmetry_ns", p.delay_asymmetry_ns},
                     {"ingress_latency_ns", p.ingress_latency_ns},
                     {"egress_latency_ns", p.egress_latency_ns},
                     {"timestamping", p.timestamping}};
    if (!p.unicast_masters.empty()) {
      j["unicast_masters"] = nlohmann::json::array();
      for (const auto& m : p.unicast_masters) j["unicast_masters"].push_back(to_string(m));
    }
    if (p.address) j["address"] = to_string(*p.address);
    if (p.delay_mechanism) j["delay_mechanism"] = *p.delay_mechanism;
    if (p.log_announce_interval) j["log_announce_interval"] = *p.log_announce_interval;
    if (p.log_sync_interval) j["log_sync_interval"] = *p.log_sync_interval;
    if (p.log_min_delay_req_interval) j["log_min_delay_req_interval"] = *p.log_min_delay_req_interval;
    if (p.announce_receipt_timeout) j["announce_receipt_timeout"] = *p.announce_receipt_timeout;
    ports.push_back(std::move(j));
  }
  nlohmann::json j{{"profile", c.profile},
                   {"priority1", c.priority1},
                   {"priority2", c.priority2},
                   {"clock_class", c.clock_class},
                   {"clock_accuracy", c.clock_accuracy},
                   {"slave_only", c.slave_only},
                   {"two_step", c.two_step},
                   {"reference", c.reference},
                   {"utc_offset", c.utc_offset},
                   {"servo", c.servo},
                   {"first_step_threshold_ns", c.first_step_threshold_ns},
                   {"step_threshold_ns", c.step_threshold_ns},
                   {"max_frequency_ppb", c.max_frequency_ppb},
                   {"holdover_spec_ns", c.holdover_spec_ns},
                   {"unicast_listen", c.unicast_listen},
                   {"unicast_request_duration_s", c.unicast_request_duration_s},
                   {"unicast_log_query_interval", c.unicast_log_query_interval},
                   {"transparent_clock", c.transparent_clock},
                   {"host_clock_export", c.host_clock_export},
                   {"ntp_shm_unit", c.ntp_shm_unit},
                   {"ports", ports}};
  if (c.domain) j["domain"] = *c.domain;
  if (c.clock_identity) j["clock_identity"] = clock_identity_string(*c.clock_identity);
  if (c.filter) j["filter"] = *c.filter;
  return j;
}

}  // namespace meridian::config
