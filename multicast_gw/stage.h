// The multicast stage (ingress): IGMP and MLD arriving on an attachment of a
// snooping bridge domain go to the control lcore instead of being flooded.
#pragma once

#include "dataplane/pipeline.h"

namespace meridian::mcast {

class SnoopStage final : public dataplane::Stage {
 public:
  const char* name() const override { return "mcast-snoop"; }
  bool active(const dataplane::ForwardingTables& t) const override;
  void process(dataplane::PacketBatch& b, const dataplane::StageContext& ctx) const override;
};

}  // namespace meridian::mcast
