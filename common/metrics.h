// Prometheus metrics (docs/operations.md "Metrics"): the families every node exports, kept
// with prometheus-cpp and rendered in the Prometheus text format by render(). One registry per
// process (each binary runs one node); values that live elsewhere (the cache's size, counters,
// the swarm's torrents) are sampled when scraped from functions their owners register.
//
// Threading: every method is thread-safe. Sampling functions run on the scraping thread (the
// io_context thread): they must be quick and must not block.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace layerswarm {

class Metrics {
 public:
  static Metrics& get();
  ~Metrics();

  // A client request, when its response ended. `kind`: manifest, blob, tags or other;
  // `head_seconds`: from the request to its response head (nullopt: no head was written).
  void request(std::string_view kind, int status, std::string_view source,
               std::optional<double> head_seconds, std::uint64_t body_bytes);
  // A request to an upstream registry (or the supernode) ended with `code` (an HTTP status, or
  // "error" when no answer came).
  void upstream_request(std::string_view registry, std::string_view code);
  // The upstream refused the node's own credentials (or its token service did).
  void upstream_auth_failure(std::string_view registry);
  // A blob download moved from one source to the next (a failure, not a policy decline).
  void source_fallback(std::string_view from, std::string_view to);

  // A value read at every scrape: a gauge, or a counter kept elsewhere (a name ending in
  // _total). `owner` removes its samples with forget().
  struct Sample {
    std::string name;
    std::string help;
    bool counter = false;
    std::vector<std::pair<std::string, std::string>> labels;
    std::function<double()> value;
  };
  void add_sampled(const void* owner, Sample sample);
  void forget(const void* owner);

  // Everything, in the Prometheus text exposition format (version 0.0.4).
  std::string render() const;
  // The sampled values without labels, by name (GET /api/v1/status).
  std::vector<std::pair<std::string, double>> snapshot() const;
  // The series of one counter family kept here (not sampled ones), e.g.
  // "layerswarm_served_bytes_total": each series' labels and value (GET /api/v1/status).
  struct Series {
    std::vector<std::pair<std::string, std::string>> labels;
    double value = 0;
  };
  std::vector<Series> counter_series(std::string_view family) const;

  struct Impl;

 private:
  Metrics();
  std::unique_ptr<Impl> impl_;
};

// The Content-Type of render()'s output.
inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace layerswarm
