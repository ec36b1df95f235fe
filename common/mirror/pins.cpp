#include "common/mirror/pins.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "common/json_config.h"
#include "common/log.h"
#include "common/mirror/manifest_policy.h"
#include "common/size.h"

namespace layerswarm::mirror {

using nlohmann::json;

namespace {

// Nesting of indexes inside indexes followed (an index of indexes is rare; deeper is hostile).
constexpr int kMaxDepth = 3;
// Children of one index, blobs of one manifest.
constexpr std::size_t kMaxEntries = 10'000;
// A pinned blob's download may go this long without progress before the pin is retried later.
constexpr std::chrono::minutes kBlobStall{2};

bool is_index(const std::string& media_type) {
  return media_type == kOciIndex || media_type == kDockerList;
}

std::string platform_of(const json& p) {
  if (!p.is_object()) return "";
  std::string s = p.value("os", "") + "/" + p.value("architecture", "");
  if (p.contains("variant") && p["variant"].is_string()) s += "/" + p["variant"].get<std::string>();
  return s;
}

// "linux/arm64" asked matches "linux/arm64/v8" offered; "linux/arm/v7" only itself.
bool platform_wanted(const std::vector<std::string>& wanted, const std::string& offered) {
  if (wanted.empty()) return true;
  for (const auto& w : wanted) {
    if (offered == w || offered.rfind(w + "/", 0) == 0) return true;
  }
  return false;
}

}  // namespace

ImageFetcher::ImageFetcher(asio::any_io_executor executor, Upstreams& upstreams,
                           ManifestService& manifests, BlobFetcher& fetcher, Store& store)
    : executor_(executor),
      upstreams_(upstreams),
      manifests_(manifests),
      fetcher_(fetcher),
      store_(store) {}

Pinner::Pinner(asio::any_io_executor executor, ImageFetcher& images, Store& store,
               PinnerOptions options, std::function<void(const Error&)> fatal)
    : executor_(executor),
      images_(images),
      store_(store),
      options_(std::move(options)),
      fatal_(std::move(fatal)),
      timer_(std::make_unique<asio::steady_timer>(executor)) {}

Pinner::~Pinner() { stop(); }

std::optional<std::string> ImageFetcher::tag_key(const ImageReference& image) {
  if (image.digest || image.tag.empty()) return std::nullopt;
  auto target = upstreams_.resolve(image.registry);
  if (!target) return std::nullopt;
  return target->registry + "|" + canonical_name(target->registry, image.name) + "|" + image.tag;
}

void Pinner::start() {
  load();
  const std::vector<PinSpec> pins = all();
  if (pins.empty()) return;
  // The pinned tags are known from the configuration: a node restarted while offline serves
  // them past max_stale from the first request, before any pass resolved them.
  std::vector<std::string> tags;
  for (const auto& pin : pins) {
    if (auto key = images_.tag_key(pin.image)) tags.push_back(std::move(*key));
  }
  store_.set_pinned({}, std::move(tags));
  running_ = true;
  asio::co_spawn(executor_, loop(), asio::detached);
}

std::vector<PinSpec> Pinner::all() const {
  std::vector<PinSpec> pins = options_.pins;
  pins.insert(pins.end(), runtime_.begin(), runtime_.end());
  return pins;
}

Result<std::vector<PinSpec>> read_pin_file(const std::string& file) {
  std::vector<PinSpec> pins;
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return pins;  // none yet
  auto j = load_json_file(file);
  if (!j) return j.error();
  if (auto s = parse_pin_list(*j, file, pins); !s) return s.error();
  return pins;
}

Status write_pin_file(const std::string& file, const std::vector<PinSpec>& pins) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& pin : pins) {
    list.push_back({{"image", pin.image.str()}, {"platforms", pin.platforms}});
  }
  return save_json_file(file, list);
}

void Pinner::load() {
  if (options_.runtime_file.empty()) return;
  auto pins = read_pin_file(options_.runtime_file);
  if (!pins) {
    LOG_ERROR("{}; run-time pins ignored until the file is fixed or replaced", pins.error().what());
    return;
  }
  runtime_ = std::move(*pins);
}

Status Pinner::save() const { return write_pin_file(options_.runtime_file, runtime_); }

Status Pinner::add(PinSpec pin) {
  if (options_.runtime_file.empty()) return Error(Errc::kDenied, "run-time pins are off here");
  for (const auto& p : all()) {
    if (p.image.str() == pin.image.str() && p.platforms == pin.platforms) return {};
  }
  runtime_.push_back(std::move(pin));
  if (auto s = save(); !s) {
    runtime_.pop_back();
    return s;
  }
  poke();
  return {};
}

Status Pinner::remove(const ImageReference& image) {
  for (const auto& p : options_.pins) {
    if (p.image.str() == image.str()) {
      return Error(Errc::kDenied,
                   image.str() + " is pinned by the configuration (cache.pins): edit it there");
    }
  }
  const auto before = runtime_.size();
  auto kept = runtime_;
  std::erase_if(kept, [&](const PinSpec& p) { return p.image.str() == image.str(); });
  if (kept.size() == before) return Error(Errc::kNotFound, image.str() + " is not pinned");
  std::swap(runtime_, kept);
  if (auto s = save(); !s) {
    std::swap(runtime_, kept);
    return s;
  }
  poke();
  return {};
}

std::vector<Pinner::Listed> Pinner::list() const {
  std::vector<Listed> out;
  for (const auto& p : options_.pins) out.push_back({p.image.str(), p.platforms, true});
  for (const auto& p : runtime_) out.push_back({p.image.str(), p.platforms, false});
  return out;
}

void Pinner::poke() {
  if (!*alive_) return;
  if (!running_) {
    running_ = true;
    asio::co_spawn(executor_, loop(), asio::detached);
    return;
  }
  dirty_ = true;
  timer_->cancel();
}

void Pinner::stop() {
  *alive_ = false;
  timer_->cancel();
}

Task<void> Pinner::loop() {
  std::weak_ptr<bool> alive = alive_;
  for (long i = 0; i < (1L << 40); ++i) {
    dirty_ = false;
    Status done = co_await pass(i == 0);
    if (alive.expired() || !*alive_) co_return;
    if (dirty_) continue;  // pins changed meanwhile
    // A failed pass (the upstream unreachable) is tried again sooner than a refresh.
    const auto wait =
        done ? options_.refresh
             : std::min<std::chrono::milliseconds>(options_.refresh, std::chrono::seconds(30));
    timer_->expires_after(wait);
    boost::system::error_code ec;
    co_await timer_->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (alive.expired() || !*alive_) co_return;
  }
}

Task<Status> Pinner::pass(bool first) {
  std::weak_ptr<bool> alive = alive_;
  ImageContents found;
  Status resolved;
  // A copy: pins may be added or removed while this pass waits.
  const std::vector<PinSpec> pins = all();
  for (const PinSpec& pin : pins) {
    Status s = co_await images_.resolve(pin, found);
    // Whatever a tag resolved to so far is pinned at once (a pass may stop at a later pin).
    for (const auto& d : found.digests) store_.add_pinned(d);
    if (alive.expired()) co_return Error(Errc::kShuttingDown);
    if (!s) {
      LOG_WARN("cache.pins: {}: {}; keeping what is cached and trying again later", pin.image.str(),
               s.error().what());
      resolved = s;
    }
  }
  if (options_.budget && found.blob_bytes > *options_.budget) {
    const Error error(Errc::kConfigInvalid,
                      "cache.pins: the pinned images take " + format_size(found.blob_bytes) +
                          ", more than cache.max_size (" + format_size(*options_.budget) + ")");
    // At start, a configuration error; pins added at run time are refused by a log line.
    if (first && runtime_.empty() && fatal_) {
      fatal_(error);
    } else {
      LOG_ERROR("{}; the new pins are not fetched, the old ones stay", error.what());
    }
    co_return error;
  }
  // Pinned before they are fetched: fetching one must not evict another.
  for (const auto& d : found.digests) store_.add_pinned(d);
  Status fetched;
  for (const auto& [blob, size] : found.blobs) {
    (void)size;
    Status s = co_await images_.ensure(blob);
    if (alive.expired()) co_return Error(Errc::kShuttingDown);
    if (!s) {
      LOG_WARN("cache.pins: blob {} of {}: {}; trying again later", blob.digest.str(),
               blob.repository, s.error().what());
      fetched = s;
    }
  }
  if (resolved) {
    // A complete picture: what is no longer named (a tag moved) is unpinned.
    store_.set_pinned(found.digests, found.tags);
  }
  pinned_bytes_ = found.blob_bytes;
  if (resolved && fetched) {
    LOG_INFO("cache.pins: {} images pinned ({} in {} blobs)", pins.size(),
             format_size(found.blob_bytes), found.blobs.size());
  }
  co_return resolved ? fetched : resolved;
}

Task<Status> ImageFetcher::resolve(const PinSpec& pin, ImageContents& found) {
  auto target = upstreams_.resolve(pin.image.registry);
  if (!target) co_return target.error();
  const std::string repository = canonical_name(target->registry, pin.image.name);
  Result<ManifestAnswer> answer = Error(Errc::kInternal);
  if (pin.image.digest) {
    answer = co_await manifests_.by_digest(*target, repository, *pin.image.digest);
  } else {
    answer = co_await manifests_.by_tag(*target, repository, pin.image.tag);
    if (answer) found.tags.push_back(target->registry + "|" + repository + "|" + pin.image.tag);
  }
  if (!answer) co_return answer.error();
  co_return co_await resolve_manifest(*target, repository, *answer, pin, found, 0);
}

Task<Status> ImageFetcher::resolve_manifest(const UpstreamTarget& target,
                                            const std::string& repository,
                                            const ManifestAnswer& answer, const PinSpec& pin,
                                            ImageContents& found, int depth) {
  if (!found.seen.insert(answer.digest.str()).second) co_return Status{};
  found.digests.push_back(answer.digest);
  const json doc = json::parse(answer.manifest.bytes, nullptr, false);
  if (!doc.is_object()) co_return Error(Errc::kManifestInvalid, "not a JSON object");
  if (is_index(answer.manifest.media_type) || doc.contains("manifests")) {
    if (depth >= kMaxDepth) co_return Error(Errc::kManifestInvalid, "indexes nested too deep");
    const json& list = doc.value("manifests", json::array());
    if (!list.is_array() || list.size() > kMaxEntries) {
      co_return Error(Errc::kManifestInvalid, "an index without a usable manifests list");
    }
    std::size_t matched = 0;
    for (const auto& entry : list) {
      if (!entry.is_object() || !entry.contains("digest") || !entry["digest"].is_string()) continue;
      // Attestations and signatures stored as platform "unknown/unknown" are skipped.
      const std::string platform = platform_of(entry.value("platform", json::object()));
      if (platform == "unknown/unknown") continue;
      if (entry.contains("platform") && !platform_wanted(pin.platforms, platform)) continue;
      auto child = Digest::parse(entry["digest"].get<std::string>());
      if (!child) continue;
      auto sub = co_await manifests_.by_digest(target, repository, *child);
      if (!sub) co_return sub.error();
      Status s = co_await resolve_manifest(target, repository, *sub, pin, found, depth + 1);
      if (!s) co_return s;
      ++matched;
    }
    if (matched == 0 && !pin.platforms.empty()) {
      co_return Error(Errc::kManifestUnknown, "no manifest for the platforms asked for");
    }
    co_return Status{};
  }
  // An image manifest: its config and layers (or an artifact's blobs).
  std::vector<const json*> descriptors;
  if (doc.contains("config") && doc["config"].is_object()) descriptors.push_back(&doc["config"]);
  for (const char* key : {"layers", "blobs"}) {
    if (!doc.contains(key) || !doc[key].is_array()) continue;
    if (doc[key].size() > kMaxEntries) co_return Error(Errc::kManifestInvalid, "too many blobs");
    for (const auto& d : doc[key]) descriptors.push_back(&d);
  }
  if (descriptors.empty() && doc.value("schemaVersion", 0) == 1) {
    co_return Error(Errc::kManifestInvalid, "schema 1 manifests cannot be pinned");
  }
  for (const json* d : descriptors) {
    if (!d->is_object() || !d->contains("digest") || !(*d)["digest"].is_string()) continue;
    auto digest = Digest::parse((*d)["digest"].get<std::string>());
    if (!digest) continue;
    if (!found.seen.insert(digest->str()).second) continue;
    const std::uint64_t size = d->contains("size") && (*d)["size"].is_number_unsigned()
                                   ? (*d)["size"].get<std::uint64_t>()
                                   : 0;
    found.digests.push_back(*digest);
    found.blobs.push_back({BlobLocator{target.registry, repository, *digest}, size});
    found.blob_bytes += size;
  }
  co_return Status{};
}

Task<Status> ImageFetcher::ensure(const BlobLocator& blob) {
  if (store_.blob_size(blob.digest)) co_return Status{};
  std::shared_ptr<BlobFetch> fetch = fetcher_.join(blob);
  std::uint64_t seen = 0;
  SteadyTime stall = deadline_after(kBlobStall);
  for (int i = 0; i < 10'000'000 && !fetch->done(); ++i) {
    if (fetch->state() == BlobFetch::State::kFailed) co_return fetch->error();
    if (fetch->available() > seen) {
      seen = fetch->available();
      stall = deadline_after(kBlobStall);
    }
    if (std::chrono::steady_clock::now() >= stall) {
      co_return Error(Errc::kTimeout,
                      "no progress for " + std::to_string(kBlobStall.count()) + " minutes");
    }
    co_await fetch->progress().wait_until(stall);
  }
  if (fetch->state() == BlobFetch::State::kFailed) co_return fetch->error();
  if (fetch->uncached()) co_return Error(Errc::kStorage, "no room in the cache for it");
  if (!fetch->cached()) co_return Error(Errc::kStorage, "verified but not cached");
  co_return Status{};
}

}  // namespace layerswarm::mirror
