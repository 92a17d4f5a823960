// meridiand: the Meridian data-plane appliance.
//
// The EAL main lcore runs control (REST API, config apply, housekeeping) on
// one Asio io_context; every other configured lcore runs a worker poll loop.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/program_options.hpp>
#include <rte_eal.h>

#include "config/api.h"
#include "config/document.h"
#include "config/log.h"
#include "config/manager.h"
#include "config/rest_server.h"
#include "dataplane/default_config.h"
#include "dataplane/eal.h"
#include "dataplane/module_catalog.h"
#include "dataplane/runtime.h"

namespace po = boost::program_options;
namespace asio = boost::asio;
using namespace meridian;

namespace {

constexpr int kExitOk = 0, kExitRuntime = 1, kExitConfig = 2;

struct Options {
  std::string config_path;
  std::string api_socket;
  std::string api_listen;
  std::string api_token_file;
  std::string log_level = "info";
  bool check_only = false;
};

void print_errors(const std::string& what, const config::FieldErrors& errors) {
  log::error("config", what, {{"details", config::to_json(errors)}});
  for (const auto& e : errors) std::cerr << "  " << (e.path.empty() ? "(document)" : e.path) << ": " << e.reason << "\n";
}

/// Host-level checks that pure validation cannot make (lcores exist).
config::FieldErrors host_checks(const config::Config& c) {
  config::FieldErrors errors;
  const long cpus = sysconf(_SC_NPROCESSORS_CONF);
  for (size_t i = 0; i < c.dataplane.lcores.size(); ++i) {
    if (static_cast<long>(c.dataplane.lcores[i]) >= cpus) {
      errors.push_back({"/dataplane/lcores/" + std::to_string(i),
                        "lcore " + std::to_string(c.dataplane.lcores[i]) + " does not exist on this host (" +
                            std::to_string(cpus) + " CPUs)"});
    }
  }
  return errors;
}

/// Creates the parent directory of `path` if it has one; never throws.
void ensure_parent_dir(const std::string& path) {
  const auto parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
}

/// SIGHUP: the config file, applied as a PUT would be. A file that does not
/// parse or validate, or a change that needs a restart, is refused as a
/// whole and logged; the running config stays.
void reload_config(config::ConfigManager& manager, const std::string& path) {
  log::TraceScope trace(log::new_trace_id());
  std::string error;
  auto doc = config::load_document_file(path, error);
  if (!doc) {
    log::error("config", "reload refused: cannot read the config file", {{"file", path}, {"error", error}});
    return;
  }
  const config::ApplyOutcome out = manager.replace(*doc, false, std::nullopt);
  if (!out.error.empty()) {
    log::error("config", "reload refused: " + out.error,
               {{"file", path}, {"details", config::to_json(out.details)}, {"generation", out.generation}});
  } else if (out.changed) {
    log::info("config", "reloaded", {{"file", path}, {"generation", out.generation}, {"diff", out.diff}});
  } else {
    log::info("config", "reloaded: no change", {{"file", path}, {"generation", out.generation}});
  }
}

}  // namespace

int main(int argc, char** argv) {
  dataplane::register_builtin_sections();  // before any document is parsed
  Options opt;
  po::options_description desc("meridiand options");
  desc.add_options()
      ("help,h", "show this help")
      ("config,c", po::value(&opt.config_path)->default_value("/var/lib/meridian/meridian.json"),
       "config file (JSON, or YAML when named .yaml/.yml). Created from the built-in default "
       "when missing; every applied change is persisted back to it atomically")
      ("api-socket", po::value(&opt.api_socket)->default_value("/run/meridian/meridian.sock"),
       "REST API Unix socket ('none' to disable)")
      ("api-listen", po::value(&opt.api_listen), "REST API TCP address, e.g. 127.0.0.1:8080")
      ("api-token-file", po::value(&opt.api_token_file),
       "bearer token required on every request; mandatory for a non-loopback --api-listen")
      ("log-level", po::value(&opt.log_level)->default_value("info"), "debug, info, warn or error")
      ("check-config", "validate the config file and exit (0 valid, 2 invalid)")
      ("print-default-config", "print the built-in default config and exit");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "meridiand: " << e.what() << "\n" << desc;
    return kExitConfig;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return kExitOk;
  }
  if (vm.count("print-default-config")) {
    std::cout << config::to_text(config::to_json(*config::parse_config(nlohmann::json::parse(dataplane::kDefaultConfig)).config)) << "\n";
    return kExitOk;
  }
  opt.check_only = vm.count("check-config") > 0;
  log::Level level;
  if (!log::parse_level(opt.log_level, level)) {
    std::cerr << "meridiand: --log-level must be debug, info, warn or error\n";
    return kExitConfig;
  }
  log::set_level(level);

  // 1. The config: the file when it exists, else the built-in default.
  nlohmann::json document;
  std::error_code exists_error;
  const bool from_file = std::filesystem::exists(opt.config_path, exists_error);
  if (exists_error) {
    print_errors("cannot read config", {{"", opt.config_path + ": " + exists_error.message()}});
    return kExitConfig;
  }
  if (from_file) {
    std::string error;
    auto doc = config::load_document_file(opt.config_path, error);
    if (!doc) {
      print_errors("cannot read config", {{"", error}});
      return kExitConfig;
    }
    document = *doc;
  } else {
    if (opt.check_only) {
      print_errors("cannot read config", {{"", opt.config_path + ": no such file"}});
      return kExitConfig;
    }
    document = nlohmann::json::parse(dataplane::kDefaultConfig);
  }
  auto parsed = config::parse_config(document);
  if (parsed.config) {
    auto host = host_checks(*parsed.config);
    parsed.errors.insert(parsed.errors.end(), host.begin(), host.end());
  }
  if (!parsed.errors.empty()) {
    print_errors("invalid config " + opt.config_path, parsed.errors);
    return kExitConfig;
  }
  const config::Config& cfg = *parsed.config;
  if (opt.check_only) {
    log::info("config", "valid", {{"file", opt.config_path}});
    std::cout << "config OK: " << opt.config_path << "\n";
    return kExitOk;
  }

  std::string token;
  if (!opt.api_token_file.empty()) {
    if (std::string err = config::read_token_file(opt.api_token_file, token); !err.empty()) {
      std::cerr << "meridiand: --api-token-file " << err << "\n";
      return kExitConfig;
    }
  }
  if (!opt.api_listen.empty()) {
    std::string host;
    uint16_t port;
    if (!config::split_host_port(opt.api_listen, host, port)) {
      std::cerr << "meridiand: --api-listen expects ADDRESS:PORT\n";
      return kExitConfig;
    }
    if (!config::is_loopback_address(host) && token.empty()) {
      std::cerr << "meridiand: --api-listen on a non-loopback address needs --api-token-file\n";
      return kExitConfig;
    }
  }

  // Signal handlers first: a SIGHUP or SIGTERM during start-up waits in the
  // signal sets until the io_context runs, instead of killing the process.
  asio::io_context io;
  asio::signal_set stop_signals(io, SIGINT, SIGTERM);
  asio::signal_set other_signals(io, SIGHUP, SIGUSR1, SIGUSR2);
  ::signal(SIGPIPE, SIG_IGN);

  // 2. EAL and the data plane.
  dataplane::redirect_dpdk_log();
  const bool huge = dataplane::hugepages_available();
  if (std::string err = dataplane::eal_init(dataplane::build_eal_args(cfg, huge, opt.log_level)); !err.empty()) {
    log::error("eal", err);
    return kExitRuntime;
  }
  std::string error;
  auto dp = dataplane::Dataplane::create(cfg, error);
  if (!dp) {
    log::error("dataplane", "cannot start", {{"error", error}});
    std::cerr << "meridiand: " << error << "\n";
    rte_eal_cleanup();
    return kExitRuntime;
  }

  // A kill -9 during a persist leaves its temp file behind: nothing else removes it.
  for (const std::string& base : {opt.config_path, opt.config_path + ".generation"}) {
    for (const auto& f : config::remove_stale_temp_files(base)) {
      log::warn("config", "removed a temp file left by an interrupted write", {{"file", f}});
    }
  }
  config::ConfigManager manager(cfg, opt.config_path, from_file ? config::ConfigManager::load_generation(opt.config_path) : 1);
  manager.set_backend(dp.get());
  if (!from_file) {
    ensure_parent_dir(opt.config_path);
    if (std::string err = manager.persist(); !err.empty()) log::warn("config", "cannot persist", {{"error", err}});
  }

  // 3. Control: REST API, housekeeping timer and signals on one io_context.
  config::Api api(manager, *dp, config::ApiOptions{token});
  config::RestServer server(io, api);
  if (opt.api_socket != "none") {
    ensure_parent_dir(opt.api_socket);
    if (std::string err = server.listen_unix(opt.api_socket); !err.empty()) {
      log::error("rest", err);
      dp.reset();
      rte_eal_cleanup();
      return kExitRuntime;
    }
  }
  if (!opt.api_listen.empty()) {
    if (std::string err = server.listen_tcp(opt.api_listen); !err.empty()) {
      log::error("rest", err);
      dp.reset();
      rte_eal_cleanup();
      return kExitRuntime;
    }
  }
  if (std::string err = dp->start_workers(); !err.empty()) {
    log::error("worker", err);
    dp.reset();
    rte_eal_cleanup();
    return kExitRuntime;
  }

  asio::steady_timer tick(io);
  std::function<void()> schedule_tick = [&] {
    tick.expires_after(std::chrono::milliseconds(10));
    tick.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      dp->control_tick();
      schedule_tick();
    });
  };
  schedule_tick();
  // Punts between ticks: IGMP/MLD, ARP and ND are handled within a
  // millisecond of arrival (docs/architecture.md, "Control lcore").
  asio::steady_timer punt_poll(io);
  std::function<void()> schedule_punt_poll = [&] {
    punt_poll.expires_after(std::chrono::milliseconds(1));
    punt_poll.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      dp->poll_punts();
      schedule_punt_poll();
    });
  };
  schedule_punt_poll();

  // Signals (docs/configuration.md "Signals"): TERM/INT stop; HUP re-reads the config file
  // and applies it as one transaction (refused as a whole when invalid, the
  // daemon keeps running); USR1/USR2 are logged and ignored; PIPE ignored.
  stop_signals.async_wait([&](boost::system::error_code ec, int signo) {
    if (ec) return;
    log::info("meridiand", "shutting down", {{"signal", signo == SIGINT ? "SIGINT" : "SIGTERM"}});
    server.stop();
    tick.cancel();
    punt_poll.cancel();
    other_signals.cancel();
    // Requests already being served get a moment to finish.
    auto grace = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(300));
    grace->async_wait([&io, grace](boost::system::error_code) { io.stop(); });
  });
  std::function<void()> wait_other_signals = [&] {
    other_signals.async_wait([&](boost::system::error_code ec, int signo) {
      if (ec) return;
      if (signo == SIGHUP) reload_config(manager, opt.config_path);
      else log::info("meridiand", "signal ignored", {{"signal", signo == SIGUSR1 ? "SIGUSR1" : "SIGUSR2"}});
      wait_other_signals();
    });
  };
  wait_other_signals();

  log::info("meridiand", "ready",
            {{"config", opt.config_path}, {"generation", manager.generation()},
             {"api_socket", opt.api_socket}, {"api_listen", opt.api_listen},
             {"workers", dp->worker_contexts().size()}, {"ports", dp->port_list().size()}});
  io.run();

  // 4. Shutdown: stop workers, drain what was punted, close ports, exit 0.
  dp->stop_workers();
  dp->control_tick();
  for (const auto& p : dp->port_list()) {
    const auto t = dp->port_totals(p.port_id);
    log::info("meridiand", "port totals",
              {{"port", p.name}, {"rx_packets", t.rx_packets}, {"tx_packets", t.tx_packets},
               {"drops", t.drops_total()}});
  }
  dp.reset();
  rte_eal_cleanup();
  log::info("meridiand", "stopped");
  return kExitOk;
}
