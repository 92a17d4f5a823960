// Minimal classic pcap files for the codec tools (test/tools/*_pcap_tool):
// writing Ethernet frames, and reading Ethernet or Linux cooked captures as
// tcpdump and tshark write them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace meridian::test_tools {

/// LINKTYPE_ETHERNET, microsecond records, one second apart.
void write_pcap(const std::string& path, const std::vector<std::vector<uint8_t>>& frames);

/// Reads classic pcap (either byte order, micro- or nanosecond magic) with
/// Ethernet or Linux cooked (SLL) link types; returns Ethernet-like frames
/// (an SLL header is rewritten to a 14-byte Ethernet header).
bool read_pcap(const std::string& path, std::vector<std::vector<uint8_t>>& frames, std::string& err);

}  // namespace meridian::test_tools
