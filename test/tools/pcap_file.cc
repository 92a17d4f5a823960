#include "test/tools/pcap_file.h"

#include <cstring>
#include <fstream>

namespace meridian::test_tools {

void write_pcap(const std::string& path, const std::vector<std::vector<uint8_t>>& frames) {
  std::ofstream f(path, std::ios::binary);
  const uint32_t magic = 0xa1b2c3d4, snaplen = 65535, linktype = 1;
  const uint16_t major = 2, minor = 4;
  const int32_t zone = 0;
  const uint32_t sigfigs = 0;
  f.write(reinterpret_cast<const char*>(&magic), 4);
  f.write(reinterpret_cast<const char*>(&major), 2);
  f.write(reinterpret_cast<const char*>(&minor), 2);
  f.write(reinterpret_cast<const char*>(&zone), 4);
  f.write(reinterpret_cast<const char*>(&sigfigs), 4);
  f.write(reinterpret_cast<const char*>(&snaplen), 4);
  f.write(reinterpret_cast<const char*>(&linktype), 4);
  uint32_t sec = 1'700'000'000;
  for (const auto& fr : frames) {
    const uint32_t rec[4] = {sec++, 0, static_cast<uint32_t>(fr.size()), static_cast<uint32_t>(fr.size())};
    f.write(reinterpret_cast<const char*>(rec), sizeof rec);
    f.write(reinterpret_cast<const char*>(fr.data()), static_cast<std::streamsize>(fr.size()));
  }
}

bool read_pcap(const std::string& path, std::vector<std::vector<uint8_t>>& frames, std::string& err) {
  std::ifstream f(path, std::ios::binary);
  uint8_t gh[24];
  if (!f.read(reinterpret_cast<char*>(gh), sizeof gh)) {
    err = "short pcap header";
    return false;
  }
  uint32_t magic;
  std::memcpy(&magic, gh, 4);
  const bool swap = magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1;
  if (!swap && magic != 0xa1b2c3d4 && magic != 0xa1b23c4d) {
    err = "not a classic pcap file";
    return false;
  }
  auto u32 = [&](const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return swap ? __builtin_bswap32(v) : v;
  };
  const uint32_t linktype = u32(gh + 20);
  if (linktype != 1 && linktype != 113) {
    err = "link type " + std::to_string(linktype) + " not supported";
    return false;
  }
  uint8_t rh[16];
  while (f.read(reinterpret_cast<char*>(rh), sizeof rh)) {
    const uint32_t caplen = u32(rh + 8);
    std::vector<uint8_t> data(caplen);
    if (!f.read(reinterpret_cast<char*>(data.data()), caplen)) break;
    if (linktype == 113) {  // SLL: 16 bytes, protocol at 14
      if (data.size() < 16) continue;
      std::vector<uint8_t> eth(14 + data.size() - 16, 0);
      eth[12] = data[14];
      eth[13] = data[15];
      std::memcpy(eth.data() + 14, data.data() + 16, data.size() - 16);
      data.swap(eth);
    }
    frames.push_back(std::move(data));
  }
  return true;
}

}  // namespace meridian::test_tools
