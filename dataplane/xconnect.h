// The first forwarding functions: punting control frames, and xconnect,
// which patches two ports together like a cable (both directions, every
// frame, bytes untouched).
#pragma once

#include "dataplane/module.h"
#include "dataplane/pipeline.h"

namespace meridian::dataplane {

/// Sends frames whose EtherType (after VLAN tags) is in the punt set to the
/// control lcore (runts never reach a stage: the worker drops them).
class PuntClassifierStage final : public Stage {
 public:
  const char* name() const override { return "punt-classifier"; }
  void process(PacketBatch& batch, const StageContext& ctx) const override;
  bool active(const ForwardingTables& tables) const override;
};

/// Forwards every undecided frame to the ingress port's cross-connect peer.
class XconnectStage final : public Stage {
 public:
  const char* name() const override { return "xconnect"; }
  void process(PacketBatch& batch, const StageContext& ctx) const override;
};

/// The base pipeline: punt classifier, then xconnect.
Pipeline make_xconnect_pipeline();

/// The base module: punting by EtherType (section "punt") and cross-connects
/// (section "xconnect"). Its xconnect stage is the last forward stage: it
/// decides every packet no module before it decided.
class XconnectModule final : public Module {
 public:
  static std::unique_ptr<Module> create(const ModuleHost& host, std::string& error);

  const char* name() const override { return "xconnect"; }
  std::vector<PlacedStage> stages() override;
  std::function<void()> prepare(const config::Config& running, const config::Config& next,
                                config::FieldErrors& errors) override;
  void contribute(ForwardingTables& tables, const config::Config& config) const override;

 private:
  explicit XconnectModule(const ModuleHost& host) : host_(host) {}
  const ModuleHost& host_;
};

}  // namespace meridian::dataplane
