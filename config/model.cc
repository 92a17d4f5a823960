#include "config/model.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <set>

#include "config/json_reader.h"

namespace meridian::config {
namespace {

constexpr unsigned kMaxLcore = 127;      // RTE_MAX_LCORE is 128 in Debian's build
constexpr size_t kMaxPorts = 32;         // RTE_MAX_ETHPORTS in Debian's build

bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 32 || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

/// Non-negative integer, whether JSON stored it signed or unsigned.
bool is_non_negative_integer(const nlohmann::json& v) {
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
}

bool printable_no_space(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

const char* hugepage_name(HugepageMode m) {
  switch (m) {
    case HugepageMode::kOn: return "on";
    case HugepageMode::kOff: return "off";
    case HugepageMode::kAuto: break;
  }
  return "auto";
}


void parse_dataplane(const nlohmann::json& j, const std::string& path, DataplaneConfig& dp,
                     FieldErrors& errors) {
  ObjectReader r(j, path, errors);
  if (!r.ok()) return;
  std::vector<unsigned> lcores;
  if (r.read_array("lcores", [&](const nlohmann::json& v, const std::string& p) {
        if (!is_non_negative_integer(v) || v.get<uint64_t>() > kMaxLcore) {
          r.error(p, "expected an lcore id between 0 and " + std::to_string(kMaxLcore));
          return;
        }
        lcores.push_back(v.get<unsigned>());
      }, false, 64)) {
    dp.lcores = lcores;
  }
  r.read_uint("main_lcore", dp.main_lcore, 0, kMaxLcore);
  r.read_uint("memory_mb", dp.memory_mb, 64, 1 << 20);
  r.read_raw("hugepages", [&](const nlohmann::json& v, const std::string& p) {
    if (v == "auto") dp.hugepages = HugepageMode::kAuto;
    else if (v == "on") dp.hugepages = HugepageMode::kOn;
    else if (v == "off") dp.hugepages = HugepageMode::kOff;
    else r.error(p, "expected one of \"auto\", \"on\", \"off\"");
  });
  if (r.read_string("file_prefix", dp.file_prefix, false, 32) && !valid_name(dp.file_prefix)) {
    r.error(r.field_path("file_prefix"), "use letters, digits, '_', '-', '.' (max 32)");
  }
  r.read_uint("mbufs", dp.mbufs, 1024, 1u << 24);
  r.read_uint("burst_size", dp.burst_size, 1, 64);
  r.read_uint("tx_retries", dp.tx_retries, 0, 64);
  if (r.read_uint("punt_ring_size", dp.punt_ring_size, 64, 1u << 16) &&
      (dp.punt_ring_size & (dp.punt_ring_size - 1)) != 0) {
    r.error(r.field_path("punt_ring_size"), "must be a power of two");
  }
  r.read_uint("idle_sleep_us", dp.idle_sleep_us, 0, 100000);
  dp.eal_args.clear();
  r.read_array("eal_args", [&](const nlohmann::json& v, const std::string& p) {
    if (!v.is_string() || v.get_ref<const std::string&>().empty() ||
        v.get_ref<const std::string&>().size() > 256 || !printable_no_space(v.get<std::string>())) {
      r.error(p, "expected a non-empty printable string without spaces (max 256)");
      return;
    }
    dp.eal_args.push_back(v.get<std::string>());
  }, false, 64);

  std::set<unsigned> unique(dp.lcores.begin(), dp.lcores.end());
  if (unique.size() != dp.lcores.size()) r.error(r.field_path("lcores"), "duplicate lcore");
  if (!unique.count(dp.main_lcore)) {
    r.error(r.field_path("main_lcore"), "must be one of the listed lcores");
  }
  if (dp.lcores.size() < 2) {
    r.error(r.field_path("lcores"), "need the main lcore and at least one worker lcore");
  }
}

void parse_port(const nlohmann::json& j, const std::string& path, PortConfig& port,
                FieldErrors& errors) {
  ObjectReader r(j, path, errors);
  if (!r.ok()) return;
  if (r.read_string("name", port.name, true, 32) && !valid_name(port.name)) {
    r.error(r.field_path("name"), "use letters, digits, '_', '-', '.' (max 32)");
  }
  if (r.read_string("devargs", port.devargs, true, 512)) {
    unsigned b, d, f;
    char tail;
    const std::string dev = device_name(port.devargs);
    if (!printable_no_space(port.devargs)) {
      r.error(r.field_path("devargs"), "must be printable ASCII without spaces");
    } else if (std::sscanf(dev.c_str(), "%x:%x.%x%c", &b, &d, &f, &tail) == 3) {
      r.error(r.field_path("devargs"), "write the full PCI address with its domain, e.g. 0000:" + dev);
    }
  }
  r.read_uint("rx_queues", port.rx_queues, 0, 64);
  for (const char* key : {"rx_descriptors", "tx_descriptors"}) {
    unsigned& out = std::string(key) == "rx_descriptors" ? port.rx_descriptors : port.tx_descriptors;
    if (r.read_uint(key, out, 64, 16384) && (out & (out - 1)) != 0) {
      r.error(r.field_path(key), "must be a power of two");
    }
  }
  r.read_uint("mtu", port.mtu, 68, 9600);
  r.read_bool("promiscuous", port.promiscuous);
  r.read_bool("rss", port.rss);
}

void parse_xconnect(const nlohmann::json& j, const std::string& path, XconnectConfig& xc,
                    FieldErrors& errors) {
  ObjectReader r(j, path, errors);
  if (!r.ok()) return;
  r.read_string("a", xc.a, true, 32);
  r.read_string("b", xc.b, true, 32);
}

void parse_punt(const nlohmann::json& j, const std::string& path, PuntConfig& punt,
                FieldErrors& errors) {
  ObjectReader r(j, path, errors);
  if (!r.ok()) return;
  std::set<uint16_t> seen;
  r.read_array("ethertypes", [&](const nlohmann::json& v, const std::string& p) {
    long value = -1;
    if (is_non_negative_integer(v)) {
      value = v.get<uint64_t>() > 0xffff ? -1 : static_cast<long>(v.get<uint64_t>());
    } else if (v.is_string()) {
      const auto& s = v.get_ref<const std::string&>();
      char* end = nullptr;
      value = std::strtol(s.c_str(), &end, 0);
      if (s.empty() || *end != '\0') value = -1;
    }
    if (value < 0x0600 || value > 0xffff) {
      r.error(p, "expected an EtherType between 0x0600 and 0xffff");
      return;
    }
    if (!seen.insert(static_cast<uint16_t>(value)).second) {
      r.error(p, "duplicate EtherType");
      return;
    }
    punt.ethertypes.push_back(static_cast<uint16_t>(value));
  }, false, 64);
}

}  // namespace

std::string ethertype_string(uint16_t t) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%04x", t);
  return buf;
}

std::string device_name(const std::string& devargs) { return devargs.substr(0, devargs.find(',')); }

bool is_pci_address(const std::string& d) {
  unsigned a, b, c, f;
  char tail;
  return std::sscanf(d.c_str(), "%x:%x:%x.%x%c", &a, &b, &c, &f, &tail) == 4;
}

bool Config::is_pci(const PortConfig& port) const { return is_pci_address(device_name(port.devargs)); }

ParseResult parse_config(const nlohmann::json& document) {
  ParseResult result;
  Config cfg;
  FieldErrors& errors = result.errors;
  {
    ObjectReader root(document, "", errors);
    if (root.ok()) {
      root.read_raw("dataplane", [&](const nlohmann::json& v, const std::string& p) {
        parse_dataplane(v, p, cfg.dataplane, errors);
      });
      root.read_array("ports", [&](const nlohmann::json& v, const std::string& p) {
        cfg.ports.emplace_back();
        parse_port(v, p, cfg.ports.back(), errors);
      }, false, kMaxPorts);
      root.read_array("xconnect", [&](const nlohmann::json& v, const std::string& p) {
        cfg.xconnect.emplace_back();
        parse_xconnect(v, p, cfg.xconnect.back(), errors);
      }, false, kMaxPorts);
      root.read_raw("punt", [&](const nlohmann::json& v, const std::string& p) {
        parse_punt(v, p, cfg.punt, errors);
      });
      for (const auto& spec : registered_sections()) {
        root.read_raw(spec.name, [&](const nlohmann::json& v, const std::string& p) {
          Section* s = cfg.sections.find(spec.name);
          if (!s) {
            cfg.sections.set(spec.name, spec.make());
            s = cfg.sections.find(spec.name);
          }
          spec.parse(v, p, *s, errors);
        });
      }
    }
  }

  // Cross-field rules.
  std::map<std::string, size_t> names, devices;
  for (size_t i = 0; i < cfg.ports.size(); ++i) {
    const auto& port = cfg.ports[i];
    const std::string base = pointer_append("/ports", i);
    if (!port.name.empty() && !names.emplace(port.name, i).second) {
      errors.push_back({base + "/name", "duplicate port name '" + port.name + "' (also /ports/" +
                                            std::to_string(names[port.name]) + ")"});
    }
    const std::string dev = device_name(port.devargs);
    if (!dev.empty() && !devices.emplace(dev, i).second) {
      errors.push_back({base + "/devargs", "device '" + dev + "' already used by /ports/" +
                                               std::to_string(devices[dev])});
    }
  }
  std::map<std::string, size_t> attached;
  for (size_t i = 0; i < cfg.xconnect.size(); ++i) {
    const auto& xc = cfg.xconnect[i];
    const std::string base = pointer_append("/xconnect", i);
    for (const auto& [key, name] : {std::pair{"a", xc.a}, std::pair{"b", xc.b}}) {
      if (name.empty()) continue;
      const std::string p = base + "/" + key;
      if (!names.count(name)) {
        errors.push_back({p, "unknown port '" + name + "'"});
      } else if (!attached.emplace(name, i).second) {
        errors.push_back({p, "port '" + name + "' is already cross-connected by /xconnect/" +
                                 std::to_string(attached[name])});
      }
    }
    if (!xc.a.empty() && xc.a == xc.b) errors.push_back({base + "/b", "must differ from a"});
  }

  for (const auto& spec : registered_sections()) spec.validate(cfg, errors, result.warnings);

  if (errors.empty()) result.config = std::move(cfg);
  return result;
}

nlohmann::json to_json(const Config& c) {
  nlohmann::json ethertypes = nlohmann::json::array();
  for (auto t : c.punt.ethertypes) ethertypes.push_back(ethertype_string(t));
  nlohmann::json ports = nlohmann::json::array();
  for (const auto& p : c.ports) {
    ports.push_back({{"name", p.name},
                     {"devargs", p.devargs},
                     {"rx_queues", p.rx_queues},
                     {"rx_descriptors", p.rx_descriptors},
                     {"tx_descriptors", p.tx_descriptors},
                     {"mtu", p.mtu},
                     {"promiscuous", p.promiscuous},
                     {"rss", p.rss}});
  }
  nlohmann::json xconnect = nlohmann::json::array();
  for (const auto& x : c.xconnect) xconnect.push_back({{"a", x.a}, {"b", x.b}});
  const auto& d = c.dataplane;
  nlohmann::json doc = {
      {"dataplane",
       {{"lcores", d.lcores},
        {"main_lcore", d.main_lcore},
        {"memory_mb", d.memory_mb},
        {"hugepages", hugepage_name(d.hugepages)},
        {"file_prefix", d.file_prefix},
        {"mbufs", d.mbufs},
        {"burst_size", d.burst_size},
        {"tx_retries", d.tx_retries},
        {"punt_ring_size", d.punt_ring_size},
        {"idle_sleep_us", d.idle_sleep_us},
        {"eal_args", d.eal_args}}},
      {"ports", ports},
      {"xconnect", xconnect},
      {"punt", {{"ethertypes", ethertypes}}},
  };
  for (const auto& spec : registered_sections()) {
    const Section* s = c.sections.find(spec.name);
    doc[spec.name] = spec.to_json(s ? *s : *spec.make());
  }
  return doc;
}

std::vector<std::string> port_names(const Config& config) {
  std::vector<std::string> out;
  for (const auto& p : config.ports) out.push_back(p.name);
  return out;
}

std::vector<std::string> cross_connected_ports(const Config& config) {
  std::vector<std::string> out;
  for (const auto& x : config.xconnect) {
    out.push_back(x.a);
    out.push_back(x.b);
  }
  return out;
}

}  // namespace meridian::config
