#include "dataplane/runtime.h"

#include <algorithm>
#include <cstring>
#include <regex>
#include <set>

#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "config/log.h"
#include "dataplane/time_base.h"
#include "net/packet_view.h"
#include "net/wire.h"

namespace meridian::dataplane {

static_assert(kMaxPorts <= RTE_MAX_ETHPORTS, "counter arrays are indexed by DPDK port id");
static_assert(kMaxBurst <= 64, "burst arrays live on the worker's stack");

namespace {

config::MacAddress mac_of(const PortRuntime& p) {
  config::MacAddress m;
  std::memcpy(m.bytes.data(), p.mac.addr_bytes, 6);
  return m;
}

std::atomic<unsigned> g_instances{0};
constexpr auto kHeartbeatStale = std::chrono::seconds(1);

unsigned max_mtu(const config::Config& c) {
  unsigned m = 1500;
  for (const auto& p : c.ports) m = std::max(m, p.mtu);
  return m;
}

}  // namespace

uint16_t Dataplane::overlay_udp_port(const config::Config& config) const {
  for (const auto& m : modules_) {  // those created so far: the overlay registers before its readers
    if (auto port = m->overlay_udp_port(config)) return *port;
  }
  return kIanaVxlanPort;
}

std::unique_ptr<const ForwardingTables> Dataplane::build_tables(const config::Config& config) {
  auto t = std::make_unique<ForwardingTables>();
  t->version = ++table_versions_;
  for (const auto& p : ports_) {
    if (!p.offline || p.port_id >= kMaxPorts) continue;
    t->port_offline[p.port_id] = true;
    t->any_offline = true;
  }
  t->overlay_udp_port = overlay_udp_port(config);
  for (const auto& m : modules_) m->contribute(*t, config);
  for (size_t s = 0; s < pipeline_.size(); ++s) {
    if (pipeline_[s]->active(*t)) t->stages[t->stage_count++] = static_cast<uint8_t>(s);
  }
  return t;
}

config::FieldErrors restart_only_changes(const config::Config& running, const config::Config& next) {
  static const std::regex kLive("^/ports/[0-9]+/promiscuous$");
  config::FieldErrors errors;
  const auto diff = nlohmann::json::diff(config::to_json(running), config::to_json(next));
  for (const auto& op : diff) {
    const std::string path = op.value("path", "");
    const bool restart_only = path.rfind("/dataplane", 0) == 0 || path.rfind("/ports", 0) == 0;
    if (!restart_only || std::regex_match(path, kLive)) continue;
    std::string reason = op.value("op", "") == "replace"
                             ? "cannot change while running"
                             : "cannot add or remove this while running";
    errors.push_back({path, reason + "; edit the config file and restart meridiand"});
  }
  return errors;
}

std::unique_ptr<Dataplane> Dataplane::create(const config::Config& cfg, std::string& error) {
  std::unique_ptr<Dataplane> dp(new Dataplane());
  dp->config_ = cfg;
  dp->instance_ = g_instances.fetch_add(1);
  const std::string suffix = std::to_string(getpid()) + "_" + std::to_string(dp->instance_);

  // Workers: every listed lcore but the main one, each enabled in this EAL.
  unsigned index = 0;
  for (unsigned lcore : cfg.dataplane.lcores) {
    if (lcore == cfg.dataplane.main_lcore) continue;
    if (!rte_lcore_is_enabled(lcore) || lcore == rte_get_main_lcore()) {
      error = "/dataplane/lcores: lcore " + std::to_string(lcore) + " is not a worker lcore of this EAL";
      return nullptr;
    }
    WorkerContext w;
    w.index = index++;
    w.lcore = lcore;
    dp->workers_.push_back(std::move(w));
  }
  const unsigned nworkers = static_cast<unsigned>(dp->workers_.size());
  if (nworkers == 0 || nworkers > kMaxWorkers) {
    error = "/dataplane/lcores: need between 1 and " + std::to_string(kMaxWorkers) + " worker lcores";
    return nullptr;
  }

  // Probe every port first: the queue plan sizes the buffer pool.
  for (size_t i = 0; i < cfg.ports.size(); ++i) {
    PortRuntime port;
    std::string err = port_probe(cfg.ports[i], nworkers, port);
    if (!err.empty() && !port.hotplugged) {
      error = "/ports/" + std::to_string(i) + " (" + cfg.ports[i].name + "): " + err;
      return nullptr;  // the destructor closes the ports probed so far
    }
    dp->ports_.push_back(std::move(port));  // closed by the destructor, hot-plugged ones detached
    if (!err.empty()) {
      error = "/ports/" + std::to_string(i) + " (" + cfg.ports[i].name + "): " + err;
      return nullptr;
    }
  }

  // Buffers: every RX and TX descriptor of the plan, every worker's in-flight
  // burst and per-lcore cache, and a full punt ring.
  const unsigned cache = 256;
  uint64_t needed = cfg.dataplane.punt_ring_size + (nworkers + 1) * (cache + kMaxBurst * 2);
  for (const auto& p : dp->ports_) {
    needed += uint64_t{p.rx_queues} * p.rx_descriptors + uint64_t{p.tx_queues} * p.tx_descriptors;
  }
  if (cfg.dataplane.mbufs < needed) {
    error = "/dataplane/mbufs: " + std::to_string(cfg.dataplane.mbufs) +
            " buffers cannot fill the configured queues; need at least " + std::to_string(needed);
    return nullptr;
  }
  const unsigned data_room = std::max<unsigned>(RTE_MBUF_DEFAULT_BUF_SIZE,
                                                max_mtu(cfg) + 26 + RTE_PKTMBUF_HEADROOM);
  dp->pool_ = rte_pktmbuf_pool_create(("mrd_pool_" + suffix).c_str(), cfg.dataplane.mbufs, cache, 0,
                                      static_cast<uint16_t>(std::min(data_room, 65535u)),
                                      static_cast<int>(rte_socket_id()));
  if (!dp->pool_) {
    error = "/dataplane/mbufs: cannot allocate " + std::to_string(cfg.dataplane.mbufs) +
            " buffers: " + rte_strerror(rte_errno) + " (raise /dataplane/memory_mb)";
    return nullptr;
  }
  dp->punt_ring_ = rte_ring_create(("mrd_punt_" + suffix).c_str(), cfg.dataplane.punt_ring_size,
                                   static_cast<int>(rte_socket_id()), RING_F_SC_DEQ);
  const size_t qsbr_size = rte_rcu_qsbr_get_memsize(nworkers);
  dp->qsbr_ = static_cast<rte_rcu_qsbr*>(rte_zmalloc("mrd_qsbr", qsbr_size, RTE_CACHE_LINE_SIZE));
  if (!dp->punt_ring_ || !dp->qsbr_ || rte_rcu_qsbr_init(dp->qsbr_, nworkers) != 0) {
    error = std::string("cannot allocate punt ring or RCU state: ") + rte_strerror(rte_errno);
    return nullptr;
  }
  for (size_t i = 0; i < cfg.ports.size(); ++i) {
    if (std::string err = port_start(cfg.ports[i], dp->pool_, dp->ports_[i]); !err.empty()) {
      error = "/ports/" + std::to_string(i) + " (" + cfg.ports[i].name + "): " + err;
      return nullptr;
    }
  }

  dp->counter_storage_ = std::make_unique<WorkerCounters[]>(nworkers + 1);
  dp->counters_ = std::span<WorkerCounters>(dp->counter_storage_.get(), nworkers + 1);
  dp->heartbeats_.resize(nworkers);
  // The control lcore's lane (egress.h), usable from here on: one attempt on
  // a port's control queue, looked up at each send (a re-created port may
  // have another). Its scheduler comes from the modules, below.
  WorkerContext& lane = dp->control_lane_;
  lane.index = nworkers;
  lane.control = true;
  lane.tx_retries = 0;
  lane.counters = &dp->counters_.back();
  lane.tx_queue.fill(-1);
  // Modules, in registration order; each commits its startup config.
  Dataplane* self = dp.get();
  const uint64_t hz = tsc_hz();
  dp->presence_ = std::make_unique<host::Presence>(
      [self](uint16_t port, std::span<const uint8_t> frame) { return self->control_send(port, frame); },
      [hz] { return static_cast<double>(rte_rdtsc()) / static_cast<double>(hz); });
  for (const auto& p : dp->ports_) dp->presence_->set_port_mac(p.port_id, mac_of(p));
  dp->host_ = std::make_unique<ModuleHost>(ModuleHost{
      dp->config_, dp->ports_, dp->pool_, dp->qsbr_, nworkers, hz,
      [self](uint16_t port, rte_mbuf** pkts, uint16_t n, EgressTiming timing) {
        return self->control_transmit(port, pkts, n, timing);
      },
      &dp->counters_.back(),
      [self](const config::Config& c) { return self->overlay_udp_port(c); }, dp->presence_.get(),
      [self](uint16_t port, std::span<const uint8_t> frame) { return self->control_send(port, frame); },
      [self](uint32_t vni, const config::IpAddress& vtep, std::span<const uint8_t> frame) {
        for (const auto& m : self->modules_) {
          if (auto sent = m->send_into_overlay(vni, vtep, frame)) return *sent;
        }
        return false;
      }});
  std::vector<PlacedStage> stages;
  for (const auto& reg : registered_modules()) {
    std::unique_ptr<Module> module;
    try {  // a throw never crosses the module contract (docs/architecture.md, Errors)
      module = reg.create(*dp->host_, error);
    } catch (const std::exception& e) {
      error = reg.name + ": " + e.what();
    }
    if (!module) {
      if (error.empty()) error = reg.name + ": cannot start";
      return nullptr;
    }
    for (auto& s : module->stages()) stages.push_back(std::move(s));
    dp->modules_.push_back(std::move(module));
  }
  // The pipeline: ingress, forward, egress; by order within each, then by
  // registration.
  std::stable_sort(stages.begin(), stages.end(), [](const PlacedStage& a, const PlacedStage& b) {
    return std::pair(a.place, a.order) < std::pair(b.place, b.order);
  });
  if (stages.size() > kMaxStages) {
    error = "the modules declare " + std::to_string(stages.size()) + " stages; at most " +
            std::to_string(kMaxStages) + " are counted";
    return nullptr;
  }
  std::set<std::string> stage_names;
  for (const auto& s : stages) {
    if (!stage_names.insert(s.stage->name()).second) {
      error = std::string("two stages are named '") + s.stage->name() + "'; stage names label the runtime counters";
      return nullptr;
    }
  }
  for (auto& s : stages) {
    dp->stage_places_.push_back(s.place);
    dp->pipeline_.push_back(std::move(s.stage));
  }
  for (const auto& m : dp->modules_) dp->punt_claimants_.push_back(m.get());
  std::stable_sort(dp->punt_claimants_.begin(), dp->punt_claimants_.end(),
                   [](const Module* a, const Module* b) { return a->punt_order() < b->punt_order(); });
  dp->tables_ = std::make_unique<RcuPublisher<ForwardingTables>>(dp->qsbr_, dp->build_tables(cfg));

  // Queue ownership: worker w polls every RX queue q with q % workers == w.
  for (auto& w : dp->workers_) {
    for (const auto& p : dp->ports_) {
      for (uint16_t q = 0; q < p.rx_queues; ++q) {
        if (q % nworkers == w.index) w.rx.push_back({p.port_id, q});
      }
    }
    w.burst_size = static_cast<uint16_t>(cfg.dataplane.burst_size);
    w.tx_retries = cfg.dataplane.tx_retries;
    w.idle_sleep_us = cfg.dataplane.idle_sleep_us;
    w.pipeline = &dp->pipeline_;
    w.tables = dp->tables_.get();
    w.qsbr = dp->qsbr_;
    w.punt_ring = dp->punt_ring_;
    w.counters = &dp->counter_storage_[w.index];
    w.tx_queue.fill(static_cast<int16_t>(w.index));  // a worker's own queue on every port
    w.stop = &dp->stop_;
    for (const auto& m : dp->modules_) m->setup_worker(w);
  }
  for (const auto& m : dp->modules_) m->setup_worker(dp->control_lane_);
  return dp;
}

Dataplane::~Dataplane() {
  stop_workers();
  while (punt_ring_ && rte_ring_count(punt_ring_) > 0) drain_punt_ring();
  modules_.clear();  // before the ports close: QoS frees what its trees hold, PTP its sockets
  for (auto& p : ports_) port_close(p);
  tables_.reset();
  rte_ring_free(punt_ring_);
  rte_mempool_free(pool_);
  rte_free(qsbr_);
}

std::string Dataplane::start_workers() {
  if (running_) return "";
  stop_.store(false);
  for (auto& w : workers_) {
    if (int rc = rte_eal_remote_launch(worker_main, &w, w.lcore); rc != 0) {
      stop_workers();
      return "cannot launch worker on lcore " + std::to_string(w.lcore) + ": " + std::strerror(-rc);
    }
    log::info("worker", "launched", {{"lcore", w.lcore}, {"rx_queues", w.rx.size()}, {"tx_queue", w.index}});
  }
  running_ = true;
  return "";
}

void Dataplane::stop_workers() {
  stop_.store(true);
  for (auto& w : workers_) rte_eal_wait_lcore(w.lcore);
  running_ = false;
  if (tables_) tables_->synchronize();
}

void Dataplane::control_tick() {
  tables_->reclaim();
  TimeBase::instance().refine();
  poll_links();
  drain_punt_ring();
  presence_->tick();  // before the modules: a client sees a changed next hop in this tick
  for (const auto& m : modules_) {
    if (m->tick(running_)) republish();
  }
  sample_heartbeats();
}

void Dataplane::poll_punts() {
  if (!punt_ring_ || rte_ring_count(punt_ring_) == 0) return;
  // A few bursts a millisecond: a storm waits for the tick's larger budget
  // instead of taking the control lcore (and one publication a millisecond at most).
  drain_punt_ring(4 * kMaxBurst);
  bool changed = false;
  for (const auto& m : modules_) changed |= m->punts_handled();
  if (changed) republish();
}

void Dataplane::poll_links() {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_link_poll_ < kLinkPollInterval) return;
  last_link_poll_ = now;
  for (size_t i = 0; i < ports_.size() && i < config_.ports.size(); ++i) {
    PortRuntime& p = ports_[i];
    read_kernel_drops(p);
    const LinkReading r = read_link(p);
    if (!r.known) continue;
    if (r.state != p.link) {
      ++p.link_changes;
      const nlohmann::json fields = {{"port", p.name}, {"from", link_state_name(p.link)}, {"to", link_state_name(r.state)}};
      if (r.state == LinkState::kUp) log::info("port", "link up", fields);
      else log::warn("port", r.state == LinkState::kAbsent ? "interface gone" : "link down", fields);
      p.link = r.state;
    }
    if (!recoverable(p)) continue;
    // The interface is gone, or was deleted and created again between two
    // polls (a new index): its sockets are dead. Out of the data path first;
    // re-created once the interface is there and no worker can still use it.
    const bool recreated = r.state != LinkState::kAbsent && p.if_index != 0 && r.if_index != p.if_index;
    if (!p.offline && (r.state == LinkState::kAbsent || recreated)) take_offline(p);
    if (p.offline && r.state != LinkState::kAbsent && now >= p.retry_at &&
        rte_rcu_qsbr_check(qsbr_, p.offline_token, false) == 1) {
      recover_port(i);
    }
  }
  for (const auto& m : modules_) m->links_polled();
}

void Dataplane::take_offline(PortRuntime& p) {
  p.offline = true;
  republish();
  p.offline_token = rte_rcu_qsbr_start(qsbr_);
  log::warn("port", "out of the data path until its interface returns", {{"port", p.name}});
}

void Dataplane::recover_port(size_t index) {
  PortRuntime& p = ports_[index];
  const config::PortConfig& cfg = config_.ports[index];
  if (p.started) {
    for (const auto& m : modules_) m->port_closing(p);  // before its sockets close
    port_detach(p);
  }
  PortRuntime fresh;
  std::string err = port_probe(cfg, static_cast<unsigned>(workers_.size()), fresh);
  if (err.empty() && (fresh.port_id != p.port_id || fresh.rx_queues != p.rx_queues || fresh.tx_queues != p.tx_queues)) {
    err = "re-created as port " + std::to_string(fresh.port_id) + " with " + std::to_string(fresh.rx_queues) +
          " RX queues, not as before";
  }
  if (err.empty()) err = port_start(cfg, pool_, fresh);
  if (!err.empty()) {
    // Stays offline (what paused for it stays paused); tried again after a growing pause.
    if (fresh.started || fresh.hotplugged) port_detach(fresh);
    p.retry_backoff = std::clamp<std::chrono::milliseconds>(p.retry_backoff * 2, std::chrono::seconds(1),
                                                            std::chrono::seconds(30));
    p.retry_at = std::chrono::steady_clock::now() + p.retry_backoff;
    log::error("port", "cannot re-create the port",
               {{"port", p.name}, {"error", err}, {"retry_in_ms", p.retry_backoff.count()}});
    return;
  }
  fresh.link = LinkState::kUp;
  fresh.link_changes = p.link_changes;
  fresh.kernel_rx_drops = p.kernel_rx_drops;
  fresh.recoveries = p.recoveries + 1;
  p = std::move(fresh);
  // What depends on the device's sockets and MAC follows it.
  presence_->set_port_mac(p.port_id, mac_of(p));
  for (const auto& m : modules_) m->port_recreated(p);
  republish();
  log::info("port", "recovered: the device was re-created on the returned interface",
            {{"port", p.name}, {"port_id", p.port_id}, {"mac", mac_string(p.mac)}, {"recoveries", p.recoveries}});
}

void Dataplane::republish() {
  tables_->publish(build_tables(config_));
  for (const auto& m : modules_) m->published();
}

void Dataplane::sample_heartbeats() {
  const auto now = std::chrono::steady_clock::now();
  for (size_t i = 0; i < workers_.size(); ++i) {
    const uint64_t hb = counters_[i].heartbeat.load();
    auto& s = heartbeats_[i];
    if (!s.seen || hb != s.value) {
      if (s.seen || hb != 0) s.changed_at = now;
      s.value = hb;
      s.seen = true;
    }
  }
}

bool Dataplane::worker_polling(unsigned index, std::chrono::steady_clock::time_point now) const {
  const auto& hb = heartbeats_[index];
  return running_ && hb.seen && hb.value > 0 && now - hb.changed_at < kHeartbeatStale;
}

void Dataplane::set_punt_handler(uint16_t ethertype, PuntHandler handler) {
  punt_handlers_[ethertype].push_back(std::move(handler));
}

void Dataplane::drain_punt_ring(unsigned max_frames) {
  rte_mbuf* pkts[kMaxBurst];
  PortCounters* control = counters_.empty() ? nullptr : counters_.back().ports.data();
  // At most one ring's worth a tick: a punt flood fills the ring (and is
  // dropped as punt_ring_full by the workers) instead of keeping the control
  // lcore from its timers and the REST API.
  unsigned n;
  for (unsigned budget = max_frames ? max_frames : rte_ring_get_capacity(punt_ring_);
       budget > 0 &&
       (n = rte_ring_dequeue_burst(punt_ring_, reinterpret_cast<void**>(pkts), std::min(budget, unsigned{kMaxBurst}),
                                   nullptr)) > 0;
       budget -= n) {
    for (unsigned i = 0; i < n; ++i) {
      net::PacketView view;
      net::parse_packet(rte_pktmbuf_mtod(pkts[i], const uint8_t*), rte_pktmbuf_data_len(pkts[i]), view);
      ++punt_received_[view.ethertype];
      // ARP/ND for our addresses and from wanted next hops: host/ answers
      // and learns; what it leaves goes on to the modules.
      bool taken = (view.ethertype == net::kEtherArp || view.ip_version == 6) &&
                   presence_->handle_frame(pkts[i]->port, {rte_pktmbuf_mtod(pkts[i], const uint8_t*),
                                                           rte_pktmbuf_data_len(pkts[i])});
      if (taken) rte_pktmbuf_free(pkts[i]);
      for (Module* m : punt_claimants_) {
        if (taken) break;
        if ((taken = m->claim_punt(pkts[i], view))) break;
      }
      auto it = punt_handlers_.find(view.ethertype);
      if (!taken && it != punt_handlers_.end()) {
        for (auto& handler : it->second) {
          if ((taken = handler(pkts[i]))) break;
        }
      }
      if (taken) continue;
      if (control && pkts[i]->port < kMaxPorts) control[pkts[i]->port].drop(DropReason::kPuntUnhandled);
      rte_pktmbuf_free(pkts[i]);
    }
  }
}

bool Dataplane::control_send(uint16_t port_id, std::span<const uint8_t> frame) {
  const size_t len = std::max(frame.size(), size_t{60});  // padded to the Ethernet minimum
  rte_mbuf* m = rte_pktmbuf_alloc(pool_);
  auto* data = m ? reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(len))) : nullptr;
  if (!data) {
    if (m) rte_pktmbuf_free(m);
    if (port_id < kMaxPorts) counters_.back().ports[port_id].drop(DropReason::kControlNoBuffer);
    return false;
  }
  std::memset(data, 0, len);
  std::memcpy(data, frame.data(), frame.size());
  return control_transmit(port_id, &m, 1) == 1;
}

uint16_t Dataplane::control_transmit(uint16_t port_id, rte_mbuf** pkts, uint16_t n, EgressTiming timing) {
  const PortRuntime* port = nullptr;
  for (const auto& p : ports_) {
    if (p.port_id == port_id) port = &p;
  }
  if (!port) {  // not one of ours: nothing to count against
    rte_pktmbuf_free_bulk(pkts, n);
    return 0;
  }
  if (port->offline || !port->started) {  // known here before any table version says so
    control_lane_.counters->ports[port_id].drop(DropReason::kPortDown, n);
    rte_pktmbuf_free_bulk(pkts, n);
    return 0;
  }
  control_lane_.tx_queue[port_id] = static_cast<int16_t>(port->control_tx_queue);
  // No worker runs a tree while the workers are stopped (before start, at
  // shutdown): a frame handed to one would wait unsent and uncounted.
  if (!running_) timing = EgressTiming::kTimestamped;
  control_lane_.round_tables = tables_ ? tables_->load() : nullptr;  // the control lcore publishes them
  control_lane_.round_now_tsc = rte_rdtsc();
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < n; ++i) bytes += rte_pktmbuf_pkt_len(pkts[i]);
  const uint16_t taken = egress_send(control_lane_, port_id, pkts, n, bytes, timing);
  control_lane_.round_tables = nullptr;
  return taken;
}

std::optional<uint16_t> Dataplane::port_id(const std::string& name) const {
  const PortRuntime* p = find_port(ports_, name);
  return p ? std::optional<uint16_t>(p->port_id) : std::nullopt;
}

PortTotals Dataplane::port_totals(uint16_t port_id) const { return sum_port(counters_, port_id); }

config::FieldErrors Dataplane::check_live_change(const config::Config& running,
                                                 const config::Config& next) {
  return restart_only_changes(running, next);
}

std::function<void()> Dataplane::prepare(const config::Config&, const config::Config& next,
                                         config::FieldErrors& errors) {
  // Everything that can fail (tables, hashes, routes) happens here, before
  // persisting; the commit step only installs what was built.
  tables_->reserve_retired(1);
  std::vector<std::function<void()>> commits;
  for (const auto& m : modules_) {
    if (!errors.empty()) break;
    try {  // a throw never crosses the module contract: the change is refused whole
      if (auto commit = m->prepare(config_, next, errors)) commits.push_back(std::move(commit));
    } catch (const std::exception& e) {
      errors.push_back({"/" + std::string(m->name()), std::string("module '") + m->name() + "': " + e.what()});
    }
  }
  if (!errors.empty()) return nullptr;
  return [this, next, commits = std::move(commits)]() mutable {
    for (auto& commit : commits) commit();
    tables_->publish(build_tables(next));
    for (const auto& m : modules_) m->published();
    for (size_t i = 0; i < next.ports.size() && i < ports_.size(); ++i) {
      auto& p = ports_[i];
      const int rc = next.ports[i].promiscuous ? rte_eth_promiscuous_enable(p.port_id)
                                               : rte_eth_promiscuous_disable(p.port_id);
      p.promiscuous = rte_eth_promiscuous_get(p.port_id) == 1;
      if (rc != 0 || p.promiscuous != next.ports[i].promiscuous) {
        log::warn("port", "promiscuous mode not changed by the PMD",
                  {{"port", p.name}, {"wanted", next.ports[i].promiscuous}, {"rc", rc}});
      }
    }
    config_ = std::move(next);  // no allocation after the persist step
  };
}

nlohmann::json Dataplane::ports() {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& p : ports_) list.push_back(port_json(p));
  return {{"ports", list}};
}

nlohmann::json Dataplane::stats() {
  sample_heartbeats();
  for (auto& p : ports_) read_kernel_drops(p);
  nlohmann::json ports = nlohmann::json::array();
  for (const auto& p : ports_) {
    const PortTotals t = port_totals(p.port_id);
    nlohmann::json drops = nlohmann::json::object();
    for (DropId r = 0; r < drop_reason_count(); ++r) drops[drop_reason_name(r)] = t.drops[r];
    ports.push_back({{"name", p.name},
                     {"port_id", p.port_id},
                     {"rx_packets", t.rx_packets},
                     {"rx_bytes", t.rx_bytes},
                     {"tx_packets", t.tx_packets},
                     {"tx_bytes", t.tx_bytes},
                     {"punted", t.punted},
                     {"forwarded", t.forwarded},
                     {"kernel_rx_drops", p.kernel_rx_drops},
                     {"drops_total", t.drops_total()},
                     {"ingress_drops", t.ingress_drops()},
                     {"drops", drops}});
  }
  nlohmann::json workers = nlohmann::json::array();
  const auto now = std::chrono::steady_clock::now();
  for (const auto& w : workers_) {
    const WorkerCounters& c = counters_[w.index];
    nlohmann::json queues = nlohmann::json::array();
    for (const auto& q : w.rx) queues.push_back({{"port_id", q.port}, {"queue", q.queue}});
    workers.push_back({{"index", w.index},
                       {"lcore", w.lcore},
                       {"heartbeat", c.heartbeat.load()},
                       {"busy_polls", c.busy_polls.load()},
                       {"idle_polls", c.idle_polls.load()},
                       {"polling", worker_polling(w.index, now)},
                       {"rx_queues", queues},
                       {"tx_queue", w.index}});
  }
  nlohmann::json reasons = nlohmann::json::array();
  for (DropId r = 0; r < drop_reason_count(); ++r) {
    const DropReasonInfo& info = drop_reason(r);
    reasons.push_back({{"name", info.name}, {"description", info.help}, {"counted_at", drop_stage_name(info.stage)}});
  }
  nlohmann::json punt = nlohmann::json::object();
  for (const auto& [type, count] : punt_received_) punt[config::ethertype_string(type)] = count;
  return {{"uptime_seconds",
           std::chrono::duration_cast<std::chrono::seconds>(now - started_at_).count()},
          {"ports", ports},
          {"workers", workers},
          {"punt_received", punt},
          {"tables", {{"version", tables_->load()->version}, {"retired_pending", tables_->retired()}}},
          {"mempool", {{"size", pool_->size}, {"available", rte_mempool_avail_count(pool_)}}},
          {"timebase", TimeBase::instance().status()},
          {"runtime", runtime_json()},
          {"drop_reasons", reasons}};
}

void Dataplane::metrics(config::MetricsWriter& out) {
  using config::Labels;
  std::vector<PortTotals> totals;
  for (const auto& p : ports_) totals.push_back(port_totals(p.port_id));
  auto per_port = [&](const char* name, const char* help, uint64_t PortTotals::*field) {
    out.counter(name, help);
    for (size_t i = 0; i < ports_.size(); ++i) out.sample(Labels{{"port", ports_[i].name}}, totals[i].*field);
  };
  per_port("meridian_port_rx_packets_total", "Packets received by the workers", &PortTotals::rx_packets);
  per_port("meridian_port_rx_bytes_total", "Bytes received by the workers", &PortTotals::rx_bytes);
  per_port("meridian_port_tx_packets_total", "Packets transmitted", &PortTotals::tx_packets);
  per_port("meridian_port_tx_bytes_total", "Bytes transmitted", &PortTotals::tx_bytes);
  per_port("meridian_port_punted_packets_total", "Packets punted to the control lcore", &PortTotals::punted);
  out.counter("meridian_port_kernel_rx_drops_total",
              "Frames the kernel dropped on a full packet-socket ring before the port saw them (net_af_packet)");
  for (const auto& p : ports_) out.sample(Labels{{"port", p.name}}, p.kernel_rx_drops);
  per_port("meridian_port_forwarded_packets_total",
           "Packets received on the port that left the data path (forwarded, replicated, or sent by a stage)",
           &PortTotals::forwarded);
  out.counter("meridian_port_drops_total", "Packets dropped, by port and reason");
  for (size_t i = 0; i < ports_.size(); ++i) {
    for (DropId r = 0; r < drop_reason_count(); ++r) {
      out.sample(Labels{{"port", ports_[i].name}, {"reason", drop_reason_name(r)}}, totals[i].drops[r]);
    }
  }

  std::vector<rte_eth_stats> hw(ports_.size());
  for (size_t i = 0; i < ports_.size(); ++i) rte_eth_stats_get(ports_[i].port_id, &hw[i]);
  auto hw_counter = [&](const char* name, const char* help, uint64_t rte_eth_stats::*field) {
    out.counter(name, help);
    for (size_t i = 0; i < ports_.size(); ++i) out.sample(Labels{{"port", ports_[i].name}}, hw[i].*field);
  };
  hw_counter("meridian_port_device_rx_packets_total", "Packets received, as counted by the device", &rte_eth_stats::ipackets);
  hw_counter("meridian_port_device_tx_packets_total", "Packets sent, as counted by the device", &rte_eth_stats::opackets);
  hw_counter("meridian_port_device_rx_bytes_total", "Bytes received, as counted by the device", &rte_eth_stats::ibytes);
  hw_counter("meridian_port_device_tx_bytes_total", "Bytes sent, as counted by the device", &rte_eth_stats::obytes);
  hw_counter("meridian_port_device_rx_missed_total", "Packets the device dropped for lack of RX descriptors", &rte_eth_stats::imissed);
  hw_counter("meridian_port_device_rx_errors_total", "Erroneous packets received", &rte_eth_stats::ierrors);
  hw_counter("meridian_port_device_tx_errors_total", "Failed transmissions", &rte_eth_stats::oerrors);
  hw_counter("meridian_port_device_rx_nombuf_total", "RX buffer allocation failures", &rte_eth_stats::rx_nombuf);

  out.gauge("meridian_port_link_up", "1 when the port's link is up (for a Linux-backed port, its interface)");
  for (const auto& p : ports_) out.sample(Labels{{"port", p.name}}, uint64_t{p.link == LinkState::kUp});
  out.gauge("meridian_port_in_data_path", "0 while the port is out of the data path (interface gone, being re-created)");
  for (const auto& p : ports_) out.sample(Labels{{"port", p.name}}, uint64_t{!p.offline});
  out.counter("meridian_port_link_changes_total", "Link state transitions seen");
  for (const auto& p : ports_) out.sample(Labels{{"port", p.name}}, p.link_changes);
  out.counter("meridian_port_recoveries_total", "Times the port's device was re-created after its interface returned");
  for (const auto& p : ports_) out.sample(Labels{{"port", p.name}}, p.recoveries);
  out.gauge("meridian_port_link_speed_bits_per_second", "Negotiated link speed (0 when unknown)");
  for (const auto& p : ports_) {
    out.sample(Labels{{"port", p.name}}, uint64_t{p.started ? read_link(p).speed_mbps : 0u} * 1000000);
  }

  for (const auto& m : modules_) m->metrics(out, running_);

  sample_heartbeats();
  out.counter("meridian_worker_heartbeats_total", "Poll rounds completed by the worker");
  for (const auto& w : workers_) out.sample(Labels{{"lcore", std::to_string(w.lcore)}}, counters_[w.index].heartbeat.load());
  out.counter("meridian_worker_busy_polls_total", "Poll rounds that received packets");
  for (const auto& w : workers_) out.sample(Labels{{"lcore", std::to_string(w.lcore)}}, counters_[w.index].busy_polls.load());
  out.counter("meridian_worker_idle_polls_total", "Poll rounds that received nothing");
  for (const auto& w : workers_) out.sample(Labels{{"lcore", std::to_string(w.lcore)}}, counters_[w.index].idle_polls.load());

  const nlohmann::json runtime = runtime_json();
  out.counter("meridian_stage_sampled_packets_total",
              "Packets of the bursts on which each pipeline stage was timed (one burst in sample_every)");
  for (const auto& s : runtime["stages"]) out.sample(Labels{{"stage", s["name"]}}, s["sampled_packets"].get<uint64_t>());
  out.counter("meridian_stage_sampled_cycles_total",
              "TSC cycles each pipeline stage took over its timed bursts (divide by the packets for cycles per packet)");
  for (const auto& s : runtime["stages"]) out.sample(Labels{{"stage", s["name"]}}, s["cycles"].get<uint64_t>());

  out.counter("meridian_punt_received_total", "Punted frames handled by the control lcore, by EtherType");
  for (const auto& [type, count] : punt_received_) {
    out.sample(Labels{{"ethertype", config::ethertype_string(type)}}, count);
  }
  out.gauge("meridian_host_neighbors", "Next hops in host/'s table, by state (incomplete, reachable, probing, failed, static)");
  std::map<std::string, uint64_t> states;
  for (const auto s : {host::NeighborResolver::State::kIncomplete, host::NeighborResolver::State::kReachable,
                       host::NeighborResolver::State::kProbing, host::NeighborResolver::State::kFailed,
                       host::NeighborResolver::State::kStatic}) {
    states[host::NeighborResolver::state_name(s)] = 0;  // every state, so a series never vanishes
  }
  for (const auto& [hop, e] : presence_->table().entries()) ++states[host::NeighborResolver::state_name(e.state)];
  for (const auto& [state, n] : states) out.sample(Labels{{"state", state}}, n);
  TimeBase::instance().metrics(out);
  out.gauge("meridian_mempool_available_buffers", "Free packet buffers in the mempool");
  out.sample(Labels{}, uint64_t{rte_mempool_avail_count(pool_)});
  const config::Health h = health();
  out.gauge("meridian_ready", "1 when every worker is polling");
  out.sample(Labels{}, uint64_t{h.ready});
  out.gauge("meridian_degraded", "1 when ready but a port's link is down or its interface gone");
  out.sample(Labels{}, uint64_t{h.degraded});
  out.gauge("meridian_uptime_seconds", "Seconds since the data plane started");
  out.sample(Labels{}, std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at_).count());
}

std::optional<config::StatusProvider::Resource> Dataplane::resource(
    config::http::verb method, const std::string& path, const std::map<std::string, std::string>& query) {
  const RestRequest request{method, path, query, running_};
  if (path == "/api/v1/host") {
    if (method != config::http::verb::get) return config::StatusProvider::Resource::not_allowed("GET, HEAD");
    nlohmann::json body = presence_->status_json();
    auto name = [this](nlohmann::json& port) {
      for (const auto& p : ports_) {
        if (p.port_id == port.get<uint16_t>()) {
          port = p.name;
          return;
        }
      }
    };
    for (auto& a : body["addresses"]) name(a["port"]);
    for (auto& n : body["neighbors"]) name(n["port"]);
    return config::StatusProvider::Resource{config::http::status::ok, std::move(body)};
  }
  for (const auto& m : modules_) {
    if (auto r = m->resource(request)) return r;
  }
  return std::nullopt;
}

nlohmann::json Dataplane::runtime_json() const {
  static constexpr const char* kPlaceNames[] = {"ingress", "forward", "egress"};
  uint64_t bursts = 0, packets = 0;
  for (const auto& w : workers_) {
    bursts += counters_[w.index].bursts.load();
    packets += counters_[w.index].burst_packets.load();
  }
  const ForwardingTables& tables = *tables_->load();
  std::vector<bool> active(pipeline_.size());
  for (uint8_t k = 0; k < tables.stage_count; ++k) active[tables.stages[k]] = true;
  nlohmann::json stages = nlohmann::json::array();
  for (size_t s = 0; s < pipeline_.size(); ++s) {
    uint64_t sampled = 0, sampled_packets = 0, cycles = 0;
    for (const auto& w : workers_) {
      const StageCounters& c = counters_[w.index].stages[s];
      sampled += c.bursts.load();
      sampled_packets += c.packets.load();
      cycles += c.cycles.load();
    }
    stages.push_back({{"name", pipeline_[s]->name()},
                      {"place", kPlaceNames[static_cast<size_t>(stage_places_[s])]},
                      {"active", bool(active[s])},
                      {"sampled_bursts", sampled},
                      {"sampled_packets", sampled_packets},
                      {"cycles", cycles},
                      {"cycles_per_packet", sampled_packets ? static_cast<double>(cycles) / sampled_packets : 0.0}});
  }
  return {{"bursts", bursts},
          {"packets", packets},
          {"packets_per_burst", bursts ? static_cast<double>(packets) / bursts : 0.0},
          {"sample_every", kStageSampleEvery},
          {"tsc_hz", tsc_hz()},
          {"stages", stages}};
}

std::vector<std::string> Dataplane::stage_names() const {
  std::vector<std::string> out;
  for (const auto& s : pipeline_) out.push_back(s->name());
  return out;
}

config::Health Dataplane::health() {
  sample_heartbeats();
  config::Health h;
  const auto now = std::chrono::steady_clock::now();
  bool all_polling = running_ && !workers_.empty();
  nlohmann::json workers = nlohmann::json::array();
  for (const auto& w : workers_) {
    const auto& hb = heartbeats_[w.index];
    const bool polling = worker_polling(w.index, now);
    all_polling = all_polling && polling;
    workers.push_back({{"lcore", w.lcore},
                       {"polling", polling},
                       {"heartbeat", hb.value},
                       {"ms_since_advance",
                        hb.seen && hb.value > 0
                            ? std::chrono::duration_cast<std::chrono::milliseconds>(now - hb.changed_at).count()
                            : -1}});
  }
  nlohmann::json links = nlohmann::json::array();
  for (const auto& p : ports_) {
    links.push_back({{"port", p.name}, {"link_up", p.link == LinkState::kUp}, {"link", link_state_name(p.link)},
                     {"in_data_path", !p.offline}});
    if (p.link != LinkState::kUp || p.offline) {
      h.degraded = true;
      h.degraded_reasons.push_back("port " + p.name + ": " +
                                   (p.offline ? "out of the data path, interface " : "link ") + link_state_name(p.link));
    }
  }
  h.ready = all_polling;
  h.detail = {{"workers_running", running_}, {"workers", workers}, {"ports", links}};
  return h;
}

}  // namespace meridian::dataplane
