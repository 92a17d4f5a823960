// PTP profiles selectable by name, and the defaults each one sets:
//   default_e2e / default_p2p  IEEE 1588-2019 Annex I.3/I.4: domain 0,
//                              Announce 2^1, Sync 2^0, Delay_Req 2^0.
//   smpte_2059_2               SMPTE ST 2059-2: domain 127, Announce 2^-2,
//                              Sync 2^-3, Delay_Req 2^-3.
//   aes67                      AES67 media profile: domain 0, Announce 2^1,
//                              Sync 2^-3, Delay_Req 2^0.
//   g8275_1                    ITU-T G.8275.1: L2 to 01:80:C2:00:00:0E,
//                              domain 24, Announce 2^-3, Sync 2^-4,
//                              Delay_Req 2^-4, alternate BMCA, telecom classes.
//   g8275_2                    ITU-T G.8275.2: unicast UDP, domain 44,
//                              Announce 2^0, Sync 2^-4, Delay_Req 2^-4,
//                              alternate BMCA, telecom classes.
// Every value can be overridden per instance or per port in the config.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "ptp/bmca.h"
#include "ptp/node.h"

namespace meridian::ptp {

struct Profile {
  std::string_view name;
  uint8_t domain;
  int8_t log_announce_interval;
  int8_t log_sync_interval;
  int8_t log_min_delay_req_interval;
  uint8_t announce_receipt_timeout;
  DelayMechanism delay_mechanism;
  BmcaKind bmca;
  bool telecom_classes;
  bool peer_delay_address;  // every message to 01:80:C2:00:00:0E (G.8275.1)
};

inline constexpr Profile kProfiles[] = {
    {"default_e2e", 0, 1, 0, 0, 3, DelayMechanism::kE2E, BmcaKind::kDefault, false, false},
    {"default_p2p", 0, 1, 0, 0, 3, DelayMechanism::kP2P, BmcaKind::kDefault, false, false},
    {"smpte_2059_2", 127, -2, -3, -3, 3, DelayMechanism::kE2E, BmcaKind::kDefault, false, false},
    {"aes67", 0, 1, -3, 0, 3, DelayMechanism::kE2E, BmcaKind::kDefault, false, false},
    {"g8275_1", 24, -3, -4, -4, 3, DelayMechanism::kE2E, BmcaKind::kTelecom, true, true},
    {"g8275_2", 44, 0, -4, -4, 3, DelayMechanism::kE2E, BmcaKind::kTelecom, true, false},
};

inline std::optional<Profile> find_profile(std::string_view name) {
  for (const auto& p : kProfiles) {
    if (p.name == name) return p;
  }
  return std::nullopt;
}

}  // namespace meridian::ptp
