// The first forwarding functions: punting control frames, and xconnect,
// which patches two ports together like a cable (both directions, every
// frame, bytes untouched).
#pragma once

#include "dataplane/pipeline.h"

namespace meridian::dataplane {

/// Sends frames whose EtherType (after VLAN tags) is in the punt set to the
/// control lcore; drops runts.
class PuntClassifierStage final : public Stage {
 public:
  const char* name() const override { return "punt-classifier"; }
  void process(PacketBatch& batch, const StageContext& ctx) const override;
};

/// Forwards every undecided frame to the ingress port's cross-connect peer.
class XconnectStage final : public Stage {
 public:
  const char* name() const override { return "xconnect"; }
  void process(PacketBatch& batch, const StageContext& ctx) const override;
};

/// The default pipeline of this release: punt classifier, then xconnect.
Pipeline make_xconnect_pipeline();

}  // namespace meridian::dataplane
