// layerswarm-agent: parses flags, loads the configuration, wires the agent and runs it until
// SIGTERM or SIGINT, then drains. Exit codes: 0 after a clean stop, 1 when the agent cannot
// start (storage, address in use), 2 for a bad configuration or command line.
#include <cstdio>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>

#include "agent/agent.h"
#include "agent/import.h"
#include "common/audit.h"
#include "common/log.h"
#include "common/service.h"
#include "layerswarm_version.h"

int main(int argc, char** argv) {
  using namespace layerswarm;
  CLI::App app{"layerswarm-agent: a node's pull-through registry mirror (OCI Distribution API)"};
  std::string config_file;
  agent::Overrides o;
  app.add_option("--config", config_file, "JSON configuration file (docs/configuration.md)");
  bool check_config = false;
  app.add_flag("--check-config", check_config,
               "Read the configuration and flags, report the first error (status 2) or "
               "\"configuration ok\" (status 0), and exit");
  app.add_option("--listen", o.listen,
                 "Address to serve on (default 127.0.0.1:65001; port 0 picks one)");
  app.add_option("--data-dir", o.data_dir, "Cache directory (default /var/lib/layerswarm/agent)");
  app.add_option("--upstream", o.upstream,
                 "Registry URL (or registries entry) for requests that name none "
                 "(default https://registry-1.docker.io)");
  app.add_option("--registry", o.registries,
                 "HOST=URL: where registry HOST is reached, e.g. docker.io=http://127.0.0.1:5000 "
                 "(repeatable)");
  app.add_option("--log-level", o.log_level, "trace|debug|info|warn|error|off (default info)");
  app.add_option("--supernode", o.supernode,
                 "URL of the site's supernode, asked first for manifests and blobs");
  app.add_option("--token-file", o.token_file, "File holding the cluster token (with --supernode)");
  app.add_option("--zone", o.zone, "Zone/rack label: swarm peers with the same one are preferred");
  app.add_option("--p2p-listen", o.p2p_listen,
                 "BitTorrent listen address (default 0.0.0.0:6881; port 0 picks one)");
  app.add_option("--p2p-port", o.p2p_port, "BitTorrent port (replaces p2p_listen's port)")
      ->check(CLI::Range(0, 65535));
  agent::ImportOptions import_options;
  CLI::App* import_cmd = app.add_subcommand(
      "import",
      "Fill the cache of this (stopped) agent from a `layerswarm export` (a docker load "
      "archive, or an OCI layout directory or tar), offline; then exit (docs/operations.md)");
  import_cmd->add_option("file", import_options.file, "The archive or OCI layout")->required();
  import_cmd->add_option("--as", import_options.as,
                         "File the image under this reference (default: the archive's name)");
  import_cmd->add_flag("--pin", import_options.pin, "Also pin it (never evicted)");
  app.set_version_flag("--version", "layerswarm-agent " LAYERSWARM_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help and --version exit 0
  }

  auto config = agent::load_config(config_file, o);
  if (!config) {
    std::fprintf(stderr, "layerswarm-agent: %s\n", config.error().what().c_str());
    return 2;
  }
  if (*import_cmd) {
    (void)init_logging("warn", "");  // only problems: the import prints its own lines
    return agent::run_import(*config, import_options);
  }
  if (check_config) {
    std::printf("layerswarm-agent: configuration ok\n");
    return 0;
  }
  if (auto s = init_logging(config->log.level, config->log.file); !s) {
    std::fprintf(stderr, "layerswarm-agent: %s\n", s.error().what().c_str());
    return 2;
  }
  if (auto s = open_audit_log(config->audit_log); !s) {
    LOG_ERROR("cannot start: {}", s.error().what());
    return 1;
  }
  raise_descriptor_limit();
  boost::asio::io_context ioc(1);
  SystemClock clock;
  auto created = agent::Agent::create(*config, ioc, clock);
  if (!created) {
    LOG_ERROR("cannot start: {}", created.error().what());
    return 1;
  }
  std::unique_ptr<agent::Agent> agent = std::move(*created);
  for (std::size_t i = 0; i < agent->endpoints().size(); ++i) {
    LOG_INFO("layerswarm-agent {} listening on {}://{} (data {}, default upstream {}{}{})",
             LAYERSWARM_VERSION, i == 0 ? "http" : "https", agent->endpoints()[i], config->data_dir,
             config->mirror.upstream, config->supernode.empty() ? "" : ", supernode ",
             config->supernode);
  }
  if (!agent->metrics_endpoint().empty()) {
    LOG_INFO("metrics, health and readiness on http://{}", agent->metrics_endpoint());
  }
  if (agent->p2p_port() != 0) {
    LOG_INFO("swarm: BitTorrent on port {}{}{}", agent->p2p_port(),
             config->zone.empty() ? "" : ", zone ", config->zone);
  }
  agent->start();
  agent::Agent* a = agent.get();
  run_until_signalled(
      ioc, [a] { return a->shutdown(); }, [a] { a->cut_shutdown(); },
      config->drain_timeout.count());
  LOG_INFO("stopped; {}", agent->counters().summary());
  return fatal_exit_code();
}
