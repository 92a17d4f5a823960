#include "stage.h"

#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

#include "transport.h"

namespace meridian::ptp {

bool register_rx_timestamp(RxTimestampField& field) {
  int offset = -1;
  uint64_t flag = 0;
  if (rte_mbuf_dyn_rx_timestamp_register(&offset, &flag) != 0) return false;
  field.offset = offset;
  field.flag = flag;
  return true;
}

void PtpPuntStage::process(dataplane::PacketBatch& b, const dataplane::StageContext& ctx) const {
  if (!ctx.tables.ptp_enabled || b.rx_port >= dataplane::kMaxPorts || !ctx.tables.ptp_port[b.rx_port]) return;
  for (uint16_t i = 0; i < b.count; ++i) {
    if (!b.undecided(i)) continue;
    rte_mbuf* m = b.pkts[i];
    PtpLocation loc;
    if (!locate({rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m)}, loc)) continue;
    *RTE_MBUF_DYNFIELD(m, field_.offset, rte_mbuf_timestamp_t*) = ctx.now_tsc;
    m->ol_flags |= field_.flag;
    b.punt(i);
  }
}

}  // namespace meridian::ptp
