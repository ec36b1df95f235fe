// The agent's client of the supernode's swarm API (common/swarm_protocol.h): authenticated
// GETs of layouts, chunk metainfo and the demand feed, the tracker URL, and the supernode's
// address for a first connection. Shared by the swarm download (swarm_source.h) and the
// seeder (seeder.h).
//
// Threading: the io_context thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/async.h"
#include "common/http_client.h"
#include "common/result.h"
#include "common/swarm_protocol.h"
#include "common/url.h"

namespace layerswarm::agent {

struct SupernodeLinkOptions {
  Url supernode;
  std::string token;
  std::string zone;
  std::string ca_file;  // for an https supernode
};

// How the supernode cuts a blob into chunk torrents (the layout headers).
struct Layout {
  std::uint64_t size = 0;
  std::uint64_t chunk_size = 0;
  int piece_size = 0;
  // Chunk 0's pieces (docs/architecture.md "The first chunk's small pieces").
  int first_piece_size = 0;
  std::size_t chunks = 0;
  std::uint16_t seed_port = 0;

  std::uint64_t chunk_length(std::size_t k) const {
    return std::min(size, (k + 1) * chunk_size) - k * chunk_size;
  }
  int piece_size_of(std::size_t k) const { return k == 0 ? first_piece_size : piece_size; }
  // Whether a metainfo of `length` bytes in pieces of `piece_length` is chunk k's.
  bool fits(std::size_t k, std::uint64_t length, int piece_length) const {
    return length == chunk_length(k) && piece_length == piece_size_of(k);
  }
};

// A header holding a decimal number (nothing else); nullopt when absent or malformed.
std::optional<std::uint64_t> header_number(const Headers& headers, std::string_view name);

// The layout in a 200 answer's headers. Errors: kBadUpstreamResponse.
Result<Layout> parse_layout(const Headers& headers);

struct Answer {
  int status = 0;
  Headers headers;
  std::string body;
};

class SupernodeLink {
 public:
  SupernodeLink(asio::any_io_executor executor, SupernodeLinkOptions options);

  // GET `target` with the cluster token; the whole answer (a body of at most `limit` bytes).
  // Errors: transport errors and timeouts (the client's read timeout, or `timeout`).
  Task<Result<Answer>> get(std::string target, std::size_t limit,
                           std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // POST `target` (no body) with the cluster token and `headers`; as get().
  Task<Result<Answer>> post(std::string target, Headers headers, std::size_t limit);
  // The announce URL for chunk torrents. An open site's carries the token in its query
  // (libtorrent sends no headers); a member of a closed site proves membership with its
  // certificate instead, and its URL holds no secret (set_member).
  std::vector<std::string> trackers() const;
  void set_member(bool member) { member_ = member; }
  // The supernode's IP address (resolved), for connecting to its seed port at once.
  Task<Result<std::string>> ip(SteadyTime deadline);

 private:
  asio::any_io_executor executor_;
  Task<Result<Answer>> send(ClientRequest request, std::size_t limit);

  SupernodeLinkOptions options_;
  HttpClient client_;
  bool member_ = false;
};

}  // namespace layerswarm::agent
