#include "common/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <vector>

namespace layerswarm {

namespace {

// Time to response headers: a cache hit answers in well under a millisecond, a cold blob
// waits for the upstream (the alert threshold is 500 ms).
const prometheus::Histogram::BucketBoundaries kHeadBuckets = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

std::string status_class(int status) { return status <= 0 ? "none" : std::to_string(status); }

}  // namespace

struct Metrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Counter>& requests =
      prometheus::BuildCounter()
          .Name("layerswarm_requests_total")
          .Help("Client requests by kind (manifest, blob, tags, other), status and source")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& duration =
      prometheus::BuildHistogram()
          .Name("layerswarm_request_duration_seconds")
          .Help("Seconds from a client request to its response headers, by kind")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& served =
      prometheus::BuildCounter()
          .Name("layerswarm_served_bytes_total")
          .Help("Body bytes sent to clients, by source (cache, upstream, supernode, swarm, ...)")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& upstream =
      prometheus::BuildCounter()
          .Name("layerswarm_upstream_requests_total")
          .Help("Requests to upstream registries (and the supernode) by registry and final code")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& auth_failures =
      prometheus::BuildCounter()
          .Name("layerswarm_upstream_auth_failures_total")
          .Help("Upstream requests refused for the node's credentials, by registry")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& fallbacks =
      prometheus::BuildCounter()
          .Name("layerswarm_source_fallbacks_total")
          .Help("Blob downloads that moved from a failing source to the next, by source")
          .Register(*registry);

  mutable std::mutex mu;
  std::multimap<const void*, Sample> sampled;

  // The series a request updates, found once per (kind, status, source): Family::Add builds a
  // label map and hashes it on every call, a measurable share of a warm manifest request.
  // prometheus-cpp keeps a series at its address until it is removed, which nothing here does.
  struct RequestSeries {
    std::string kind;
    int status = 0;
    std::string source;
    prometheus::Counter* requests = nullptr;
    prometheus::Histogram* duration = nullptr;
    prometheus::Counter* served = nullptr;
  };
  std::mutex series_mu;
  std::vector<RequestSeries> series;  // few: kinds x statuses x sources seen

  RequestSeries& series_of(std::string_view kind, int status, std::string_view source) {
    for (auto& e : series) {
      if (e.status == status && e.kind == kind && e.source == source) return e;
    }
    const std::string k(kind), src(source);
    RequestSeries e{k, status, src};
    e.requests = &requests.Add({{"kind", k}, {"status", status_class(status)}, {"source", src}});
    e.duration = &duration.Add({{"kind", k}}, kHeadBuckets);
    e.served = &served.Add({{"source", src}});
    if (series.size() >= 4096) series.clear();  // bounded, whatever the statuses seen
    series.push_back(std::move(e));
    return series.back();
  }
};

Metrics& Metrics::get() {
  static Metrics metrics;
  return metrics;
}

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {}
Metrics::~Metrics() = default;

void Metrics::request(std::string_view kind, int status, std::string_view source,
                      std::optional<double> head_seconds, std::uint64_t body_bytes) {
  std::lock_guard lock(impl_->series_mu);
  auto& series = impl_->series_of(kind, status, source.empty() ? "none" : source);
  series.requests->Increment();
  if (head_seconds) series.duration->Observe(*head_seconds);
  if (body_bytes > 0) series.served->Increment(static_cast<double>(body_bytes));
}

void Metrics::upstream_request(std::string_view registry, std::string_view code) {
  impl_->upstream.Add({{"registry", std::string(registry)}, {"code", std::string(code)}})
      .Increment();
}

void Metrics::upstream_auth_failure(std::string_view registry) {
  impl_->auth_failures.Add({{"registry", std::string(registry)}}).Increment();
}

void Metrics::source_fallback(std::string_view from, std::string_view to) {
  impl_->fallbacks.Add({{"from", std::string(from)}, {"to", std::string(to)}}).Increment();
}

void Metrics::add_sampled(const void* owner, Sample sample) {
  std::lock_guard lock(impl_->mu);
  impl_->sampled.emplace(owner, std::move(sample));
}

void Metrics::forget(const void* owner) {
  std::lock_guard lock(impl_->mu);
  impl_->sampled.erase(owner);
}

std::vector<std::pair<std::string, double>> Metrics::snapshot() const {
  std::vector<std::pair<std::string, double>> out;
  std::lock_guard lock(impl_->mu);
  for (const auto& [owner, s] : impl_->sampled) {
    (void)owner;
    if (s.labels.empty()) out.emplace_back(s.name, s.value ? s.value() : 0);
  }
  return out;
}

std::vector<Metrics::Series> Metrics::counter_series(std::string_view family) const {
  std::vector<Series> out;
  for (const auto& f : impl_->registry->Collect()) {
    if (f.name != family) continue;
    for (const auto& m : f.metric) {
      Series series;
      for (const auto& l : m.label) series.labels.emplace_back(l.name, l.value);
      series.value = m.counter.value;
      out.push_back(std::move(series));
    }
  }
  return out;
}

std::string Metrics::render() const {
  std::vector<prometheus::MetricFamily> families = impl_->registry->Collect();
  {
    std::lock_guard lock(impl_->mu);
    // One family per name (several owners or label sets may share one).
    std::map<std::string, prometheus::MetricFamily> by_name;
    for (const auto& [owner, s] : impl_->sampled) {
      (void)owner;
      auto& family = by_name[s.name];
      family.name = s.name;
      family.help = s.help;
      family.type = s.counter ? prometheus::MetricType::Counter : prometheus::MetricType::Gauge;
      prometheus::ClientMetric metric;
      for (const auto& [k, v] : s.labels) metric.label.push_back({k, v});
      const double value = s.value ? s.value() : 0;
      if (s.counter) {
        metric.counter.value = value;
      } else {
        metric.gauge.value = value;
      }
      family.metric.push_back(std::move(metric));
    }
    for (auto& [name, family] : by_name) families.push_back(std::move(family));
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace layerswarm
