// HTTP value types shared by the server and client shells. Deliberately free of Beast so
// handler code does not pay for Beast's headers (LIBS.md: build time).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace layerswarm {

bool iequals(std::string_view a, std::string_view b);

// An ordered multimap of header fields, names compared case-insensitively. Repeated fields
// (several Accept or WWW-Authenticate lines) are kept apart: never merged.
class Headers {
 public:
  void add(std::string name, std::string value) {
    fields_.emplace_back(std::move(name), std::move(value));
  }
  void add(std::string_view name, std::string value) { add(std::string(name), std::move(value)); }
  void add(const char* name, std::string value) { add(std::string(name), std::move(value)); }
  // Replaces every field called `name` with one.
  void set(std::string_view name, std::string value);
  void remove(std::string_view name);
  // The first field called `name`.
  std::optional<std::string_view> get(std::string_view name) const;
  std::vector<std::string> get_all(std::string_view name) const;
  bool has(std::string_view name) const { return get(name).has_value(); }

  auto begin() const { return fields_.begin(); }
  auto end() const { return fields_.end(); }
  std::size_t size() const { return fields_.size(); }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

struct HttpRequest {
  std::string method;  // "GET", "HEAD", ... as sent
  std::string target;  // origin-form: path and query
  Headers headers;
  std::string remote;  // "ip:port" of the peer, for logs
  // The common name of the client certificate the TLS handshake verified (TlsFiles::
  // client_ca_file); empty without one.
  std::string client_identity;
  bool secure = false;  // arrived over TLS
  bool is_head() const { return method == "HEAD"; }
};

// What a handler sends before the body. The server adds Content-Length (from
// `content_length`), Connection and Docker-Distribution-API-Version.
struct ResponseHead {
  int status = 200;
  Headers headers;
  std::uint64_t content_length = 0;
  bool close = false;  // end the connection after this response (Connection: close)
};

std::string_view reason_phrase(int status);

}  // namespace layerswarm
