#include "qos/qos_control.h"

#include <cmath>
#include <thread>
#include <unordered_map>

#include <rte_cycles.h>

#include "config/units.h"

namespace meridian::qos {

namespace {

const char* mode_name(HtbScheduler::Mode m) {
  switch (m) {
    case HtbScheduler::Mode::kGreen: return "green";    // within rate
    case HtbScheduler::Mode::kYellow: return "yellow";  // borrowing, within ceil
    case HtbScheduler::Mode::kRed: return "red";        // at ceil
  }
  return "?";
}

}  // namespace

QosControl::QosControl(std::vector<QosPortInfo> ports, unsigned workers, uint32_t buffer_limit, TscClock clock)
    : ports_(std::move(ports)), workers_(workers), buffer_limit_(buffer_limit), clock_(clock) {
  // Other workers and the control lcore hand packets to the port's owner.
  const unsigned handoff_slots = 4096;
  for (const auto& p : ports_) {
    owned_[p.id] = std::make_unique<EgressPort>(p.id, p.id % workers, handoff_slots);
    egress_[p.id] = owned_[p.id].get();
  }
}

QosControl::~QosControl() {
  release_all();
  owned_ = {};  // before the retained plans the runtimes point into
}

std::vector<uint16_t> QosControl::owned_by(unsigned worker) const {
  std::vector<uint16_t> out;
  for (const auto& p : ports_) {
    if (p.id % workers_ == worker) out.push_back(p.id);
  }
  return out;
}

std::shared_ptr<QosPlans> QosControl::prepare(const config::QosConfig& cfg, uint16_t vxlan_udp_port,
                                              config::FieldErrors& errors) {
  auto plans = std::make_shared<QosPlans>();
  const PortIdOf port_id_of = [this](const std::string& name) -> std::optional<uint16_t> {
    for (const auto& p : ports_) {
      if (p.name == name) return p.id;
    }
    return std::nullopt;
  };
  const uint64_t now_ps = clock_.to_ps(rte_rdtsc());
  for (size_t i = 0; i < cfg.ports.size(); ++i) {
    const config::QosPort& q = cfg.ports[i];
    const std::optional<uint16_t> id = port_id_of(q.port);
    const std::string path = "/qos/ports/" + std::to_string(i);
    if (!id) {
      errors.push_back({path + "/port", "port '" + q.port + "' is not running"});
      continue;
    }
    uint64_t limits = 0;
    for (const auto& c : q.classes) limits += c.limit_packets;
    const uint32_t capacity = static_cast<uint32_t>(std::min<uint64_t>(limits, buffer_limit_));
    if (const auto& running = current_[*id]; running && running->source == q && running->vxlan_udp_port == vxlan_udp_port) {
      (*plans)[*id] = running;  // unchanged: same plan, same statistics
      continue;
    }
    try {
      (*plans)[*id] = build_plan(q, port_id_of, vxlan_udp_port, capacity, current_[*id], now_ps, ++plan_ids_);
    } catch (const std::exception& e) {
      errors.push_back({path, std::string("cannot build the QoS tree: ") + e.what()});
    }
  }
  if (!errors.empty()) return nullptr;
  for (auto& r : retained_) r.reserve(r.size() + 1);  // commit must not allocate
  return plans;
}

void QosControl::commit(const std::shared_ptr<QosPlans>& plans) {
  for (size_t p = 0; p < current_.size(); ++p) {
    if (current_[p] && current_[p] != (*plans)[p]) retained_[p].push_back(current_[p]);
  }
  current_ = *plans;
}

void QosControl::drop_unused_plans() {
  for (const auto& p : ports_) {
    const QosPlan* active = egress_[p.id]->active();
    std::erase_if(retained_[p.id], [&](const auto& plan) { return plan.get() != active; });
  }
}

bool QosControl::poll(uint16_t port, bool workers_running) {
  const QosPlan* plan = current_[port].get();
  if (!plan) return false;
  PortStats& st = stats_[port];
  EgressPort& e = *egress_[port];
  if (!workers_running) {  // nobody else touches the tree: read it directly
    std::vector<ClassSnapshot> snap;
    uint64_t plan_id = 0;
    e.snapshot_now(snap, plan_id);
    if (plan_id != plan->id) return false;
    ingest(st, *plan, snap, clock_.to_ps(rte_rdtsc()));
    return true;
  }
  bool took = false;
  uint64_t plan_id = 0, taken_ps = 0;
  if (const auto* snap = e.snapshot_ready(plan_id, taken_ps); snap && st.requested) {
    st.requested = false;
    if (plan_id == plan->id && snap->size() == plan->tree.classes.size()) {
      ingest(st, *plan, *snap, taken_ps);
      took = true;
    }
  }
  if (!st.requested && e.request_snapshot(plan->tree.classes.size())) st.requested = true;
  return took;
}

bool QosControl::refresh(uint16_t port, bool workers_running, std::chrono::milliseconds wait) {
  poll(port, workers_running);  // takes in an older answer and asks anew
  if (!workers_running) return current_[port] != nullptr;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < deadline) {
    if (poll(port, true)) return true;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return false;
}

void QosControl::ingest(PortStats& st, const QosPlan& plan, const std::vector<ClassSnapshot>& snap,
                        uint64_t taken_ps) {
  const size_t n = snap.size();
  if (st.plan_id != plan.id || st.base.size() != n) {
    // A new plan. Counters of classes that kept their id carried over in
    // the scheduler, so their estimate goes on; new classes start at zero.
    const bool first = st.plan_id == 0;
    std::unordered_map<std::string, uint32_t> before;
    for (uint32_t c = 0; c < st.class_ids.size(); ++c) before.emplace(st.class_ids[c], c);
    std::vector<ClassStats> base(n);
    std::vector<double> bps(n, 0), pps(n, 0);
    for (uint32_t c = 0; c < n; ++c) {
      base[c] = snap[c].stats;
      auto it = first ? before.end() : before.find(plan.class_ids[c]);
      if (it == before.end()) continue;
      base[c] = st.base[it->second];
      bps[c] = st.rate_bps[it->second];
      pps[c] = st.rate_pps[it->second];
    }
    st.class_ids = plan.class_ids;
    st.base = std::move(base);
    st.rate_bps = std::move(bps);
    st.rate_pps = std::move(pps);
    st.plan_id = plan.id;
    if (first) st.base_ps = taken_ps;
  }
  st.last = snap;
  const double dt = static_cast<double>(taken_ps - st.base_ps) / static_cast<double>(kPicosPerSecond);
  // Too close to the base sample to say anything: the next one spans longer.
  if (taken_ps <= st.base_ps || dt < 0.001) return;
  const double weight = 1.0 - std::exp(-dt / kRateTimeConstantSeconds);
  for (size_t c = 0; c < n; ++c) {
    const ClassStats& now = snap[c].stats;
    const ClassStats& prev = st.base[c];
    const double bits = now.bytes >= prev.bytes ? 8.0 * static_cast<double>(now.bytes - prev.bytes) : 0;
    const double packets = now.packets >= prev.packets ? static_cast<double>(now.packets - prev.packets) : 0;
    st.rate_bps[c] += (bits / dt - st.rate_bps[c]) * weight;
    st.rate_pps[c] += (packets / dt - st.rate_pps[c]) * weight;
    st.base[c] = now;
  }
  st.base_ps = taken_ps;
}

void QosControl::tick(bool workers_running) {
  drop_unused_plans();
  const auto now = std::chrono::steady_clock::now();
  for (const auto& p : ports_) {
    if (!current_[p.id]) continue;
    PortStats& st = stats_[p.id];
    if (now < st.next_request) continue;
    st.next_request = now + kSampleInterval;
    poll(p.id, workers_running);
  }
}

nlohmann::json QosControl::classes_json(std::optional<uint16_t> only, bool workers_running) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : ports_) {
    if ((only && *only != p.id) || !current_[p.id]) continue;
    const bool fresh = refresh(p.id, workers_running, std::chrono::milliseconds(100));
    const QosPlan& plan = *current_[p.id];
    const PortStats& st = stats_[p.id];
    const bool have = st.plan_id == plan.id;
    nlohmann::json classes = nlohmann::json::array();
    for (uint32_t c = 0; c < plan.tree.classes.size(); ++c) {
      const ClassSpec& s = plan.tree.classes[c];
      const bool leaf = plan.scheduler->is_leaf(c);
      nlohmann::json j = {{"id", plan.class_ids[c]},
                          {"parent", s.parent == kNone ? nlohmann::json(nullptr) : nlohmann::json(plan.class_ids[s.parent])},
                          {"leaf", leaf},
                          {"rate", config::format_rate(s.rate_bps)},
                          {"rate_bps", s.rate_bps},
                          {"ceil", config::format_rate(s.ceil_bps)},
                          {"ceil_bps", s.ceil_bps},
                          {"burst_bytes", s.burst_bytes},
                          {"cburst_bytes", s.cburst_bytes},
                          {"prio", s.prio},
                          {"quantum", s.quantum},
                          {"overhead", s.overhead}};
      if (leaf) {
        j["limit_packets"] = s.limit_packets;
        j["dscp_remark"] = plan.actions[c].dscp_remark >= 0 ? nlohmann::json(plan.actions[c].dscp_remark) : nlohmann::json(nullptr);
      }
      if (have && c < st.last.size()) {
        const ClassSnapshot& x = st.last[c];
        j["stats"] = {{"bytes", x.stats.bytes},
                      {"packets", x.stats.packets},
                      {"drops", x.stats.drops},
                      {"ecn_marks", x.stats.ecn_marks},
                      {"overlimits", x.stats.overlimits},
                      {"lends", x.stats.lends},
                      {"borrows", x.stats.borrows},
                      {"tokens_bytes", x.tokens_bytes},
                      {"ctokens_bytes", x.ctokens_bytes},
                      {"queue_packets", x.queue_packets},
                      {"queue_bytes", x.queue_bytes},
                      {"mode", mode_name(x.mode)},
                      {"rate_estimate_bps", std::llround(st.rate_bps[c])},
                      {"rate_estimate_pps", std::llround(st.rate_pps[c])}};
      }
      classes.push_back(std::move(j));
    }
    out.push_back({{"port", p.name},
                   {"port_id", p.id},
                   {"default_class", plan.class_ids[plan.tree.default_class]},
                   {"rules", plan.classifier.size()},
                   {"owner_worker", egress_[p.id]->owner()},
                   {"stats_fresh", fresh},
                   {"rate_estimate", {{"sample_interval_ms", kSampleInterval.count()},
                                      {"time_constant_s", kRateTimeConstantSeconds}}},
                   {"classes", std::move(classes)}});
  }
  return {{"ports", std::move(out)}};
}

void QosControl::metrics(config::MetricsWriter& out, bool workers_running) {
  struct Row {
    const QosPortInfo* port;
    const QosPlan* plan;
    const PortStats* st;
  };
  std::vector<Row> rows;
  for (const auto& p : ports_) {
    if (!current_[p.id]) continue;
    refresh(p.id, workers_running, std::chrono::milliseconds(50));
    if (stats_[p.id].plan_id == current_[p.id]->id) rows.push_back({&p, current_[p.id].get(), &stats_[p.id]});
  }
  auto each = [&](auto&& value) {
    for (const Row& r : rows) {
      for (uint32_t c = 0; c < r.st->last.size(); ++c) {
        out.sample(config::Labels{{"port", r.port->name}, {"class", r.plan->class_ids[c]}}, value(*r.st, c));
      }
    }
  };
  auto counter = [&](const char* name, const char* help, uint64_t ClassStats::*field) {
    out.counter(name, help);
    each([&](const PortStats& st, uint32_t c) { return st.last[c].stats.*field; });
  };
  counter("meridian_qos_class_bytes_total", "Wire bytes (length + overhead) sent by the class", &ClassStats::bytes);
  counter("meridian_qos_class_packets_total", "Packets sent by the class", &ClassStats::packets);
  counter("meridian_qos_class_drops_total", "Packets tail-dropped at the class's queue", &ClassStats::drops);
  counter("meridian_qos_class_ecn_marks_total", "ECT packets marked CE by the class's queue", &ClassStats::ecn_marks);
  counter("meridian_qos_class_overlimits_total", "Times the class went over rate or ceil, or was held by an ancestor", &ClassStats::overlimits);
  counter("meridian_qos_class_lends_total", "Packets the class lent its rate tokens for", &ClassStats::lends);
  counter("meridian_qos_class_borrows_total", "Packets the class sent on borrowed tokens", &ClassStats::borrows);
  out.gauge("meridian_qos_class_tokens_bytes", "Rate bucket level in bytes (negative: owed)");
  each([](const PortStats& st, uint32_t c) { return static_cast<double>(st.last[c].tokens_bytes); });
  out.gauge("meridian_qos_class_ctokens_bytes", "Ceil bucket level in bytes (negative: owed)");
  each([](const PortStats& st, uint32_t c) { return static_cast<double>(st.last[c].ctokens_bytes); });
  out.gauge("meridian_qos_class_queue_packets", "Packets queued at the class");
  each([](const PortStats& st, uint32_t c) { return uint64_t{st.last[c].queue_packets}; });
  out.gauge("meridian_qos_class_queue_bytes", "Bytes queued at the class");
  each([](const PortStats& st, uint32_t c) { return st.last[c].queue_bytes; });
  out.gauge("meridian_qos_class_rate_bits_per_second", "Estimated send rate in wire bits/s (EWMA, 1 s time constant)");
  each([](const PortStats& st, uint32_t c) { return st.rate_bps[c]; });
  out.gauge("meridian_qos_class_rate_packets_per_second", "Estimated send rate in packets/s (EWMA, 1 s time constant)");
  each([](const PortStats& st, uint32_t c) { return st.rate_pps[c]; });
}

void QosControl::release_all() {
  for (auto& e : owned_) {
    if (e) e->release_all();
  }
}

}  // namespace meridian::qos
