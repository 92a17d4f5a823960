#include "dataplane/xconnect.h"

namespace meridian::dataplane {

bool PuntClassifierStage::active(const ForwardingTables& t) const { return t.punt_enabled; }

void PuntClassifierStage::process(PacketBatch& b, const StageContext& ctx) const {
  for (uint16_t i = 0; i < b.count; ++i) {
    if (!b.undecided(i)) continue;
    if (ctx.tables.punt_ethertype.test(b.ethertype(i))) b.punt(i);
  }
}

void XconnectStage::process(PacketBatch& b, const StageContext& ctx) const {
  const uint16_t peer = b.rx_port < kMaxPorts ? ctx.tables.xconnect_peer[b.rx_port] : kNoPort;
  if (peer == kNoPort) {
    for (uint16_t i = 0; i < b.count; ++i) {
      if (b.undecided(i)) b.drop(i, DropReason::kNoForwarding);
    }
    return;
  }
  // Branch-free selects: the compiler vectorizes this loop.
  for (uint16_t i = 0; i < b.count; ++i) {
    const bool undecided = b.undecided(i);
    b.tx_port[i] = undecided ? peer : b.tx_port[i];
    b.verdict[i] = undecided ? Verdict::kForward : b.verdict[i];
  }
}

Pipeline make_xconnect_pipeline() {
  Pipeline p;
  p.push_back(std::make_unique<PuntClassifierStage>());
  p.push_back(std::make_unique<XconnectStage>());
  return p;
}

std::unique_ptr<Module> XconnectModule::create(const ModuleHost& host, std::string&) {
  return std::unique_ptr<Module>(new XconnectModule(host));
}

std::vector<PlacedStage> XconnectModule::stages() {
  std::vector<PlacedStage> out;
  out.push_back({StagePlace::kIngress, 0, std::make_unique<PuntClassifierStage>()});
  out.push_back({StagePlace::kForward, PlacedStage::kLast, std::make_unique<XconnectStage>()});
  return out;
}

std::function<void()> XconnectModule::prepare(const config::Config&, const config::Config& next,
                                              config::FieldErrors& errors) {
  for (size_t i = 0; i < next.xconnect.size(); ++i) {
    if (!find_port(host_.ports, next.xconnect[i].a) || !find_port(host_.ports, next.xconnect[i].b)) {
      errors.push_back({"/xconnect/" + std::to_string(i), "port is not running"});
    }
  }
  return nullptr;  // the tables carry it all
}

void XconnectModule::contribute(ForwardingTables& t, const config::Config& config) const {
  for (const auto& xc : config.xconnect) {
    const PortRuntime* a = find_port(host_.ports, xc.a);
    const PortRuntime* b = find_port(host_.ports, xc.b);
    if (!a || !b) continue;  // validation guarantees both exist
    t.xconnect_peer[a->port_id] = b->port_id;
    t.xconnect_peer[b->port_id] = a->port_id;
  }
  for (uint16_t type : config.punt.ethertypes) t.punt_ethertype.set(type);
  t.punt_enabled = t.punt_ethertype.any();
}

}  // namespace meridian::dataplane
