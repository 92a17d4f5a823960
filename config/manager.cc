#include "config/manager.h"

#include <cctype>

#include "config/document.h"

namespace meridian::config {

nlohmann::json ApplyOutcome::to_json() const {
  nlohmann::json out = {{"generation", generation}, {"dry_run", dry_run}, {"changed", changed},
                        {"diff", diff}};
  if (dry_run) out["restart_required"] = config::to_json(restart_required);
  if (!warnings.empty()) out["warnings"] = config::to_json(warnings);
  if (!error.empty()) {
    out = {{"error", error}, {"details", config::to_json(details)}, {"generation", generation}};
  }
  return out;
}

std::optional<uint64_t> parse_if_match(const std::string& header, bool& valid) {
  valid = true;
  std::string v = header;
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.front()))) v.erase(0, 1);
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
  if (v.empty() || v == "*") return std::nullopt;
  if (v.rfind("W/", 0) == 0) v.erase(0, 2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  if (v.empty() || v.size() > 19) {
    valid = false;
    return std::nullopt;
  }
  for (char c : v) {
    if (!std::isdigit(static_cast<unsigned char>(c))) {
      valid = false;
      return std::nullopt;
    }
  }
  return std::stoull(v);
}

ConfigManager::ConfigManager(Config initial, std::string persist_path, uint64_t generation)
    : running_(std::move(initial)), persist_path_(std::move(persist_path)), generation_(generation) {}

uint64_t ConfigManager::load_generation(const std::string& persist_path) {
  auto text = read_file(persist_path + ".generation");
  if (!text) return 1;
  try {
    uint64_t g = std::stoull(*text);
    return g == 0 ? 1 : g;
  } catch (const std::exception&) {
    return 1;
  }
}

std::string ConfigManager::persist() const {
  if (persist_path_.empty()) return "";
  // Two atomic writes: the generation first, so a crash between them leaves
  // a newer generation with the older document (clients re-read), never a
  // new document under an old generation that a stale If-Match could match.
  const uint64_t previous = load_generation(persist_path_);
  std::string err = write_file_atomically(persist_path_ + ".generation",
                                          std::to_string(generation_) + "\n");
  if (err.empty()) {
    err = write_file_atomically(persist_path_, to_text(document()) + "\n");
    if (!err.empty()) {
      write_file_atomically(persist_path_ + ".generation", std::to_string(previous) + "\n");
    }
  }
  return err;
}

ApplyOutcome ConfigManager::replace(const nlohmann::json& document, bool dry_run,
                                    std::optional<uint64_t> if_match) {
  return apply(document, dry_run, if_match);
}

ApplyOutcome ConfigManager::merge_patch(const nlohmann::json& patch, bool dry_run,
                                        std::optional<uint64_t> if_match) {
  nlohmann::json doc = document();
  doc.merge_patch(patch);  // RFC 7396
  return apply(doc, dry_run, if_match);
}

ApplyOutcome ConfigManager::apply(const nlohmann::json& document, bool dry_run,
                                  std::optional<uint64_t> if_match) {
  ApplyOutcome out;
  out.generation = generation_;
  out.dry_run = dry_run;
  auto reject = [&](int status, std::string error, FieldErrors details) {
    out.http_status = status;
    out.error = std::move(error);
    out.details = std::move(details);
    return out;
  };

  if (if_match && *if_match != generation_) {
    return reject(412, "generation mismatch",
                  {{"", "If-Match names generation " + std::to_string(*if_match) +
                            " but the running generation is " + std::to_string(generation_)}});
  }
  ParseResult parsed = parse_config(document);
  if (!parsed.config) return reject(422, "invalid config", std::move(parsed.errors));
  const Config& next = *parsed.config;
  out.warnings = std::move(parsed.warnings);

  FieldErrors live;
  if (backend_) live = backend_->check_live_change(running_, next);
  out.diff = nlohmann::json::diff(to_json(running_), to_json(next));
  out.changed = !out.diff.empty();
  if (dry_run) {
    out.restart_required = std::move(live);  // shown, not refused: nothing is applied
    return out;
  }
  if (!live.empty()) return reject(409, "change needs a restart", std::move(live));
  if (!out.changed) return out;

  std::function<void()> commit;
  if (backend_) {
    FieldErrors errors;
    commit = backend_->prepare(running_, next, errors);
    if (!errors.empty() || !commit) {
      return reject(422, "config cannot be applied", std::move(errors));
    }
  }
  // Persist before committing: if the disk refuses, nothing has changed yet.
  Config previous = std::move(running_);
  running_ = next;
  ++generation_;
  std::string err;
  try {
    err = persist();
  } catch (const std::exception& e) {  // e.g. a string that is not UTF-8
    err = e.what();
  }
  if (!err.empty()) {
    running_ = std::move(previous);
    --generation_;
    out.generation = generation_;
    return reject(500, "cannot persist config", {{"", err}});
  }
  if (commit) commit();
  out.generation = generation_;
  return out;
}

}  // namespace meridian::config
