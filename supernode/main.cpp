// layerswarm-supernode: parses flags, loads the configuration, wires the supernode and runs it
// until SIGTERM or SIGINT, then drains. Exit codes: 0 after a clean stop, 1 when it cannot
// start (storage, address in use, token file), 2 for a bad configuration or command line.
#include <cstdio>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>

#include "common/audit.h"
#include "common/log.h"
#include "common/service.h"
#include "layerswarm_version.h"
#include "supernode/site.h"
#include "supernode/supernode.h"

int main(int argc, char** argv) {
  using namespace layerswarm;
  CLI::App app{"layerswarm-supernode: a site's shared registry mirror, tracker and first seed"};
  std::string config_file;
  supernode::Overrides o;
  app.add_option("--config", config_file, "JSON configuration file (docs/configuration.md)");
  bool check_config = false;
  app.add_flag("--check-config", check_config,
               "Read the configuration and flags, report the first error (status 2) or "
               "\"configuration ok\" (status 0), and exit");
  app.add_option("--listen", o.listen, "Address to serve on (default 0.0.0.0:65100)");
  app.add_option("--data-dir", o.data_dir,
                 "Cache directory (default /var/lib/layerswarm/supernode)");
  app.add_option("--upstream", o.upstream,
                 "Registry URL (or registries entry) for requests that name none "
                 "(default https://registry-1.docker.io)");
  app.add_option("--token-file", o.token_file, "File holding the cluster token (required)");
  app.add_option("--registry", o.registries,
                 "HOST=URL: where registry HOST is reached (repeatable)");
  app.add_option("--p2p-listen", o.p2p_listen,
                 "BitTorrent address, ADDR:PORT (default 0.0.0.0:6881; port 0 picks one)");
  app.add_option("--p2p-port", o.p2p_port, "BitTorrent port (replaces --p2p-listen's port)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--log-level", o.log_level, "trace|debug|info|warn|error|off (default info)");
  app.set_version_flag("--version", "layerswarm-supernode " LAYERSWARM_VERSION);
  supernode::SiteFiles site;
  CLI::App* init = app.add_subcommand(
      "init-site",
      "Create a new closed site in --dir: its CA (ca.pem, ca.key), the supernode's https "
      "certificate (supernode.pem, supernode.key) and the cluster token (token); then exit "
      "(docs/security.md)");
  init->add_option("--dir", site.dir, "Directory to create the files in")->required();
  init->add_option("--name", site.names, "A DNS name agents reach the supernode by (repeatable)");
  init->add_option("--ip", site.ips, "An IP address agents reach the supernode at (repeatable)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (*init) {
    if (auto s = supernode::init_site(site); !s) {
      std::fprintf(stderr, "layerswarm-supernode init-site: %s\n", s.error().what().c_str());
      return s.error().code == make_error_code(Errc::kConfigInvalid) ? 2 : 1;
    }
    std::printf(
        "created a site in %s. Supernode configuration:\n"
        "  \"token_file\": \"%s/token\",\n"
        "  \"tls\": {\"listen\": \"0.0.0.0:65101\", \"cert\": \"%s/supernode.pem\", "
        "\"key\": \"%s/supernode.key\"},\n"
        "  \"site\": {\"ca_cert\": \"%s/ca.pem\", \"ca_key\": \"%s/ca.key\"}\n"
        "Agents: \"supernode\": \"https://<name>:65101\", \"token_file\" (a copy of token), "
        "\"supernode_ca_file\" (a copy of ca.pem). ca.key never leaves this host.\n",
        site.dir.c_str(), site.dir.c_str(), site.dir.c_str(), site.dir.c_str(), site.dir.c_str(),
        site.dir.c_str());
    return 0;
  }

  auto config = supernode::load_config(config_file, o);
  if (!config) {
    std::fprintf(stderr, "layerswarm-supernode: %s\n", config.error().what().c_str());
    return 2;
  }
  if (check_config) {
    std::printf("layerswarm-supernode: configuration ok\n");
    return 0;
  }
  if (auto s = init_logging(config->log.level, config->log.file); !s) {
    std::fprintf(stderr, "layerswarm-supernode: %s\n", s.error().what().c_str());
    return 2;
  }
  if (auto s = open_audit_log(config->audit_log); !s) {
    LOG_ERROR("cannot start: {}", s.error().what());
    return 1;
  }
  raise_descriptor_limit();
  boost::asio::io_context ioc(1);
  SystemClock clock;
  auto created = supernode::Supernode::create(*config, ioc, clock);
  if (!created) {
    LOG_ERROR("cannot start: {}", created.error().what());
    return 1;
  }
  std::unique_ptr<supernode::Supernode> node = std::move(*created);
  for (std::size_t i = 0; i < node->endpoints().size(); ++i) {
    LOG_INFO("layerswarm-supernode {} listening on {}://{} (data {}, default upstream {})",
             LAYERSWARM_VERSION, i == 0 ? "http" : "https", node->endpoints()[i], config->data_dir,
             config->mirror.upstream);
  }
  if (!node->metrics_endpoint().empty()) {
    LOG_INFO("metrics, health and readiness on http://{}", node->metrics_endpoint());
  }
  node->start();
  supernode::Supernode* n = node.get();
  run_until_signalled(
      ioc, [n] { return n->shutdown(); }, [n] { n->cut_shutdown(); },
      config->drain_timeout.count());
  LOG_INFO("stopped; {}", node->counters().summary());
  return fatal_exit_code();
}
