// A site for integration tests: a supernode and agents (real processes on loopback) sharing a
// cluster token, their exit counters, and what the kernel says of a process (descriptors, limits).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/support/fixtures.h"

namespace layerswarm::test {

inline constexpr const char* kToken = "cluster-token-for-tests";
// Small chunks and pieces, so that test blobs span several chunk torrents.
inline constexpr const char* kSmallChunks =
    R"({"swarm": {"chunk_size": 2097152, "piece_size": 262144}})";

// A file in `dir` holding `token`; its path.
std::string token_file(const TempDir& dir, const std::string& token = kToken);

// A supernode in front of `upstream_url`.
std::unique_ptr<Agent> start_supernode(const TempDir& dir, const std::string& upstream_url,
                                       const std::string& config = "");
// An agent with `supernode` (host:port) as its site's supernode.
std::unique_ptr<Agent> start_agent(const TempDir& dir, const std::string& upstream_url,
                                   const std::string& supernode, const std::string& name,
                                   const std::string& token_path, const std::string& config = "");

// The value of `name=<n>` in the agent's exit summary, -1 when absent.
long long counter(const Agent& agent, const std::string& name);

// The value of the unlabelled sample `name` on the agent's live /metrics, -1 when absent.
double metric(const Agent& agent, const std::string& name);

// Open descriptors of process `pid` (/proc/<pid>/fd), -1 when unreadable.
int open_fds(pid_t pid);
// The soft and hard "Max open files" of process `pid` (/proc/<pid>/limits); {-1, -1} if unknown.
std::pair<long long, long long> fd_limits(pid_t pid);
// Whether a file in `dir` (an agent's tmp/: downloads in progress) begins with `prefix`.
bool any_file_starts_with(const std::string& dir, const std::string& prefix);

}  // namespace layerswarm::test
