// A small HTTP/1.1 client for tests, independent of the agent's own client: one connection
// per request, a whole-request timeout, and a record of whether the body arrived complete
// (a truncated body is what a client sees when the agent aborts a response).
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace layerswarm::test {

struct HttpResult {
  int status = 0;                              // 0: no response head
  std::map<std::string, std::string> headers;  // lowercased names, last value wins
  std::string body;
  bool complete = false;  // the whole declared body arrived
  std::string error;

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

HttpResult http_request(const std::string& host_port, const std::string& method,
                        const std::string& target, const HeaderList& headers = {},
                        const std::string& body = {},
                        std::chrono::milliseconds timeout = std::chrono::seconds(60));

inline HttpResult http_get(const std::string& host_port, const std::string& target,
                           const HeaderList& headers = {}) {
  return http_request(host_port, "GET", target, headers);
}

// Sends raw bytes and returns whatever arrives until the peer closes or `timeout`.
std::string raw_exchange(const std::string& host_port, const std::string& bytes,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));

std::string sha256_hex(const std::string& data);

}  // namespace layerswarm::test
