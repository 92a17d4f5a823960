#include "stage.h"

#include <cstring>

#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

#include "packet_view.h"
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

// ARP requests and IPv6 neighbour solicitations (no extension headers)
// whose target is `address`: a unicast PTP peer resolving the port's PTP
// address. Any other ARP/ND passes on untouched (xconnect, VXLAN).
bool PtpPuntStage::neighbor_solicitation(std::span<const uint8_t> frame, uint8_t family, const uint8_t* address) {
  if (family == 0) return false;
  dataplane::PacketView v;
  dataplane::parse_packet(frame.data(), frame.size(), v);
  if (family == 4) {
    const size_t target = size_t{v.l3_offset} + 24;  // ARP target protocol address
    return v.ethertype == 0x0806 && frame.size() >= target + 4 && std::memcmp(frame.data() + target, address, 4) == 0;
  }
  const size_t icmp = size_t{v.l3_offset} + 40;
  return v.ip_version == 6 && frame.size() >= icmp + 24 && frame[v.l3_offset + 6] == 58 && frame[icmp] == 135 &&
         std::memcmp(frame.data() + icmp + 8, address, 16) == 0;
}

void PtpPuntStage::process(dataplane::PacketBatch& b, const dataplane::StageContext& ctx) const {
  if (!ctx.tables.ptp_enabled || b.rx_port >= dataplane::kMaxPorts || !ctx.tables.ptp_port[b.rx_port]) return;
  for (uint16_t i = 0; i < b.count; ++i) {
    if (!b.undecided(i)) continue;
    rte_mbuf* m = b.pkts[i];
    const std::span<const uint8_t> frame{rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m)};
    PtpLocation loc;
    if (!locate(frame, loc) &&
        !neighbor_solicitation(frame, ctx.tables.ptp_address_family[b.rx_port], ctx.tables.ptp_address[b.rx_port].data())) {
      continue;
    }
    *RTE_MBUF_DYNFIELD(m, field_.offset, rte_mbuf_timestamp_t*) = ctx.now_tsc;
    m->ol_flags |= field_.flag;
    b.punt(i);
  }
}

}  // namespace meridian::ptp
