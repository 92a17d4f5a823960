// The module contract: the one extension point of the engine.
//
// A capability (xconnect, vxlan, qos, ptp, ...) is a Module. The engine
// creates every registered module after the ports, the mempool and RCU are
// up, then asks each, in registration order, for its stages, its part of
// every config change and table version, its timers, and its views (REST
// routes, /metrics families); punted frames are offered by punt_order().
// The engine names no module; dataplane/modules.cc is the one registration
// list.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>

#include "config/api.h"
#include "config/field_error.h"
#include "config/metrics.h"
#include "config/model.h"
#include "dataplane/egress.h"
#include "dataplane/pipeline.h"
#include "dataplane/ports.h"
#include "dataplane/tables.h"
#include "dataplane/worker.h"
#include "host/presence.h"
#include "net/packet_view.h"

namespace meridian::dataplane {

/// Where a stage runs. Ingress stages see every received packet first
/// (punting, timestamping); forward stages decide where it goes; egress
/// stages see the decisions before the worker transmits.
enum class StagePlace : uint8_t { kIngress, kForward, kEgress };

struct PlacedStage {
  StagePlace place = StagePlace::kForward;
  /// Order within the place, lower first. A catch-all stage (xconnect
  /// decides every packet it sees) takes kLast.
  int order = 0;
  std::unique_ptr<const Stage> stage;
  static constexpr int kLast = 1000;
};

/// What the engine gives a module when it creates it. The references stay
/// valid for the module's life (the engine owns them and outlives it).
struct ModuleHost {
  const config::Config& config;             // the running config (at creation: the startup config)
  const std::vector<PortRuntime>& ports;    // all ports; a re-created port keeps its id
  rte_mempool* pool = nullptr;
  rte_rcu_qsbr* qsbr = nullptr;
  unsigned workers = 0;
  uint64_t tsc_hz = 0;                      // the engine's calibrated TSC rate (time_base.h)
  ControlTransmit transmit;
  /// The control lcore's own counter block: a module counts the drops of
  /// its control side here (punted frames it refused, frames it could not
  /// send), per port, under its drop reasons. Written on the control lcore only.
  WorkerCounters* control_counters = nullptr;
  /// The overlay's UDP port under a config, as the module that terminates
  /// the overlay says (Module::overlay_udp_port); 4789, VXLAN's IANA port,
  /// when none does. Modules that look inside overlay packets (the QoS
  /// classifier, the transparent clock) ask here, not the overlay's config.
  std::function<uint16_t(const config::Config&)> overlay_udp_port;
  /// The appliance's own IP presence (host/presence.h): a module that owns
  /// addresses or needs next hops resolved is a client; it answers no ARP or
  /// ND of its own. The engine offers it punted ARP/ND before any module.
  host::Presence* presence = nullptr;
  /// Sends one frame the control lcore built (copied into a fresh buffer,
  /// padded to 60 bytes) on a port, through the egress path; false when it
  /// was not sent (counted on the port).
  std::function<bool(uint16_t port_id, std::span<const uint8_t> frame)> send_frame;
  /// Sends one Ethernet frame the control lcore built into the overlay's
  /// bridge domain `vni`, encapsulated toward the remote VTEP `vtep`, as the
  /// module that terminates the overlay does it (Module::send_into_overlay);
  /// false when it could not be sent (no such module, VNI or VTEP, VTEP not
  /// resolved, no buffer).
  std::function<bool(uint32_t vni, const config::IpAddress& vtep, std::span<const uint8_t> frame)> send_overlay;
};

/// A REST GET (or POST) a module may answer.
struct RestRequest {
  config::http::verb method;
  const std::string& path;
  const std::map<std::string, std::string>& query;
  bool workers_running;
};
using RestResource = config::StatusProvider::Resource;

/// A 400 naming the first query parameter of `r` not in `allowed`; nullopt
/// when every one is allowed.
inline std::optional<RestResource> refuse_unknown_query(const RestRequest& r, const std::vector<std::string>& allowed) {
  for (const auto& [key, value] : r.query) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return RestResource::error(config::http::status::bad_request, "?" + key, "unknown query parameter '" + key + "'");
    }
  }
  return std::nullopt;
}

/// Reads the `vni` query parameter (1 to 16777215) into `vni` when present;
/// a 400 naming it when malformed.
inline std::optional<RestResource> read_vni_query(const RestRequest& r, std::optional<uint32_t>& vni) {
  auto it = r.query.find("vni");
  if (it == r.query.end()) return std::nullopt;
  char* end = nullptr;
  const unsigned long v = std::strtoul(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end || v == 0 || v > 0xffffff) {
    return RestResource::error(config::http::status::bad_request, "?vni", "vni: expected an integer between 1 and 16777215");
  }
  vni = static_cast<uint32_t>(v);
  return std::nullopt;
}

class Module {
 public:
  virtual ~Module() = default;
  virtual const char* name() const = 0;

  /// Its stages, asked once at startup; the engine orders them by place.
  virtual std::vector<PlacedStage> stages() { return {}; }

  /// Builds what `next` needs off the data path: everything that can fail
  /// happens here, with JSON-pointer errors, and then nothing changes.
  /// Returns the commit step (called only if every module prepared), or an
  /// empty function when there is nothing to commit.
  virtual std::function<void()> prepare(const config::Config& running, const config::Config& next,
                                        config::FieldErrors& errors) = 0;
  /// Puts the committed state into the next table version.
  virtual void contribute(ForwardingTables& /*tables*/, const config::Config& /*config*/) const {}
  /// A table version carrying this module's state was published.
  virtual void published() {}

  /// A frame a worker punted. True when the module took it (and owns the
  /// mbuf); modules are asked by punt_order(), then registration order.
  virtual bool claim_punt(rte_mbuf* /*m*/, const net::PacketView& /*view*/) { return false; }
  /// Lower asks first: where two modules may both take a frame, the
  /// narrower claim goes first. (ARP/ND for our addresses never gets here:
  /// host/ takes it before any module.)
  virtual int punt_order() const { return 100; }

  /// Punted frames were just offered between two ticks (within a
  /// millisecond of their arrival): true when they changed the module's
  /// tables and a new version must be published now, not at the next tick.
  virtual bool punts_handled() { return false; }

  /// Control-lcore timers, every few ms. True when the module's tables
  /// changed and a new version must be published.
  virtual bool tick(bool /*workers_running*/) { return false; }

  /// A port's device is about to close (its interface went away).
  virtual void port_closing(const PortRuntime& /*port*/) {}
  /// The port's device was re-created on the same id (new sockets, MAC).
  virtual void port_recreated(const PortRuntime& /*port*/) {}
  /// After the engine's link poll (every 100 ms), before punted frames are
  /// drained: what waits for ports to come back resumes here.
  virtual void links_polled() {}

  /// The UDP port of the overlay encapsulation this module terminates under
  /// `config` (VXLAN's VTEP port); nullopt when it terminates none.
  virtual std::optional<uint16_t> overlay_udp_port(const config::Config& /*config*/) const { return std::nullopt; }
  /// Encapsulates `frame` for bridge domain `vni` toward the remote VTEP
  /// `vtep` and sends it (ModuleHost::send_overlay); nullopt when this module
  /// terminates no overlay, else whether it was sent.
  virtual std::optional<bool> send_into_overlay(uint32_t /*vni*/, const config::IpAddress& /*vtep*/,
                                                std::span<const uint8_t> /*frame*/) {
    return std::nullopt;
  }

  /// Fills the module's part of a worker's context before launch; also
  /// called for the control lcore's lane (`worker.control`), whose frames
  /// pass the same egress path.
  virtual void setup_worker(WorkerContext& /*worker*/) {}

  /// Its /metrics families.
  virtual void metrics(config::MetricsWriter& /*out*/, bool /*workers_running*/) {}
  /// Its REST routes: a response, or nullopt when the path is not its own.
  virtual std::optional<RestResource> resource(const RestRequest& /*request*/) { return std::nullopt; }
};

/// Creates the module, or returns null and sets `error` ("/path: reason").
using ModuleFactory = std::function<std::unique_ptr<Module>(const ModuleHost& host, std::string& error)>;

struct ModuleRegistration {
  std::string name;
  ModuleFactory create;
  /// Its config section (the module's `<module>/model.*`), if it has one.
  /// Built-in modules leave it null: theirs come from the catalog
  /// (module_catalog.h); register_module() registers a test module's.
  config::SectionSpec (*section)() = nullptr;
};

/// The built-in modules, in the order the engine asks them (dataplane/modules.cc).
const std::vector<ModuleRegistration>& builtin_modules();
/// Adds a module, and its config section, for every document parsed and
/// data plane created afterwards, after the built-in ones (tests register
/// their own modules this way).
void register_module(ModuleRegistration registration);
/// Removes a module registered by name (not a built-in one), and its section.
void unregister_module(const std::string& name);
/// Built-in modules followed by those registered.
std::vector<ModuleRegistration> registered_modules();

}  // namespace meridian::dataplane
