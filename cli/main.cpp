// layerswarm: the command line for a running agent or supernode (docs/operations.md "CLI").
//   layerswarm [--server URL] [--token-file FILE] status
//   layerswarm [--server URL] --token-file FILE agents
//   layerswarm [--server URL] --token-file FILE preheat IMAGE [--platform P]... [--zone Z]
//              [--agents ID,ID] [--share PERCENT] [--wait]
//   layerswarm [--server URL] cache ls | pin IMAGE [--platform P]... | unpin IMAGE | rm IMAGE
//   layerswarm [--server URL] export IMAGE -o FILE [--format docker|oci] [--platform P]
//   layerswarm import FILE [--config F] [--data-dir D] [--as REF] [--pin]   (a stopped agent)
//   layerswarm [--server URL] --token-file FILE copies add IMAGE --copies K [--zone Z] | ls | rm ID
// --server defaults to the local agent, http://127.0.0.1:65001; a supernode needs its token.
// Exit statuses: 0 done, 1 the server could not be asked or refused, 2 bad usage.
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cli/export.h"
#include "common/async.h"
#include "common/encoding.h"
#include "common/http_client.h"
#include "common/json_config.h"
#include "common/size.h"
#include "common/url.h"
#include "layerswarm_version.h"

using namespace layerswarm;
using nlohmann::json;

namespace {

struct Call {
  Url server;
  std::string token;
  std::string path;
  std::string method = "GET";
  Result<std::string> body = Error(Errc::kInternal);
};

Task<void> fetch(HttpClient& client, Call& call) {
  ClientRequest request;
  request.method = call.method;
  request.url = call.server;
  request.url.target = call.path;
  if (!call.token.empty()) request.headers.add("Authorization", "Bearer " + call.token);
  auto response = co_await client.send(std::move(request));
  if (!response) {
    call.body = response.error();
    co_return;
  }
  const int status = (*response)->status;
  auto body = co_await (*response)->read_all(16 << 20);
  if (!body) {
    call.body = body.error();
  } else if (status == 204) {
    call.body = std::string("{}");
  } else if (status != 200 && status != 201 && status != 202) {
    call.body = Error(Errc::kUpstreamUnavailable, "the server answered " + std::to_string(status) +
                                                      ": " + body->substr(0, 300));
  } else {
    call.body = std::move(*body);
  }
}

// `method` `path` on the server; the JSON body, or an error.
Result<json> get(const Url& server, const std::string& token, const std::string& path,
                 const std::string& method = "GET") {
  asio::io_context ioc(1);
  ClientOptions options;
  options.connect_timeout = std::chrono::seconds(5);
  options.read_timeout = std::chrono::seconds(20);
  options.user_agent = std::string("layerswarm-cli/") + LAYERSWARM_VERSION;
  HttpClient client(ioc.get_executor(), options);
  Call call{server, token, path, method};
  asio::co_spawn(ioc, fetch(client, call), asio::detached);
  ioc.run();
  if (!call.body) return call.body.error();
  json j = json::parse(*call.body, nullptr, false);
  if (j.is_discarded()) return Error(Errc::kBadUpstreamResponse, "the answer is not JSON");
  return j;
}

double metric(const json& status, const char* name) {
  const auto& m = status.value("metrics", json::object());
  return m.contains(name) && m[name].is_number() ? m[name].get<double>() : 0;
}

std::string bytes(double v) { return format_size(static_cast<std::uint64_t>(v < 0 ? 0 : v)); }

int print_agents(const json& agents) {
  std::printf("%-28s %-24s %-12s %-9s %12s %12s %9s %s\n", "AGENT", "ADDRESS", "ZONE", "VERSION",
              "CACHE", "CAPACITY", "DOWNLOADS", "LAST SEEN");
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  for (const auto& a : agents) {
    const long long ago = (now - a.value("last_seen", 0LL)) / 1000;
    std::printf("%-28s %-24s %-12s %-9s %12s %12s %9llu %llds ago\n", a.value("id", "").c_str(),
                a.value("address", "").c_str(),
                a.value("zone", "-").empty() ? "-" : a.value("zone", "-").c_str(),
                a.value("version", "").c_str(), bytes(a.value("cache_bytes", 0.0)).c_str(),
                bytes(a.value("cache_capacity", 0.0)).c_str(),
                static_cast<unsigned long long>(a.value("downloads", 0ULL)), ago);
  }
  std::printf("%zu agents\n", agents.size());
  return 0;
}

// Follows a preheat until it ends: a progress bar on a terminal, a line per change otherwise.
int follow_preheat(const Url& server, const std::string& token, const std::string& id) {
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  std::string last;
  for (int i = 0; i < 7200; ++i) {
    auto s = get(server, token, "/api/v1/preheat/" + id);
    if (!s) {
      std::fprintf(stderr, "\nlayerswarm: %s\n", s.error().what().c_str());
      return 1;
    }
    const std::string state = s->value("state", "?");
    const auto& agents = s->value("agents", json::array());
    double done = 0, total = 0;
    for (const auto& a : agents) {
      done += a.value("bytes_done", 0.0);
      total += a.value("bytes_total", 0.0);
    }
    char line[256];
    std::snprintf(line, sizeof line, "preheat %s: %s, %zu/%zu agents done, %s of %s", id.c_str(),
                  state.c_str(), s->value("agents_done", std::size_t{0}), agents.size(),
                  bytes(done).c_str(), bytes(total).c_str());
    if (tty) {
      const int width = 30;
      const int filled = total > 0 ? static_cast<int>(width * done / total) : 0;
      std::printf("\r[%s%s] %s", std::string(static_cast<std::size_t>(filled), '#').c_str(),
                  std::string(static_cast<std::size_t>(width - filled), ' ').c_str(), line);
      std::fflush(stdout);
    } else if (line != last) {
      std::printf("%s\n", line);
      std::fflush(stdout);
    }
    last = line;
    if (state == "done" || state == "failed") {
      if (tty) std::printf("\n");
      for (const auto& a : agents) {
        if (a.value("state", "") == "failed") {
          std::printf("  %s (%s): %s\n", a.value("id", "").c_str(), a.value("address", "").c_str(),
                      a.value("error", "").c_str());
        }
      }
      if (state == "failed" && !s->value("error", "").empty()) {
        std::printf("  %s\n", s->value("error", "").c_str());
      }
      return state == "done" ? 0 : 1;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));  // a poll interval, not a wait
  }
  std::fprintf(stderr, "layerswarm: preheat %s did not end in 2 hours\n", id.c_str());
  return 1;
}

}  // namespace

// layerswarm cache ls|pin|unpin|rm (docs/operations.md "Cache").
int cache(const Url& server, const std::string& token, const std::string& name,
          const std::string& action, const std::string& image,
          const std::vector<std::string>& platforms) {
  Url target = server;
  target.target = action == "ls"   ? "/api/v1/cache"
                  : action == "rm" ? "/api/v1/cache/images"
                                   : "/api/v1/cache/pins";
  if (action != "ls") target.add_query("image", image);
  for (const auto& p : platforms) target.add_query("platform", p);
  const std::string method = action == "ls" ? "GET" : action == "pin" ? "POST" : "DELETE";
  auto answer = get(server, token, target.target, method);
  if (!answer) {
    std::fprintf(stderr, "layerswarm: %s: %s\n", name.c_str(), answer.error().what().c_str());
    return 1;
  }
  const json& a = *answer;
  if (action == "pin") {
    std::printf("pinned %s (being fetched; `layerswarm cache ls` shows it once cached)\n",
                a.value("image", image).c_str());
  } else if (action == "unpin") {
    std::printf("unpinned %s (it stays cached until evicted)\n", image.c_str());
  } else if (action == "rm") {
    std::printf("removed %s: %llu objects, %s", a.value("image", image).c_str(),
                static_cast<unsigned long long>(a.value("removed", 0ULL)),
                bytes(a.value("removed_bytes", 0.0)).c_str());
    const auto shared = a.value("shared", 0ULL);
    const auto kept = a.contains("kept_in_use") ? a["kept_in_use"].size() : 0;
    if (shared)
      std::printf("; %llu shared with other cached images kept",
                  static_cast<unsigned long long>(shared));
    if (kept) std::printf("; %zu in use or pinned kept", kept);
    std::printf("\n");
  } else {
    std::printf("%-60s %-19s %10s %7s %s\n", "IMAGE", "DIGEST", "CACHED", "BLOBS", "PINNED");
    for (const auto& i : a.value("images", json::array())) {
      const std::string ref =
          i.value("registry", "") + "/" + i.value("repository", "") + ":" + i.value("tag", "");
      std::printf("%-60s %-19s %10s %3llu/%-3llu %s\n", ref.c_str(),
                  i.value("digest", "").substr(0, 19).c_str(),
                  bytes(i.value("bytes_cached", 0.0)).c_str(),
                  static_cast<unsigned long long>(i.value("blobs_cached", 0ULL)),
                  static_cast<unsigned long long>(i.value("blobs", 0ULL)),
                  i.value("pinned", false) ? "yes" : "");
    }
    std::printf("%zu images, %s in the cache%s\n", a.value("images", json::array()).size(),
                bytes(a.value("used_bytes", 0.0)).c_str(),
                a.value("writable", true) ? "" : " (READ-ONLY: disk full)");
    const auto pins = a.value("pins", json::array());
    for (const auto& p : pins) {
      std::printf("pin: %s%s\n", p.value("image", "").c_str(),
                  p.value("configured", false) ? " (cache.pins)" : "");
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  CLI::App app{"layerswarm: ask a running layerswarm agent or supernode"};
  std::string server = "http://127.0.0.1:65001";
  std::string token_file;
  app.add_option("--server", server, "The agent's or supernode's URL (default the local agent)");
  app.add_option("--token-file", token_file, "The cluster token (a supernode asks for it)");
  app.require_subcommand(1);
  auto* status_cmd = app.add_subcommand("status", "Cache use, transfers, swarm, known agents");
  auto* agents_cmd = app.add_subcommand("agents", "The agents a supernode knows");
  auto* preheat_cmd =
      app.add_subcommand("preheat", "Fetch an image once and have agents pull it (supernode)");
  std::string image, zone, agent_ids;
  std::vector<std::string> platforms;
  int share = 100;
  bool wait = false;
  preheat_cmd->add_option("image", image, "Image reference (registry/repo:tag or @digest)")
      ->required();
  preheat_cmd->add_option("--platform", platforms, "os/arch (repeatable; default every one)");
  preheat_cmd->add_option("--zone", zone, "Only agents of this zone");
  preheat_cmd->add_option("--agents", agent_ids, "Only these agents (ids, comma-separated)");
  preheat_cmd->add_option("--share", share, "Percent of the matching agents")
      ->check(CLI::Range(1, 100));
  preheat_cmd->add_flag("--wait", wait, "Follow the preheat until it ends");
  auto* cache_cmd = app.add_subcommand("cache", "The node's cache: ls, pin, unpin, rm");
  cache_cmd->require_subcommand(1);
  auto* cache_ls = cache_cmd->add_subcommand("ls", "Cached images (tags), their size and pins");
  auto* cache_pin =
      cache_cmd->add_subcommand("pin", "Keep an image in the cache (fetched now, kept fresh)");
  auto* cache_unpin = cache_cmd->add_subcommand("unpin", "Undo `cache pin`");
  auto* cache_rm = cache_cmd->add_subcommand(
      "rm", "Remove an image's tag and the blobs no other cached image uses");
  std::string cache_image;
  for (auto* c : {cache_pin, cache_unpin, cache_rm}) {
    c->add_option("image", cache_image, "Image reference (registry/repo:tag or @digest)")
        ->required();
  }
  cache_pin->add_option("--platform", platforms, "os/arch (repeatable; default every one)");
  auto* copies_cmd = app.add_subcommand(
      "copies", "Standing rules on a supernode: keep K copies of an image per zone");
  copies_cmd->require_subcommand(1);
  auto* copies_add = copies_cmd->add_subcommand("add", "Keep at least --copies K of IMAGE");
  auto* copies_ls = copies_cmd->add_subcommand("ls", "The rules and how many copies each zone has");
  auto* copies_rm = copies_cmd->add_subcommand("rm", "Drop a rule (the copies stay cached)");
  std::string copies_image, copies_zone, copies_id;
  int copies_k = 1;
  copies_add->add_option("image", copies_image, "Image reference")->required();
  copies_add->add_option("--copies", copies_k, "Copies per zone")
      ->check(CLI::Range(1, 10000))
      ->required();
  copies_add->add_option("--zone", copies_zone, "Only this zone (default every zone)");
  copies_add->add_option("--platform", platforms, "os/arch (repeatable; default every one)");
  copies_rm->add_option("id", copies_id, "The rule's id (copies ls)")->required();
  auto* import_cmd = app.add_subcommand(
      "import",
      "Fill a stopped agent's cache from an export, offline (runs layerswarm-agent import)");
  std::string import_file, import_as, import_config = "/etc/layerswarm/agent.json", import_data_dir;
  bool import_pin = false;
  import_cmd->add_option("file", import_file, "A docker load archive, or an OCI layout")
      ->required();
  import_cmd->add_option("--config", import_config,
                         "The agent's configuration (default /etc/layerswarm/agent.json)");
  import_cmd->add_option("--data-dir", import_data_dir, "The agent's cache directory");
  import_cmd->add_option("--as", import_as, "File the image under this reference");
  import_cmd->add_flag("--pin", import_pin, "Also pin it");
  auto* export_cmd = app.add_subcommand(
      "export", "Write an image from the node's cache as a docker load archive or OCI layout");
  cli::ExportOptions export_options;
  export_options.format = "docker";
  export_cmd->add_option("image", export_options.image, "Image reference")->required();
  export_cmd
      ->add_option("-o,--output", export_options.output,
                   "The archive (docker) or directory (oci) to write")
      ->required();
  export_cmd->add_option("--format", export_options.format, "docker (default) or oci")
      ->check(CLI::IsMember({"docker", "oci"}));
  export_cmd->add_option("--platform", export_options.platform,
                         "os/arch to take from a multi-platform image (default linux/amd64)");
  app.set_version_flag("--version", std::string("layerswarm ") + LAYERSWARM_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  auto url = Url::parse(server);
  if (!url) {
    std::fprintf(stderr, "layerswarm: --server: %s\n", url.error().what().c_str());
    return 2;
  }
  std::string token;
  if (!token_file.empty()) {
    auto t = read_secret_file(token_file);
    if (!t) {
      std::fprintf(stderr, "layerswarm: %s\n", t.error().what().c_str());
      return 2;
    }
    token = *t;
  }
  if (*preheat_cmd) {
    Url target = *url;
    target.target = "/api/v1/preheat";
    target.add_query("image", image);
    for (const auto& p : platforms) target.add_query("platform", p);
    if (!zone.empty()) target.add_query("zone", zone);
    if (!agent_ids.empty()) target.add_query("agents", agent_ids);
    if (share != 100) target.add_query("share", std::to_string(share));
    auto started = get(*url, token, target.target, "POST");
    if (!started) {
      std::fprintf(stderr, "layerswarm: %s: %s\n", server.c_str(), started.error().what().c_str());
      return 1;
    }
    const std::string id = started->value("id", "");
    std::printf("preheat %s started\n", id.c_str());
    std::fflush(stdout);
    return wait ? follow_preheat(*url, token, id) : 0;
  }
  if (*copies_cmd) {
    Url target = *url;
    std::string method = "GET";
    target.target = "/api/v1/copies";
    if (*copies_add) {
      method = "POST";
      target.add_query("image", copies_image);
      target.add_query("copies", std::to_string(copies_k));
      if (!copies_zone.empty()) target.add_query("zone", copies_zone);
      for (const auto& p : platforms) target.add_query("platform", p);
    } else if (*copies_rm) {
      method = "DELETE";
      target.target += "/" + copies_id;
    }
    auto answer = get(*url, token, target.target, method);
    if (!answer) {
      std::fprintf(stderr, "layerswarm: %s: %s\n", server.c_str(), answer.error().what().c_str());
      return 1;
    }
    if (*copies_add) {
      std::printf("rule %s: keep %d copies of %s%s%s\n", answer->value("id", "").c_str(), copies_k,
                  copies_image.c_str(), copies_zone.empty() ? " in every zone" : " in zone ",
                  copies_zone.c_str());
    } else if (*copies_rm) {
      std::printf("rule %s removed\n", copies_id.c_str());
    } else {
      (void)copies_ls;
      std::printf("%-14s %-40s %6s %-12s %s\n", "RULE", "IMAGE", "COPIES", "ZONE", "HELD");
      for (const auto& r : *answer) {
        std::string held;
        const json zones = r.value("zones", json::object());  // outlives the loop
        for (const auto& [z_name, z] : zones.items()) {
          held += (held.empty() ? "" : ", ") + (z_name.empty() ? std::string("-") : z_name) + ": " +
                  std::to_string(z.value("holders", 0)) + "/" +
                  std::to_string(z.value("agents", 0));
        }
        std::printf("%-14s %-40s %6d %-12s %s\n", r.value("id", "").c_str(),
                    r.value("image", "").c_str(), r.value("copies", 0),
                    r.value("zone", "").empty() ? "(every)" : r.value("zone", "").c_str(),
                    held.c_str());
      }
    }
    return 0;
  }
  if (*import_cmd) {
    // The agent's own binary does it: it reads the agent's configuration (registry names,
    // data directory) exactly as the agent does.
    std::vector<std::string> args = {"layerswarm-agent"};
    if (!import_config.empty() && ::access(import_config.c_str(), R_OK) == 0) {
      args.insert(args.end(), {"--config", import_config});
    }
    if (!import_data_dir.empty()) args.insert(args.end(), {"--data-dir", import_data_dir});
    args.insert(args.end(), {"import", import_file});
    if (!import_as.empty()) args.insert(args.end(), {"--as", import_as});
    if (import_pin) args.push_back("--pin");
    std::vector<char*> argv_exec;
    for (auto& a : args) argv_exec.push_back(a.data());
    argv_exec.push_back(nullptr);
    ::execvp("layerswarm-agent", argv_exec.data());
    std::fprintf(stderr, "layerswarm: import needs layerswarm-agent (the agent's package): %s\n",
                 std::strerror(errno));
    return 1;
  }
  if (*export_cmd) {
    export_options.server = *url;
    export_options.token = token;
    return cli::run_export(export_options);
  }
  if (*cache_cmd) {
    return cache(*url, token, server,
                 *cache_ls      ? "ls"
                 : *cache_pin   ? "pin"
                 : *cache_unpin ? "unpin"
                                : "rm",
                 cache_image, platforms);
  }
  if (*agents_cmd) {
    auto agents = get(*url, token, "/api/v1/agents");
    if (!agents) {
      std::fprintf(stderr, "layerswarm: %s: %s\n", server.c_str(), agents.error().what().c_str());
      return 1;
    }
    return print_agents(*agents);
  }
  (void)status_cmd;
  auto status = get(*url, token, "/api/v1/status");
  if (!status) {
    std::fprintf(stderr, "layerswarm: %s: %s\n", server.c_str(), status.error().what().c_str());
    return 1;
  }
  const json& s = *status;
  const std::string role = s.value("role", "?");
  std::printf("%s %s at %s, up %lld s\n", role.c_str(), s.value("version", "?").c_str(),
              server.c_str(), s.value("uptime_seconds", 0LL));
  const double used = metric(s, "layerswarm_cache_bytes");
  const double capacity = metric(s, "layerswarm_cache_capacity_bytes");
  std::printf("cache      %s of %s (%.0f%%)%s\n", bytes(used).c_str(), bytes(capacity).c_str(),
              capacity > 0 ? 100 * used / capacity : 0.0,
              metric(s, "layerswarm_cache_writable") > 0 ? "" : ", READ-ONLY (disk full)");
  std::printf(
      "transfers  %.0f downloads in flight; evicted %.0f, uncached %.0f, quarantined %.0f\n",
      metric(s, "layerswarm_downloads_in_flight"), metric(s, "layerswarm_evicted_blobs_total"),
      metric(s, "layerswarm_uncached_blobs_total"), metric(s, "layerswarm_corrupt_blobs_total"));
  std::printf("swarm      %.0f chunk torrents, %.0f peer connections\n",
              metric(s, "layerswarm_swarm_torrents"), metric(s, "layerswarm_swarm_peers"));
  std::printf("upstreams  %.0f offline; %.0f digest mismatches\n",
              metric(s, "layerswarm_upstreams_offline"),
              metric(s, "layerswarm_digest_mismatches_total"));
  if (role == "supernode") {
    std::printf("agents     %.0f known; tracker: %.0f swarms, %.0f announces\n",
                metric(s, "layerswarm_agents"), metric(s, "layerswarm_tracker_swarms"),
                metric(s, "layerswarm_tracker_announces_total"));
    auto agents = get(*url, token, "/api/v1/agents");
    if (agents) {
      std::printf("\n");
      print_agents(*agents);
    }
  }
  return 0;
}
