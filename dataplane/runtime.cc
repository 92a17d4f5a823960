#include "dataplane/runtime.h"

#include <algorithm>
#include <cstring>
#include <regex>

#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "config/log.h"
#include "dataplane/packet_view.h"
#include "vxlan/control.h"
#include "qos/qos_control.h"
#include "ptp/service.h"
#include "ptp/stage.h"
#include "vxlan/stage.h"
#include "dataplane/time_base.h"
#include "dataplane/xconnect.h"

namespace meridian::dataplane {

static_assert(kMaxPorts <= RTE_MAX_ETHPORTS, "counter arrays are indexed by DPDK port id");
static_assert(kMaxBurst <= 64, "burst arrays live on the worker's stack");

namespace {

std::atomic<unsigned> g_instances{0};
constexpr auto kHeartbeatStale = std::chrono::seconds(1);

std::vector<vxlan::PortInfo> port_infos(const std::vector<PortRuntime>& ports) {
  std::vector<vxlan::PortInfo> out;
  for (const auto& p : ports) {
    vxlan::PortInfo i;
    i.name = p.name;
    i.id = p.port_id;
    std::memcpy(i.mac.bytes.data(), p.mac.addr_bytes, 6);
    i.mtu = p.mtu;
    out.push_back(i);
  }
  return out;
}

unsigned max_mtu(const config::Config& c) {
  unsigned m = 1500;
  for (const auto& p : c.ports) m = std::max(m, p.mtu);
  return m;
}

}  // namespace

std::unique_ptr<const ForwardingTables> build_tables(const config::Config& config,
                                                     const std::vector<PortRuntime>& ports,
                                                     uint64_t version,
                                                     std::shared_ptr<const vxlan::VxlanTables> vxlan,
                                                     const qos::QosControl* qos) {
  auto t = std::make_unique<ForwardingTables>();
  t->version = version;
  for (const auto& pp : config.ptp.ports) {
    for (const auto& p : ports) {
      if (p.name != pp.port || p.port_id >= kMaxPorts) continue;
      t->ptp_port[p.port_id] = true;
      if (pp.address) {
        t->ptp_address_family[p.port_id] = pp.address->family;
        t->ptp_address[p.port_id] = pp.address->bytes;
      }
    }
  }
  t->ptp_enabled = config.ptp.enabled();
  t->ptp_tc_enabled = config.ptp.transparent_clock;
  t->ptp_tc_vxlan_port = static_cast<uint16_t>(config.vxlan.vtep.udp_port);
  t->vxlan = std::move(vxlan);
  if (qos) {
    t->qos = qos->plans();
    for (const auto& plan : t->qos) t->qos_enabled = t->qos_enabled || plan;
  }
  auto id_of = [&](const std::string& name) -> uint16_t {
    const PortRuntime* p = find_port(ports, name);
    return p ? p->port_id : kNoPort;
  };
  for (const auto& xc : config.xconnect) {
    const uint16_t a = id_of(xc.a), b = id_of(xc.b);
    if (a == kNoPort || b == kNoPort) continue;  // validation guarantees both exist
    t->xconnect_peer[a] = b;
    t->xconnect_peer[b] = a;
  }
  for (uint16_t type : config.punt.ethertypes) t->punt_ethertype.set(type);
  t->punt_enabled = t->punt_ethertype.any();
  for (const auto& p : ports) {
    if (!p.offline || p.port_id >= kMaxPorts) continue;
    t->port_offline[p.port_id] = true;
    t->any_offline = true;
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
  // VXLAN: control side first (it owns the learn ring the stage posts to).
  Dataplane* self = dp.get();
  dp->vxlan_ = std::make_unique<vxlan::VxlanControl>(
      vxlan::ControlIo{dp->pool_, [self](uint16_t port, rte_mbuf** pkts, uint16_t n) {
                         return self->control_transmit(port, pkts, n);
                       }},
      nworkers, dp->qsbr_, tsc_hz());
  if (std::string err = dp->vxlan_->init(); !err.empty()) {
    error = err;
    return nullptr;
  }
  // QoS: one egress runtime per port; trees may hold at most half the
  // buffers, so shaping cannot starve reception.
  std::vector<qos::QosPortInfo> qos_ports;
  for (const auto& p : dp->ports_) qos_ports.push_back({p.name, p.port_id});
  dp->qos_ = std::make_unique<qos::QosControl>(std::move(qos_ports), nworkers, cfg.dataplane.mbufs / 2,
                                               qos::TscClock(rte_rdtsc(), tsc_hz()));
  {
    config::FieldErrors qos_errors;
    auto plans = dp->qos_->prepare(cfg.qos, static_cast<uint16_t>(cfg.vxlan.vtep.udp_port), qos_errors);
    if (!plans) {
      error = qos_errors.empty() ? "qos: cannot prepare" : qos_errors[0].path + ": " + qos_errors[0].reason;
      return nullptr;
    }
    dp->qos_->commit(plans);
  }
  config::FieldErrors vxlan_errors;
  auto pending = dp->vxlan_->prepare(cfg.vxlan, port_infos(dp->ports_), vxlan_errors);
  if (!pending) {
    error = vxlan_errors.empty() ? "vxlan: cannot prepare" : vxlan_errors[0].path + ": " + vxlan_errors[0].reason;
    return nullptr;
  }
  dp->vxlan_->commit(std::move(pending));
  // PTP: frames the PTP stage punted carry its Rx timestamp flag; the
  // service asks first and passes anything else on (ARP/ND to VXLAN).
  ptp::RxTimestampField rx_timestamp;
  if (!ptp::register_rx_timestamp(rx_timestamp)) {
    error = "cannot register the mbuf Rx timestamp field for PTP";
    return nullptr;
  }
  dp->ptp_io_ = ptp::PtpServiceIo{dp->pool_, [self](uint16_t port, rte_mbuf** pkts, uint16_t n) {
                                    return self->control_transmit(port, pkts, n);
                                  },
                                  rx_timestamp, tsc_hz()};
  if (cfg.ptp.enabled()) {
    config::FieldErrors ptp_errors;
    dp->ptp_ = ptp::PtpService::create(cfg.ptp, dp->ptp_bindings(), dp->ptp_io_, nullptr, ptp_errors);
    if (!dp->ptp_) {
      error = ptp_errors.empty() ? "ptp: cannot start" : ptp_errors[0].path + ": " + ptp_errors[0].reason;
      return nullptr;
    }
  }
  for (uint16_t type : {uint16_t{0x88f7}, uint16_t{0x0800}, uint16_t{0x86dd}, uint16_t{0x0806}}) {
    dp->set_punt_handler(type, [self](rte_mbuf* m) { return self->ptp_ && self->ptp_->handle_punt(m); });
  }
  for (uint16_t type : {uint16_t{0x0806}, uint16_t{0x86dd}}) {
    dp->set_punt_handler(type, [self](rte_mbuf* m) { return self->vxlan_->handle_punt(m); });
  }

  dp->pipeline_.push_back(std::make_unique<PuntClassifierStage>());
  dp->pipeline_.push_back(std::make_unique<ptp::PtpPuntStage>(rx_timestamp));
  std::vector<ptp::PtpTransparentStage::KernelPort> kernel_ports;  // by port id: the TC's kernel stamps
  for (const auto& p : dp->ports_) {
    if (kernel_ports.size() <= p.port_id) kernel_ports.resize(p.port_id + 1u);
    kernel_ports[p.port_id] = {linux_interface(p), p.driver == "net_af_packet"};
  }
  auto tc = std::make_unique<ptp::PtpTransparentStage>(nworkers, tsc_hz(), std::move(kernel_ports));
  dp->ptp_tc_ = tc.get();
  dp->pipeline_.push_back(std::move(tc));
  dp->pipeline_.push_back(std::make_unique<vxlan::VxlanStage>(dp->pool_, dp->vxlan_->learn_ring(), nworkers));
  dp->pipeline_.push_back(std::make_unique<XconnectStage>());
  dp->pipeline_.push_back(std::make_unique<ptp::PtpTransparentEgressStage>(*dp->ptp_tc_));
  dp->tables_ = std::make_unique<RcuPublisher<ForwardingTables>>(
      dp->qsbr_, build_tables(cfg, dp->ports_, ++dp->table_versions_,
                              dp->vxlan_->tables(), dp->qos_.get()));

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
    w.stop = &dp->stop_;
    w.egress = dp->qos_->egress();
    w.qos_owned = dp->qos_->owned_by(w.index);
    w.clock = &dp->qos_->clock();
  }
  return dp;
}

Dataplane::~Dataplane() {
  stop_workers();
  while (punt_ring_ && rte_ring_count(punt_ring_) > 0) drain_punt_ring();
  vxlan_.reset();
  qos_.reset();  // frees what the trees still hold
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
  if (vxlan_ && vxlan_->tick()) republish();
  if (qos_) qos_->tick(running_);
  if (ptp_) ptp_->tick();
  sample_heartbeats();
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
  if (parked_ptp_ && now >= ptp_retry_at_) resume_ptp();
}

bool Dataplane::runs_ptp(const PortRuntime& port) const {
  return std::any_of(config_.ptp.ports.begin(), config_.ptp.ports.end(),
                     [&port](const config::PtpPortConfig& c) { return c.port == port.name; });
}

void Dataplane::resume_ptp() {
  // Waits for every PTP port whose device was closed; one still offline but
  // not yet closed is no obstacle (its own re-creation pauses PTP again).
  if (std::any_of(ports_.begin(), ports_.end(), [this](const PortRuntime& q) { return !q.started && runs_ptp(q); })) {
    return;
  }
  config::FieldErrors errors;
  if (auto next = ptp::PtpService::create(config_.ptp, ptp_bindings(), ptp_io_, parked_ptp_.get(), errors)) {
    ptp_ = std::move(next);
    parked_ptp_.reset();
    ptp_retry_backoff_ = std::chrono::milliseconds(0);
    log::info("ptp", "resumed after the port's device was re-created");
    return;
  }
  ptp_retry_backoff_ = std::clamp<std::chrono::milliseconds>(ptp_retry_backoff_ * 2, std::chrono::seconds(1),
                                                             std::chrono::seconds(30));
  ptp_retry_at_ = std::chrono::steady_clock::now() + ptp_retry_backoff_;
  for (const auto& e : errors) {
    log::error("ptp", "cannot resume; retrying",
               {{"path", e.path}, {"error", e.reason}, {"retry_in_ms", ptp_retry_backoff_.count()}});
  }
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
  if (ptp_ && p.started && runs_ptp(p)) parked_ptp_ = std::move(ptp_);  // before its packet socket closes
  if (p.started) port_detach(p);
  PortRuntime fresh;
  std::string err = port_probe(cfg, static_cast<unsigned>(workers_.size()), fresh);
  if (err.empty() && (fresh.port_id != p.port_id || fresh.rx_queues != p.rx_queues || fresh.tx_queues != p.tx_queues)) {
    err = "re-created as port " + std::to_string(fresh.port_id) + " with " + std::to_string(fresh.rx_queues) +
          " RX queues, not as before";
  }
  if (err.empty()) err = port_start(cfg, pool_, fresh);
  if (!err.empty()) {
    // Stays offline (PTP stays paused); tried again after a growing pause.
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
  config::FieldErrors errors;
  if (auto pending = vxlan_->prepare(config_.vxlan, port_infos(ports_), errors)) vxlan_->commit(std::move(pending));
  if (ptp_tc_) ptp_tc_->reopen_port(p.port_id);
  for (const auto& e : errors) log::error("port", "after re-creating the port", {{"port", p.name}, {"path", e.path}, {"error", e.reason}});
  republish();
  log::info("port", "recovered: the device was re-created on the returned interface",
            {{"port", p.name}, {"port_id", p.port_id}, {"mac", mac_string(p.mac)}, {"recoveries", p.recoveries}});
}

void Dataplane::republish() {
  tables_->publish(build_tables(config_, ports_, ++table_versions_, vxlan_->tables(), qos_.get()));
  vxlan_->published();
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

std::vector<ptp::PtpPortBinding> Dataplane::ptp_bindings() const {
  std::vector<ptp::PtpPortBinding> out;
  for (const auto& p : ports_) {
    if (!p.started) continue;
    ptp::PtpPortBinding b;
    b.name = p.name;
    b.port_id = p.port_id;
    b.linux_interface = linux_interface(p);
    b.kernel_tx_socket = p.kernel_tx_socket;
    rte_ether_addr mac{};
    if (rte_eth_macaddr_get(p.port_id, &mac) == 0) std::copy(mac.addr_bytes, mac.addr_bytes + 6, b.mac.begin());
    out.push_back(b);
  }
  return out;
}

void Dataplane::drain_punt_ring() {
  rte_mbuf* pkts[kMaxBurst];
  PortCounters* control = counters_.empty() ? nullptr : counters_.back().ports.data();
  // At most one ring's worth a tick: a punt flood fills the ring (and is
  // dropped as punt_ring_full by the workers) instead of keeping the control
  // lcore from its timers and the REST API.
  unsigned n;
  for (unsigned budget = rte_ring_get_capacity(punt_ring_);
       budget > 0 &&
       (n = rte_ring_dequeue_burst(punt_ring_, reinterpret_cast<void**>(pkts), std::min(budget, unsigned{kMaxBurst}),
                                   nullptr)) > 0;
       budget -= n) {
    for (unsigned i = 0; i < n; ++i) {
      PacketView view;
      parse_packet(rte_pktmbuf_mtod(pkts[i], const uint8_t*), rte_pktmbuf_data_len(pkts[i]), view);
      ++punt_received_[view.ethertype];
      auto it = punt_handlers_.find(view.ethertype);
      bool taken = false;
      if (it != punt_handlers_.end()) {
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

uint16_t Dataplane::control_transmit(uint16_t port_id, rte_mbuf** pkts, uint16_t n) {
  const PortRuntime* port = nullptr;
  for (const auto& p : ports_) {
    if (p.port_id == port_id) port = &p;
  }
  if (!port) {  // not one of ours: nothing to count against
    rte_pktmbuf_free_bulk(pkts, n);
    return 0;
  }
  PortCounters& c = counters_.back().ports[port_id];
  if (port->offline || !port->started) {
    c.drop(DropReason::kPortDown, n);
    rte_pktmbuf_free_bulk(pkts, n);
    return 0;
  }
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < n; ++i) bytes += rte_pktmbuf_pkt_len(pkts[i]);
  uint16_t sent = 0;
  if (port->control_tx_queue >= 0) {
    sent = rte_eth_tx_burst(port_id, static_cast<uint16_t>(port->control_tx_queue), pkts, n);
  }
  for (uint16_t i = sent; i < n; ++i) bytes -= rte_pktmbuf_pkt_len(pkts[i]);
  c.tx_packets.add(sent);
  c.tx_bytes.add(bytes);
  if (sent < n) {
    c.drop(port->control_tx_queue >= 0 ? DropReason::kControlTxFull : DropReason::kNoControlQueue,
           n - sent);
    rte_pktmbuf_free_bulk(pkts + sent, n - sent);
  }
  return sent;
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
  for (size_t i = 0; i < next.xconnect.size(); ++i) {
    if (!port_id(next.xconnect[i].a) || !port_id(next.xconnect[i].b)) {
      errors.push_back({"/xconnect/" + std::to_string(i), "port is not running"});
    }
  }
  std::shared_ptr<vxlan::VxlanControl::Pending> pending;
  if (errors.empty()) pending = vxlan_->prepare(next.vxlan, port_infos(ports_), errors);
  std::shared_ptr<qos::QosPlans> qos_plans;
  if (errors.empty()) qos_plans = qos_->prepare(next.qos, static_cast<uint16_t>(next.vxlan.vtep.udp_port), errors);
  // PTP restarts its instance on any change of its section; the clock
  // carries over, so time and frequency do not jump.
  const bool ptp_changed = !(next.ptp == config_.ptp);
  std::shared_ptr<ptp::PtpService> ptp_next;
  if (errors.empty() && ptp_changed && next.ptp.enabled()) {
    ptp_next = ptp::PtpService::create(next.ptp, ptp_bindings(), ptp_io_, ptp_ ? ptp_.get() : parked_ptp_.get(), errors);
  }
  if (!errors.empty()) return nullptr;
  return [this, next, pending, qos_plans, ptp_changed, ptp_next]() mutable {
    vxlan_->commit(pending);
    qos_->commit(qos_plans);
    if (ptp_changed) {
      ptp_ = ptp_next;
      parked_ptp_.reset();
    }
    tables_->publish(build_tables(next, ports_, ++table_versions_, vxlan_->tables(), qos_.get()));
    vxlan_->published();
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
    for (size_t r = 0; r < kDropReasonCount; ++r) drops[kDropReasonNames[r]] = t.drops[r];
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
  for (size_t r = 0; r < kDropReasonCount; ++r) {
    reasons.push_back({{"name", kDropReasonNames[r]},
                       {"description", kDropReasonHelp[r]},
                       {"counted_at", drop_stage_name(kDropReasonStage[r])}});
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
    for (size_t r = 0; r < kDropReasonCount; ++r) {
      out.sample(Labels{{"port", ports_[i].name}, {"reason", kDropReasonNames[r]}}, totals[i].drops[r]);
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

  vxlan_->metrics(out);
  qos_->metrics(out, running_);
  if (ptp_) ptp_->metrics(out);
  const auto tc = ptp_tc_->totals();
  out.counter("meridian_ptp_tc_corrected_total", "Forwarded PTP messages the transparent clock corrected, by kind");
  out.sample(Labels{{"kind", "event"}}, tc.corrected);
  out.sample(Labels{{"kind", "follow_up"}}, tc.followups_corrected);
  out.sample(Labels{{"kind", "delay_resp"}}, tc.delay_resps_corrected);
  out.counter("meridian_ptp_tc_follow_up_unmatched_total", "Forwarded Follow_Ups whose Sync residence was not found");
  out.sample(Labels{}, tc.followups_unmatched);
  out.counter("meridian_ptp_tc_delay_resp_unmatched_total",
              "Forwarded Delay_Resps whose Delay_Req residence was not found (the request took another path)");
  out.sample(Labels{}, tc.delay_resps_unmatched);
  out.counter("meridian_ptp_tc_ingress_stamps_total",
              "Transparent-clock residences by receive timestamp: the kernel's, or the poll round's TSC");
  out.sample(Labels{{"source", "kernel"}}, tc.kernel_ingress);
  out.sample(Labels{{"source", "tsc"}}, tc.tsc_ingress);
  out.counter("meridian_ptp_tc_egress_stamps_total",
              "Transparent-clock residences by departure: the driver's stamp of the TC's own send, the packet "
              "tap's send stamp, or the stage");
  out.sample(Labels{{"source", "driver"}}, tc.driver_egress);
  out.sample(Labels{{"source", "kernel"}}, tc.kernel_egress);
  out.sample(Labels{{"source", "stage"}}, tc.stage_egress);
  out.counter("meridian_ptp_tc_egress_sends_total",
              "Forwarded two-step event messages bound for a net_af_packet port, by what the transparent clock's "
              "stamping socket did: sent, or left to the worker's TX queue (failed, unavailable, kept_in_order)");
  out.sample(Labels{{"result", "sent"}}, tc.egress_sent);
  out.sample(Labels{{"result", "failed"}}, tc.egress_send_failed);
  out.sample(Labels{{"result", "unavailable"}}, tc.egress_unavailable);
  out.sample(Labels{{"result", "kept_in_order"}}, tc.egress_kept_in_order);

  sample_heartbeats();
  out.counter("meridian_worker_heartbeats_total", "Poll rounds completed by the worker");
  for (const auto& w : workers_) out.sample(Labels{{"lcore", std::to_string(w.lcore)}}, counters_[w.index].heartbeat.load());
  out.counter("meridian_worker_busy_polls_total", "Poll rounds that received packets");
  for (const auto& w : workers_) out.sample(Labels{{"lcore", std::to_string(w.lcore)}}, counters_[w.index].busy_polls.load());
  out.counter("meridian_worker_idle_polls_total", "Poll rounds that received nothing");
  for (const auto& w : workers_) out.sample(Labels{{"lcore", std::to_string(w.lcore)}}, counters_[w.index].idle_polls.load());

  out.counter("meridian_punt_received_total", "Punted frames handled by the control lcore, by EtherType");
  for (const auto& [type, count] : punt_received_) {
    out.sample(Labels{{"ethertype", config::ethertype_string(type)}}, count);
  }
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
  using config::http::status;
  auto error = [](status s, const std::string& field, const std::string& reason) {
    return Resource{s, {{"error", reason}, {"details", {{{"path", field}, {"reason", reason}}}}}, ""};
  };
  auto not_allowed = [](const char* allow) {
    const std::string reason = std::string("allowed: ") + allow;
    return Resource{status::method_not_allowed,
                    {{"error", "method not allowed"}, {"details", {{{"path", ""}, {"reason", reason}}}}},
                    allow};
  };
  if (path == "/api/v1/ptp") {
    if (method != config::http::verb::get) return not_allowed("GET, HEAD");
    const auto tc = ptp_tc_->totals();
    nlohmann::json tc_json{{"enabled", config_.ptp.transparent_clock},
                           {"corrected", tc.corrected},
                           {"follow_ups_corrected", tc.followups_corrected},
                           {"follow_ups_unmatched", tc.followups_unmatched},
                           {"delay_resps_corrected", tc.delay_resps_corrected},
                           {"delay_resps_unmatched", tc.delay_resps_unmatched},
                           {"kernel_ingress", tc.kernel_ingress},
                           {"tsc_ingress", tc.tsc_ingress},
                           {"driver_egress", tc.driver_egress},
                           {"kernel_egress", tc.kernel_egress},
                           {"stage_egress", tc.stage_egress},
                           {"egress_sent", tc.egress_sent},
                           {"egress_send_failed", tc.egress_send_failed},
                           {"egress_unavailable", tc.egress_unavailable},
                           {"egress_kept_in_order", tc.egress_kept_in_order}};
    if (!ptp_ && parked_ptp_) {
      return error(status::service_unavailable, "/ptp", "PTP is paused while a port's device is re-created");
    }
    if (!ptp_) {
      if (config_.ptp.transparent_clock) {
        return Resource{status::ok, {{"transparent_clock", tc_json}, {"ports", nlohmann::json::array()}}, ""};
      }
      return error(status::not_found, "/ptp", "PTP is not configured (no ptp ports, no transparent clock)");
    }
    nlohmann::json body = ptp_->status();
    body["transparent_clock"] = tc_json;
    return Resource{status::ok, body};
  }
  if (path == "/api/v1/qos/classes") {
    if (method != config::http::verb::get) return not_allowed("GET, HEAD");
    std::optional<uint16_t> port;
    for (const auto& [key, value] : query) {
      if (key != "port") return error(status::bad_request, "?" + key, "unknown query parameter '" + key + "'");
      port = port_id(value);
      if (!port) return error(status::not_found, "?port", "no port named '" + value + "'");
      if (!qos_->shaped(*port)) return error(status::not_found, "?port", "port '" + value + "' has no QoS tree");
    }
    return Resource{status::ok, qos_->classes_json(port, running_)};
  }
  static const std::string kPrefix = "/api/v1/vxlan/";
  if (path.rfind(kPrefix, 0) != 0) return std::nullopt;
  const std::string what = path.substr(kPrefix.size());
  static const std::map<std::string, std::vector<std::string>> kParams = {
      {"fdb", {"vni", "mac"}}, {"neighbors", {"vni"}}, {"vteps", {}}, {"bridge_domains", {"vni"}},
      {"counters/clear", {"vni"}}};
  auto known = kParams.find(what);
  if (known == kParams.end()) return std::nullopt;
  const bool is_clear = what == "counters/clear";
  if (is_clear ? method != config::http::verb::post : method != config::http::verb::get) {
    return not_allowed(is_clear ? "POST" : "GET, HEAD");
  }
  for (const auto& [key, value] : query) {
    if (std::find(known->second.begin(), known->second.end(), key) == known->second.end()) {
      return error(status::bad_request, "?" + key, "unknown query parameter '" + key + "'");
    }
  }
  std::optional<uint32_t> vni;
  if (auto it = query.find("vni"); it != query.end()) {
    char* end = nullptr;
    const unsigned long v = std::strtoul(it->second.c_str(), &end, 10);
    if (it->second.empty() || *end || v == 0 || v > config::kMaxVni) {
      return error(status::bad_request, "?vni", "vni: expected an integer between 1 and 16777215");
    }
    vni = static_cast<uint32_t>(v);
  }
  std::optional<config::MacAddress> mac;
  if (auto it = query.find("mac"); it != query.end()) {
    mac = config::parse_mac(it->second);
    if (!mac) return error(status::bad_request, "?mac", "mac: expected a MAC address like 02:00:00:00:00:01");
  }
  if (vni && !vxlan_->has_vni(*vni)) {
    return error(status::not_found, "?vni", "no bridge domain with VNI " + std::to_string(*vni));
  }
  if (what == "fdb") return Resource{status::ok, vxlan_->fdb_json(vni, mac)};
  if (what == "neighbors") return Resource{status::ok, vxlan_->neighbors_json(vni)};
  if (what == "vteps") return Resource{status::ok, vxlan_->vteps_json()};
  if (what == "bridge_domains") return Resource{status::ok, vxlan_->bridge_domains_json(vni)};
  vxlan_->clear(vni);
  log::info("vxlan", "counters cleared", {{"vni", vni ? nlohmann::json(*vni) : nlohmann::json("all")}});
  return Resource{status::ok, {{"cleared", vni ? nlohmann::json(*vni) : nlohmann::json("all")}}};
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
