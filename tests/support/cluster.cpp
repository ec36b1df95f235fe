#include "tests/support/cluster.h"

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

namespace layerswarm::test {

std::string token_file(const TempDir& dir, const std::string& token) {
  const std::string path = dir.file("token-" + std::to_string(std::hash<std::string>{}(token)));
  write_file(path, token + "\n");
  return path;
}

std::unique_ptr<Agent> start_supernode(const TempDir& dir, const std::string& upstream_url,
                                       const std::string& config) {
  return std::make_unique<Agent>(
      dir, std::vector<std::string>{"--upstream", upstream_url, "--token-file", token_file(dir)},
      config, "supernode", supernode_binary());
}

std::unique_ptr<Agent> start_agent(const TempDir& dir, const std::string& upstream_url,
                                   const std::string& supernode, const std::string& name,
                                   const std::string& token_path, const std::string& config) {
  return std::make_unique<Agent>(
      dir,
      std::vector<std::string>{"--upstream", upstream_url, "--supernode", "http://" + supernode,
                               "--token-file", token_path},
      config, name);
}

long long counter(const Agent& agent, const std::string& name) {
  const std::string log = agent.log();
  const auto at = log.rfind(" " + name + "=");
  if (at == std::string::npos) return -1;
  return std::stoll(log.substr(at + name.size() + 2));
}

double metric(const Agent& agent, const std::string& name) {
  const auto r = http_get(agent.address(), "/metrics");
  if (r.status != 200) return -1;
  const std::string line = "\n" + name + " ";
  const auto at = r.body.find(line);
  if (at == std::string::npos) return -1;
  return std::stod(r.body.substr(at + line.size()));
}

int open_fds(pid_t pid) {
  std::error_code ec;
  int n = 0;
  for (const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    (void)e;
    ++n;
  }
  return ec ? -1 : n;
}

std::pair<long long, long long> fd_limits(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Max open files", 0) != 0) continue;
    std::istringstream fields(line.substr(14));
    long long soft = -1, hard = -1;
    fields >> soft >> hard;
    return {soft, hard};
  }
  return {-1, -1};
}

bool any_file_starts_with(const std::string& dir, const std::string& prefix) {
  std::error_code ec;
  for (const auto& f : std::filesystem::directory_iterator(dir, ec)) {
    std::ifstream in(f.path(), std::ios::binary);
    std::string head(prefix.size(), '\0');
    if (in.read(head.data(), static_cast<std::streamsize>(head.size())) && head == prefix) {
      return true;
    }
  }
  return false;
}

}  // namespace layerswarm::test
