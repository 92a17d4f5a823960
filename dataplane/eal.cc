#include "dataplane/eal.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_log.h>

#include "config/log.h"
#include "dataplane/time_base.h"

namespace meridian::dataplane {

bool hugepages_available() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  long value = 0;
  while (in >> key >> value) {
    if (key == "HugePages_Free:") return value > 0;
    in.ignore(256, '\n');
  }
  return false;
}

std::vector<std::string> build_eal_args(const config::Config& c, bool hugepages,
                                        const std::string& log_level) {
  const auto& dp = c.dataplane;
  std::vector<std::string> args = {"meridiand"};
  std::string lcores;
  for (unsigned l : dp.lcores) {
    if (!lcores.empty()) lcores.push_back(',');
    lcores.append(std::to_string(l));
  }
  args.insert(args.end(), {"-l", lcores, "--main-lcore", std::to_string(dp.main_lcore),
                           "--file-prefix", dp.file_prefix, "-m", std::to_string(dp.memory_mb)});
  const bool use_huge = dp.hugepages == config::HugepageMode::kOn ||
                        (dp.hugepages == config::HugepageMode::kAuto && hugepages);
  if (!use_huge) args.push_back("--no-huge");
  bool any_pci = false;
  for (const auto& p : c.ports) {
    if (c.is_pci(p)) {
      any_pci = true;
      args.insert(args.end(), {"-a", p.devargs});
    } else {
      args.insert(args.end(), {"--vdev", p.devargs});
    }
  }
  if (!any_pci) args.push_back("--no-pci");  // never grab a NIC nobody configured
  // DPDK levels: 8 debug, 7 info, 6 notice, 5 warning, 4 error. EAL's own
  // info level is chatty, so meridiand's info shows DPDK notices.
  const char* level = log_level == "debug" ? "8" : log_level == "info" ? "6"
                      : log_level == "error" ? "4" : "5";
  args.push_back(std::string("--log-level=") + level);
  args.insert(args.end(), dp.eal_args.begin(), dp.eal_args.end());
  return args;
}

namespace {

ssize_t dpdk_log_write(void*, const char* buf, size_t size) {
  std::string line(buf, size);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (line.empty()) return static_cast<ssize_t>(size);
  const unsigned lvl = static_cast<unsigned>(rte_log_cur_msg_loglevel());
  log::Level level = lvl <= RTE_LOG_ERR ? log::Level::kError
                     : lvl <= RTE_LOG_WARNING ? log::Level::kWarn
                     : lvl <= RTE_LOG_INFO ? log::Level::kInfo
                                           : log::Level::kDebug;
  log::write(level, "dpdk", line);
  return static_cast<ssize_t>(size);
}

}  // namespace

void redirect_dpdk_log() {
  cookie_io_functions_t fns{};
  fns.write = dpdk_log_write;
  if (FILE* f = fopencookie(nullptr, "w", fns)) {
    setvbuf(f, nullptr, _IOLBF, 0);
    rte_openlog_stream(f);
  }
}

std::string eal_init(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  static std::vector<std::string> storage;  // EAL keeps pointers into argv
  storage = args;
  for (auto& a : storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string joined;
  for (const auto& a : args) {
    if (!joined.empty()) joined.push_back(' ');
    joined.append(a);
  }
  log::info("eal", "initialising", {{"args", joined}});
  if (rte_eal_init(static_cast<int>(args.size()), argv.data()) < 0) {
    return std::string("rte_eal_init failed: ") + rte_strerror(rte_errno);
  }
  // Every clock of the process runs on the TSC: measure its rate now, before
  // anything is built on it (DPDK's own figure may be rounded; time_base.h).
  TimeBase::instance().calibrate();
  return "";
}

}  // namespace meridian::dataplane
