#include "agent/agent.h"

#include "common/json_config.h"
#include "common/mirror/node.h"

namespace layerswarm::agent {

struct Agent::Impl {
  std::unique_ptr<mirror::MirrorNode> node;
};

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Agent::~Agent() = default;

Result<std::unique_ptr<Agent>> Agent::create(const AgentConfig& config, asio::io_context& ioc,
                                             const Clock& clock) {
  mirror::NodeOptions options;
  options.data_dir = config.data_dir;
  options.mirror = config.mirror;
  options.listen = config.listen;
  options.tls_listen = config.tls.listen;
  options.tls = TlsFiles{config.tls.cert, config.tls.key};
  options.drain_timeout = config.drain_timeout;
  options.direct_fallback = config.direct_fallback;
  if (!config.supernode.empty()) {
    auto token = read_secret_file(config.token_file);
    if (!token) return token.error();
    options.via =
        mirror::Via{*Url::parse(config.supernode), *token, config.supernode_ca_file, false};
  }
  auto node = mirror::MirrorNode::create(options, ioc, clock);
  if (!node) return node.error();
  auto impl = std::make_unique<Impl>();
  impl->node = std::move(*node);
  return std::unique_ptr<Agent>(new Agent(std::move(impl)));
}

const std::vector<std::string>& Agent::endpoints() const { return impl_->node->endpoints(); }
const mirror::Counters& Agent::counters() const { return impl_->node->counters(); }
void Agent::start() { impl_->node->start(); }
void Agent::cut_shutdown() { impl_->node->cut_shutdown(); }
Task<void> Agent::shutdown() { co_await impl_->node->shutdown(); }

}  // namespace layerswarm::agent
