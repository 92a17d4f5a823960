#include "multicast_gw/stage.h"

#include "multicast_gw/module.h"
#include "net/wire.h"

namespace meridian::mcast {

bool SnoopStage::active(const dataplane::ForwardingTables& t) const { return t.get<SnoopedAttachments>() != nullptr; }

void SnoopStage::process(dataplane::PacketBatch& b, const dataplane::StageContext& ctx) const {
  const SnoopedAttachments* s = ctx.tables.get<SnoopedAttachments>();
  if (!s || b.rx_port >= dataplane::kMaxPorts || !s->vlans[b.rx_port]) return;
  for (uint16_t i = 0; i < b.count; ++i) {
    if (!b.undecided(i)) continue;
    const net::PacketMeta& m = b.meta(i);
    if (!m.has(net::kMetaIgmp) && !m.has(net::kMetaMld)) continue;
    // Untagged or one 802.1Q tag: a tag stack is the VXLAN stage's to drop.
    if (m.outer.vlan_count > 1) continue;
    if (m.outer.vlan_count == 1 && net::be16(rte_pktmbuf_mtod(b.pkts[i], const uint8_t*) + 12) != net::kEtherVlan) continue;
    const uint16_t vlan = m.outer.vlan_count ? m.outer.vlan_id(0) : 0;
    if (s->snoops(b.rx_port, vlan)) b.punt(i);
  }
}

}  // namespace meridian::mcast
