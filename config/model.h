// The declarative config document: the engine's own sections (dataplane,
// ports, xconnect, punt), typed here, and one section per module, declared
// by the module and registered (config/section.h).
//
// `parse_config()` turns a JSON document into a `Config`, collecting every
// error (never stopping at the first) with a JSON-pointer path. `to_json()`
// writes the normalised document back with every default filled in, so a
// document read back from the API can be re-applied unchanged.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/field_error.h"
#include "config/section.h"

namespace meridian::config {

enum class HugepageMode { kAuto, kOn, kOff };

/// EAL bootstrap and worker layout (section "dataplane"). Restart-only.
struct DataplaneConfig {
  /// EAL lcores; `main_lcore` runs control, every other listed lcore is a worker.
  std::vector<unsigned> lcores{0, 1};
  unsigned main_lcore = 0;
  /// EAL `-m N` (MiB), with hugepages or with `--no-huge`.
  unsigned memory_mb = 1024;
  HugepageMode hugepages = HugepageMode::kAuto;
  std::string file_prefix = "meridian";
  /// Packet buffers in the shared mempool (rounded up by DPDK per-lcore caches).
  unsigned mbufs = 16384;
  unsigned burst_size = 32;
  /// Attempts of `rte_eth_tx_burst` before leftovers are dropped as tx_full.
  unsigned tx_retries = 4;
  unsigned punt_ring_size = 1024;
  /// Sleep after an empty poll round; 0 is pure busy polling.
  unsigned idle_sleep_us = 0;
  std::vector<std::string> eal_args;
  bool operator==(const DataplaneConfig&) const = default;
};

/// One DPDK ethdev (section "ports"). Only `promiscuous` changes live.
struct PortConfig {
  std::string name;
  /// PCI address ("0000:3b:00.0") or vdev string ("net_af_packet0,iface=veth1").
  std::string devargs;
  /// 0 = auto: every queue a software PMD offers, one per worker on hardware.
  unsigned rx_queues = 0;
  unsigned rx_descriptors = 1024;
  unsigned tx_descriptors = 1024;
  unsigned mtu = 1500;
  bool promiscuous = true;
  bool rss = true;
  bool operator==(const PortConfig&) const = default;
};

/// A patch cable between two ports (section "xconnect"). Live.
struct XconnectConfig {
  std::string a;
  std::string b;
  bool operator==(const XconnectConfig&) const = default;
};

/// Frames the data path hands to the control lcore (section "punt"). Live.
struct PuntConfig {
  std::vector<uint16_t> ethertypes;
  bool operator==(const PuntConfig&) const = default;
};

struct Config {
  DataplaneConfig dataplane;
  std::vector<PortConfig> ports;
  std::vector<XconnectConfig> xconnect;
  PuntConfig punt;
  /// The registered module sections (vxlan, qos, ptp, ...).
  Sections sections;
  bool operator==(const Config&) const = default;

  bool is_pci(const PortConfig& port) const;

  /// The module section `name` of type T; a default T when the section is
  /// not registered. Modules wrap this in a typed accessor (vxlan_section()).
  template <class T>
  const T& section(const std::string& name) const {
    static const T kDefault{};
    const auto* s = dynamic_cast<const SectionOf<T>*>(sections.find(name));
    return s ? s->value : kDefault;
  }
  template <class T>
  T& section(const std::string& name) {
    auto* s = dynamic_cast<SectionOf<T>*>(sections.find(name));
    if (!s) {
      auto fresh = std::make_unique<SectionOf<T>>();
      s = fresh.get();
      sections.set(name, std::move(fresh));
    }
    return s->value;
  }
};

/// The configured port names, and those cross-connected (for sections
/// whose rules name ports).
std::vector<std::string> port_names(const Config& config);
std::vector<std::string> cross_connected_ports(const Config& config);

/// A section spec for struct T from its typed functions.
template <class T>
SectionSpec make_section_spec(std::string name,
                              void (*parse)(const nlohmann::json&, const std::string&, T&, FieldErrors&),
                              nlohmann::json (*write)(const T&),
                              void (*validate)(const T&, const Config&, FieldErrors&, FieldErrors&)) {
  SectionSpec s;
  s.name = std::move(name);
  s.make = [] { return std::make_unique<SectionOf<T>>(); };
  // dynamic_cast: a Config may hold a section built by an earlier
  // registration of the same name (tests register and unregister).
  s.parse = [parse](const nlohmann::json& j, const std::string& path, Section& out, FieldErrors& errors) {
    if (auto* typed = dynamic_cast<SectionOf<T>*>(&out)) parse(j, path, typed->value, errors);
  };
  s.to_json = [write](const Section& in) {
    const auto* typed = dynamic_cast<const SectionOf<T>*>(&in);
    return write(typed ? typed->value : T{});
  };
  s.validate = [validate, key = s.name](const Config& c, FieldErrors& errors, FieldErrors& warnings) {
    validate(c.section<T>(key), c, errors, warnings);
  };
  return s;
}

/// Device name of a devargs string: everything before the first comma.
std::string device_name(const std::string& devargs);
/// "0x88cc": how EtherTypes are written in the document, the API and metrics.
std::string ethertype_string(uint16_t ethertype);
/// True when the device name looks like a PCI address (DDDD:BB:DD.F or BB:DD.F).
bool is_pci_address(const std::string& device);

struct ParseResult {
  std::optional<Config> config;  // set only when `errors` is empty
  FieldErrors errors;
  /// Accepted but worth telling the operator (e.g. over-subscribed QoS rates).
  FieldErrors warnings;
};

ParseResult parse_config(const nlohmann::json& document);
nlohmann::json to_json(const Config& config);

}  // namespace meridian::config
