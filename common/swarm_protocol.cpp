#include "common/swarm_protocol.h"

#include <nlohmann/json.hpp>

#include <charconv>

#include "common/reference.h"
#include "common/url.h"

namespace layerswarm::swarm_protocol {
namespace {

constexpr std::string_view kBlobs = "blobs/";
constexpr std::string_view kChunksSegment = "/chunks/";
constexpr std::string_view kDemandPath = "demand";
constexpr std::size_t kMaxQueryParams = 16;

std::string blob_query(const BlobRef& blob) {
  std::string q = "?ns=" + percent_encode(blob.registry);
  q += "&repo=" + percent_encode(blob.repository);
  return q;
}

template <class T>
std::optional<T> parse_number(std::string_view s) {
  T n{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return n;
}

struct Query {
  std::optional<std::string> ns, repo, after;
};

// The query's known parameters (decoded); unknown ones are ignored, repeated ones are errors.
Result<Query> parse_query(std::string_view query) {
  Query q;
  for (std::size_t i = 0; i < kMaxQueryParams && !query.empty(); ++i) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto eq = pair.find('=');
    const std::string_view key = pair.substr(0, eq);
    const auto value =
        percent_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!value) return Error(Errc::kNameInvalid, "malformed query escape");
    std::optional<std::string>* slot = key == "ns"      ? &q.ns
                                       : key == "repo"  ? &q.repo
                                       : key == "after" ? &q.after
                                                        : nullptr;
    if (!slot) continue;
    if (*slot) return Error(Errc::kNameInvalid, "repeated query parameter");
    *slot = *value;
  }
  if (!query.empty()) return Error(Errc::kNameInvalid, "too many query parameters");
  return q;
}

}  // namespace

std::string layout_target(const BlobRef& blob) {
  return std::string(kPrefix) + std::string(kBlobs) + blob.digest.str() + blob_query(blob);
}

std::string chunk_target(const BlobRef& blob, std::size_t k) {
  return std::string(kPrefix) + std::string(kBlobs) + blob.digest.str() +
         std::string(kChunksSegment) + std::to_string(k) + blob_query(blob);
}

std::string demand_target(std::uint64_t after) {
  return std::string(kPrefix) + std::string(kDemandPath) + "?after=" + std::to_string(after);
}

bool is_swarm_target(std::string_view target) {
  return target.substr(0, kPrefix.size()) == kPrefix;
}

Result<Request> parse_target(std::string_view target) {
  if (!is_swarm_target(target)) return Error(Errc::kNotFound, "not a swarm path");
  const auto qpos = target.find('?');
  std::string_view path =
      target.substr(kPrefix.size(), qpos == std::string_view::npos ? std::string_view::npos
                                                                   : qpos - kPrefix.size());
  auto query = parse_query(qpos == std::string_view::npos ? "" : target.substr(qpos + 1));
  if (!query) return query.error();
  Request r;
  if (path == kDemandPath) {
    r.kind = Request::Kind::kDemand;
    if (query->after) {
      const auto after = parse_number<std::uint64_t>(*query->after);
      if (!after) return Error(Errc::kNotFound, "bad demand sequence number");
      r.after = *after;
    }
    return r;
  }
  if (path.substr(0, kBlobs.size()) != kBlobs) return Error(Errc::kNotFound, "not a swarm path");
  path.remove_prefix(kBlobs.size());
  // "<digest>" or "<digest>/chunks/<k>": the digest contains no '/'.
  const auto slash = path.find('/');
  auto digest = Digest::parse(path.substr(0, slash));
  if (!digest) return Error(Errc::kDigestInvalid, "bad digest in swarm path");
  if (slash == std::string_view::npos) {
    r.kind = Request::Kind::kLayout;
  } else {
    const std::string_view rest = path.substr(slash);
    if (rest.substr(0, kChunksSegment.size()) != kChunksSegment) {
      return Error(Errc::kNotFound, "not a swarm path");
    }
    const auto k = parse_number<std::size_t>(rest.substr(kChunksSegment.size()));
    if (!k || *k >= kMaxChunks) return Error(Errc::kNotFound, "bad chunk index");
    r.kind = Request::Kind::kChunk;
    r.chunk = *k;
  }
  if (!query->repo || !is_valid_name(*query->repo)) {
    return Error(Errc::kNameInvalid, "missing or invalid repo");
  }
  std::string registry;
  if (query->ns && !query->ns->empty()) {
    if (!is_valid_registry_host(*query->ns)) return Error(Errc::kNameInvalid, "invalid ns");
    registry = std::move(*query->ns);
  }
  r.blob = BlobRef{std::move(registry), std::move(*query->repo), std::move(*digest)};
  return r;
}

std::string demand_body(const Demand& demand) {
  nlohmann::json blobs = nlohmann::json::array();
  for (const auto& b : demand.blobs) {
    blobs.push_back({{"digest", b.digest.str()}, {"ns", b.registry}, {"repo", b.repository}});
  }
  return nlohmann::json{{"next", demand.next}, {"blobs", std::move(blobs)}}.dump();
}

Result<Demand> parse_demand(std::string_view body) {
  const auto doc = nlohmann::json::parse(body, nullptr, false);
  if (!doc.is_object() || !doc.contains("next") || !doc["next"].is_number_unsigned() ||
      !doc.contains("blobs") || !doc["blobs"].is_array()) {
    return Error(Errc::kBadUpstreamResponse, "malformed demand feed");
  }
  Demand d;
  d.next = doc["next"].get<std::uint64_t>();
  for (const auto& b : doc["blobs"]) {
    if (d.blobs.size() >= kMaxDemandEntries) break;
    if (!b.is_object()) continue;
    const auto text = [&](const char* key) {
      return b.contains(key) && b[key].is_string() ? b[key].get<std::string>() : std::string();
    };
    auto digest = Digest::parse(text("digest"));
    const std::string repo = text("repo");
    const std::string ns = text("ns");
    if (!digest || !is_valid_name(repo) || (!ns.empty() && !is_valid_registry_host(ns))) continue;
    d.blobs.push_back(BlobRef{ns, repo, std::move(*digest)});
  }
  return d;
}

}  // namespace layerswarm::swarm_protocol
