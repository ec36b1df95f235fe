// The agent's first blob source: the site's swarm (docs/architecture.md "The swarm"). The
// supernode publishes a blob as chunk torrents, each as soon as it holds that chunk; the agent
// adds them one by one, libtorrent writes verified pieces straight into the download's file
// (in place), and the stream hands the fetcher the bytes in order as the contiguous verified
// prefix grows. The fetcher still checks the whole blob's digest; once the blob is cached its
// torrents go on seeding while peers want them (seeder.h).
//
// Hands over to the next source (the supernode over HTTP, at the byte reached) when the
// supernode's swarm API cannot serve the blob (any answer but a layout: its errors are never
// the client's), when neither a piece nor a block's worth of payload arrives for
// `stall_timeout` (docs/architecture.md "Fallbacks"), or on a torrent error; declines
// blobs smaller than `min_blob_size` (a torrent's setup costs more than it saves).
//
// Threading: the io_context thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "agent/supernode_link.h"
#include "common/mirror/blob_source.h"

namespace layerswarm::p2p {
class Swarm;
}

namespace layerswarm::agent {

class Seeder;

struct SwarmSourceOptions {
  std::chrono::milliseconds stall_timeout{10'000};
  std::uint64_t min_blob_size = 1 << 20;
  int window = 0;  // pieces with top priority ahead of the reader (0: none)
};

// When the contiguous prefix has not grown for this long while other pieces arrive, the
// pieces at its end get top priority (rarest-first alone can leave the reader's next piece
// for last: at 20 Mbit/s a 40 MiB layer then showed no new byte to its client for minutes).
inline constexpr std::chrono::seconds kFrontierNudge{2};
inline constexpr int kFrontierNudgePieces = 2;

class SwarmSource final : public mirror::BlobSource {
 public:
  // `link`, `swarm` and `seeder` must outlive the source.
  SwarmSource(asio::any_io_executor executor, SupernodeLink& link, p2p::Swarm& swarm,
              Seeder& seeder, SwarmSourceOptions options);
  ~SwarmSource() override;

  std::string_view name() const override { return "swarm"; }
  // Errors: kUnsupported (declined: small blob, offset not 0), kUpstreamUnavailable (hand
  // over: whatever the supernode's swarm API answered instead of a layout).
  Task<Result<std::unique_ptr<mirror::BlobStream>>> open(mirror::BlobLocator blob,
                                                         std::uint64_t offset, SteadyTime deadline,
                                                         int file) override;
  // Declines: the supernode over HTTP answers sizes.
  Task<Result<std::uint64_t>> stat(mirror::BlobLocator blob, SteadyTime deadline) override;

  struct Download;

 private:
  friend class SwarmStream;
  Task<Result<Layout>> fetch_layout(const mirror::BlobLocator& blob, SteadyTime deadline);
  Task<Result<std::string>> fetch_metainfo(const mirror::BlobLocator& blob, std::size_t k,
                                           std::shared_ptr<Download> download);
  Task<void> add_chunks(std::shared_ptr<Download> download, mirror::BlobLocator blob);
  // A verified download's torrents go on seeding (the seeder takes them).
  void keep_seeding(Download& download);

  asio::any_io_executor executor_;
  SupernodeLink& link_;
  p2p::Swarm& swarm_;
  Seeder& seeder_;
  SwarmSourceOptions options_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace layerswarm::agent
