#include "dataplane/xconnect.h"

#include "dataplane/packet_view.h"

namespace meridian::dataplane {

void PuntClassifierStage::process(PacketBatch& b, const StageContext& ctx) const {
  const bool any_punt = ctx.tables.punt_enabled;
  for (uint16_t i = 0; i < b.count; ++i) {
    if (!b.undecided(i)) continue;
    const rte_mbuf* m = b.pkts[i];
    if (rte_pktmbuf_data_len(m) < 14) {
      b.drop(i, DropReason::kRuntFrame);
      continue;
    }
    if (!any_punt) continue;
    // Only the first segment is inspected; Ethernet + 2 tags fit in any segment.
    const auto* data = rte_pktmbuf_mtod(m, const uint8_t*);
    uint16_t type = load_be16(data + 12);
    uint16_t off = 14;
    for (int tags = 0; (type == kEtherTypeVlan || type == kEtherTypeQinQ) && tags < 2; ++tags) {
      if (rte_pktmbuf_data_len(m) < off + 4) break;
      type = load_be16(data + off + 2);
      off = static_cast<uint16_t>(off + 4);
    }
    if (ctx.tables.punt_ethertype.test(type)) b.punt(i);
  }
}

void XconnectStage::process(PacketBatch& b, const StageContext& ctx) const {
  const uint16_t peer = b.rx_port < kMaxPorts ? ctx.tables.xconnect_peer[b.rx_port] : kNoPort;
  for (uint16_t i = 0; i < b.count; ++i) {
    if (!b.undecided(i)) continue;
    if (peer == kNoPort) b.drop(i, DropReason::kNoForwarding);
    else b.forward(i, peer);
  }
}

Pipeline make_xconnect_pipeline() {
  Pipeline p;
  p.push_back(std::make_unique<PuntClassifierStage>());
  p.push_back(std::make_unique<XconnectStage>());
  return p;
}

}  // namespace meridian::dataplane
