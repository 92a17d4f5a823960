// meridianctl: a thin client of meridiand's REST API. The engine's views
// (ports, stats, runtime, config) are rendered here; every module renders
// its own in its folder (<module>/cli.cc, from dataplane/module_catalog.cc).
//
//   meridianctl [--socket PATH | --api HOST:PORT] [--json] show ports|stats|runtime|config
//   meridianctl VERB OBJECT [FILTER VALUE]...   each module's commands, as its
//                                               folder declares them (--help lists them)
//   meridianctl apply -f FILE [--dry-run] [--patch] [--if-match N]
//   meridianctl health
//
// Exit codes: 0 ok, 1 the server refused or reported a problem, 2 usage,
// 3 could not reach the server, 4 (health) ready but degraded.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <map>
#include <string_view>
#include <sstream>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "config/cli.h"
#include "config/document.h"
#include "config/http_client.h"
#include "config/rest_server.h"
#include "dataplane/module_catalog.h"

namespace po = boost::program_options;
using nlohmann::json;
using namespace meridian::config;
using cli::fixed;
using cli::num;
using cli::print_table;

namespace {

constexpr int kExitServer = 1, kExitUsage = 2, kExitUnreachable = 3, kExitDegraded = 4;

/// Prints the server's error body; returns the exit code for a failed call.
int report_failure(const HttpResult& r) {
  if (r.status == 0) {
    std::cerr << "meridianctl: cannot reach meridiand: " << r.error << "\n";
    return kExitUnreachable;
  }
  std::string error = "HTTP " + std::to_string(r.status);
  try {
    json body = json::parse(r.body);
    if (body.contains("error")) error += ": " + body["error"].get<std::string>();
    std::cerr << "meridianctl: " << error << "\n";
    for (const auto& d : body.value("details", json::array())) {
      std::string path = d.value("path", "");
      std::cerr << "  " << (path.empty() ? "(document)" : path) << ": " << d.value("reason", "") << "\n";
    }
  } catch (const std::exception&) {
    std::cerr << "meridianctl: " << error << "\n" << r.body << "\n";
  }
  return kExitServer;
}

void show_ports(const json& body) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : body.value("ports", json::array())) {
    const auto& link = p.value("link", json::object());
    const auto& st = p.value("stats", json::object());
    rows.push_back({p.value("name", ""), num(p, "port_id"), p.value("driver", ""),
                    link.value("up", false) ? "up" : "down", num(link, "speed_mbps"),
                    num(p, "mtu"), num(p, "rx_queues") + "/" + num(p, "tx_queues"),
                    num(st, "rx_packets"), num(st, "tx_packets"), num(st, "rx_missed"),
                    p.value("mac", "")});
  }
  print_table({"PORT", "ID", "DRIVER", "LINK", "SPEED", "MTU", "RXQ/TXQ", "RX-PKTS", "TX-PKTS",
               "RX-MISSED", "MAC"},
              rows);
}

void show_stats(const json& body) {
  std::cout << "generation " << num(body, "generation") << ", uptime "
            << num(body, "uptime_seconds") << " s\n\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : body.value("ports", json::array())) {
    rows.push_back({p.value("name", ""), num(p, "rx_packets"), num(p, "rx_bytes"),
                    num(p, "tx_packets"), num(p, "tx_bytes"), num(p, "punted"),
                    num(p, "drops_total")});
  }
  print_table({"PORT", "RX-PKTS", "RX-BYTES", "TX-PKTS", "TX-BYTES", "PUNTED", "DROPS"}, rows);

  std::vector<std::vector<std::string>> drops;
  for (const auto& p : body.value("ports", json::array())) {
    const json reasons = p.value("drops", json::object());
    for (const auto& [reason, count] : reasons.items()) {
      if (count.get<uint64_t>() != 0) drops.push_back({p.value("name", ""), reason, count.dump()});
    }
  }
  std::cout << "\n";
  if (drops.empty()) {
    std::cout << "no drops\n";
  } else {
    print_table({"PORT", "DROP-REASON", "PACKETS"}, drops);
  }

  std::vector<std::vector<std::string>> workers;
  for (const auto& w : body.value("workers", json::array())) {
    workers.push_back({num(w, "lcore"), num(w, "heartbeat"), num(w, "busy_polls"),
                       num(w, "idle_polls"), w.value("polling", false) ? "yes" : "NO"});
  }
  std::cout << "\n";
  print_table({"WORKER-LCORE", "HEARTBEAT", "BUSY-POLLS", "IDLE-POLLS", "POLLING"}, workers);
}


/// VPP's `show runtime`: what each pipeline stage costs, from sampled bursts.
void show_runtime(const json& rt) {
  std::cout << num(rt, "bursts") << " bursts, " << num(rt, "packets") << " packets ("
            << fixed(rt.value("packets_per_burst", 0.0), 1) << " a burst); stages timed on one burst in "
            << num(rt, "sample_every") << "\n\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : rt.value("stages", json::array())) {
    rows.push_back({s.value("name", ""), s.value("place", ""), s.value("active", true) ? "yes" : "no",
                    num(s, "sampled_bursts"), num(s, "sampled_packets"), fixed(s.value("cycles_per_packet", 0.0), 1)});
  }
  // An inactive stage has nothing to do under the current tables: the
  // workers skip it (it costs nothing).
  print_table({"STAGE", "PLACE", "ACTIVE", "TIMED-BURSTS", "TIMED-PKTS", "CYCLES/PKT"}, rows);
}

/// Parses the command's "FILTER VALUE" word pairs ("vni N") into a query
/// string; each value may hold only the characters its filter allows.
bool filters(const std::vector<std::string>& words, size_t from,
             const std::map<std::string, std::string_view>& allowed, std::string& query) {
  for (size_t i = from; i < words.size(); i += 2) {
    const auto filter = allowed.find(words[i]);
    if (filter == allowed.end() || i + 1 >= words.size()) {
      std::cerr << "meridianctl: unexpected '" << words[i] << "' after '" << words[from - 1] << "'";
      if (!allowed.empty()) {
        std::cerr << " (expected";
        for (const auto& a : allowed) std::cerr << " [" << a.first << " VALUE]";
        std::cerr << ")";
      }
      std::cerr << "\n";
      return false;
    }
    if (words[i + 1].empty() || words[i + 1].find_first_not_of(filter->second) != std::string::npos) {
      std::cerr << "meridianctl: " << words[i] << ": '" << words[i + 1] << "' is not a valid value\n";
      return false;
    }
    query += (query.empty() ? "?" : "&") + words[i] + "=" + words[i + 1];
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  po::options_description opts("meridianctl options");
  std::string socket_path, api, token_file, file;
  opts.add_options()
      ("help,h", "show this help")
      ("socket,s", po::value(&socket_path)->default_value("/run/meridian/meridian.sock"),
       "meridiand API Unix socket")
      ("api,a", po::value(&api), "meridiand API TCP address HOST:PORT (instead of --socket)")
      ("token-file", po::value(&token_file), "file holding the API bearer token")
      ("json,j", "print raw JSON")
      ("file,f", po::value(&file), "config file (JSON or YAML) for apply")
      ("dry-run,n", "apply: validate and show the diff, change nothing")
      ("patch", "apply: send the file as a JSON merge patch instead of a full document")
      ("if-match", po::value<uint64_t>(), "apply: only if the running generation is still N (else HTTP 412)")
      ("timeout", po::value<unsigned>()->default_value(10), "seconds to wait for meridiand")
      ("command", po::value<std::vector<std::string>>(), "command words");
  po::positional_options_description positional;
  positional.add("command", -1);

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(opts).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "meridianctl: " << e.what() << "\n";
    return kExitUsage;
  }
  auto words = vm.count("command") ? vm["command"].as<std::vector<std::string>>()
                                   : std::vector<std::string>{};
  if (vm.count("help") || words.empty()) {
    std::cout << "usage: meridianctl [options] show ports|stats|runtime|config   (stats = show stats)\n";
    // The modules' commands, as their folders declare them (the catalog).
    for (const auto& c : meridian::dataplane::builtin_cli_commands()) {
      std::cout << "       meridianctl [options] " << c.verb << " " << c.object;
      for (const auto& filter : c.filters) {
        std::string value = filter.first;  // "vni" takes a VNI
        std::transform(value.begin(), value.end(), value.begin(), [](unsigned char ch) { return std::toupper(ch); });
        std::cout << " [" << filter.first << " " << value << "]";
      }
      std::cout << "\n";
    }
    std::cout << "       meridianctl [options] apply -f FILE [--dry-run] [--patch] [--if-match N]\n"
                 "       meridianctl [options] health\n\n"
              << opts;
    return words.empty() && !vm.count("help") ? kExitUsage : 0;
  }

  ApiEndpoint endpoint;
  if (!api.empty()) {
    if (!split_host_port(api, endpoint.host, endpoint.port)) {
      std::cerr << "meridianctl: --api expects HOST:PORT\n";
      return kExitUsage;
    }
  } else {
    endpoint.unix_path = socket_path;
  }
  if (!token_file.empty()) {
    if (std::string err = read_token_file(token_file, endpoint.token); !err.empty()) {
      std::cerr << "meridianctl: --token-file " << err << "\n";
      return kExitUsage;
    }
  }
  const bool as_json = vm.count("json") > 0;
  const auto timeout = std::chrono::seconds(vm["timeout"].as<unsigned>());
  std::map<std::string, std::string> write_headers;
  if (vm.count("if-match")) write_headers["If-Match"] = "\"" + std::to_string(vm["if-match"].as<uint64_t>()) + "\"";
  auto call = [&](const std::string& method, const std::string& target, const std::string& body = "") {
    return http_call(endpoint, method, target, body, method == "GET" ? std::map<std::string, std::string>{} : write_headers,
                     timeout);
  };

  // `meridianctl stats` is the short form of `show stats` (as in vppctl).
  if (words.size() == 1 && words[0] == "stats") words = {"show", "stats"};
  const std::string& verb = words[0];
  // The engine's views, then every module's and host/'s commands.
  std::vector<cli::Command> commands = {{"ports", "/api/v1/ports", {}, show_ports},
                                        {"stats", "/api/v1/stats", {}, show_stats},
                                        {"runtime", "/api/v1/stats", {}, show_runtime, "runtime"},
                                        {"config", "/api/v1/config", {}, nullptr}};
  for (auto& c : meridian::dataplane::builtin_cli_commands()) commands.push_back(std::move(c));
  const bool known_verb = std::any_of(commands.begin(), commands.end(), [&](const cli::Command& c) { return c.verb == verb; });
  if (known_verb && words.size() >= 2) {
    // An object is one or two words ("fdb", "igmp groups"): the longer match first.
    size_t consumed = 3;
    auto match = [&](const std::string& object) {
      return std::find_if(commands.begin(), commands.end(),
                          [&](const cli::Command& c) { return c.verb == verb && c.object == object; });
    };
    auto it = words.size() >= 3 ? match(words[1] + " " + words[2]) : commands.end();
    if (it == commands.end()) {
      it = match(words[1]);
      consumed = 2;
    }
    if (it == commands.end()) {
      std::cerr << "meridianctl: unknown object '" << words[1] << "' for " << verb << " (";
      const char* sep = "";
      for (const auto& c : commands) {
        if (c.verb != verb) continue;
        std::cerr << sep << c.object;
        sep = ", ";
      }
      std::cerr << ")\n";
      return kExitUsage;
    }
    std::string query;
    if (!filters(words, consumed, it->filters, query)) return kExitUsage;
    HttpResult r = call(it->method, it->path + query);
    if (r.status != 200) return report_failure(r);
    json body;
    try {
      body = json::parse(r.body);
    } catch (const std::exception& e) {
      std::cerr << "meridianctl: server sent invalid JSON: " << e.what() << "\n";
      return kExitServer;
    }
    if (const char* member = it->member; member && body.contains(member)) body = json(body[member]);
    if (as_json || !it->print) std::cout << to_text(body) << "\n";
    else it->print(body);
    return 0;
  }
  if (verb == "apply" && words.size() == 1) {
    if (file.empty()) {
      std::cerr << "meridianctl: apply needs -f FILE\n";
      return kExitUsage;
    }
    std::string error;
    auto doc = load_document_file(file, error);
    if (!doc) {
      std::cerr << "meridianctl: " << error << "\n";
      return kExitUsage;
    }
    std::string target = "/api/v1/config";
    if (vm.count("dry-run")) target += "?dry_run=true";
    HttpResult r = call(vm.count("patch") ? "PATCH" : "PUT", target, to_text(*doc, -1));
    if (r.status != 200) return report_failure(r);
    json body = json::parse(r.body, nullptr, false);
    if (!body.is_object()) {
      std::cerr << "meridianctl: server sent invalid JSON\n";
      return kExitServer;
    }
    if (as_json) {
      std::cout << to_text(body) << "\n";
      return 0;
    }
    const bool dry = vm.count("dry-run") > 0;
    if (!body.value("changed", false)) {
      std::cout << "no change (generation " << num(body, "generation") << ")\n";
    } else {
      std::cout << (dry ? "dry run: would change" : "applied: generation ") +
                       (dry ? std::string("") : num(body, "generation"))
                << "\n";
      for (const auto& op : body.value("diff", json::array())) {
        std::cout << "  " << op.value("op", "") << " " << op.value("path", "");
        if (op.contains("value")) std::cout << " = " << to_text(op["value"], -1);
        std::cout << "\n";
      }
    }
    const json restart = body.value("restart_required", json::array());
    if (!restart.empty()) {
      std::cout << "needs a restart (a real apply is refused with 409):\n";
      for (const auto& d : restart) std::cout << "  " << d.value("path", "") << ": " << d.value("reason", "") << "\n";
    }
    return 0;
  }
  if (verb == "health" && words.size() == 1) {
    HttpResult r = call("GET", "/healthcheck");
    if (r.status != 200 && r.status != 503) return report_failure(r);
    json body = json::parse(r.body, nullptr, false);
    const bool degraded = r.status == 200 && body.is_object() && body.value("degraded", false);
    if (as_json) {
      std::cout << to_text(body) << "\n";
    } else {
      std::cout << (r.status != 200 ? "NOT READY" : degraded ? "DEGRADED" : "ready") << "\n";
      if (degraded) {
        for (const auto& why : body.value("degraded_reasons", json::array())) std::cout << "  " << why.get<std::string>() << "\n";
      }
      if (body.is_object() && body.contains("checks") && r.status != 200) std::cout << to_text(body["checks"]) << "\n";
    }
    return r.status != 200 ? kExitServer : degraded ? kExitDegraded : 0;
  }
  std::cerr << "meridianctl: unknown command '";
  for (size_t i = 0; i < words.size(); ++i) std::cerr << (i ? " " : "") << words[i];
  std::cerr << "' (try --help)\n";
  return kExitUsage;
}
