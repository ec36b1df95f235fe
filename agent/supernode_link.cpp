#include "agent/supernode_link.h"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <charconv>

namespace layerswarm::agent {
namespace {

namespace proto = swarm_protocol;

bool is_power_of_two(std::uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

ClientOptions client_options(const SupernodeLinkOptions& o) {
  ClientOptions c;
  c.ca_file = o.ca_file;
  c.connect_timeout = std::chrono::seconds(5);
  c.read_timeout = std::chrono::seconds(15);
  c.user_agent = "layerswarm-agent";
  return c;
}

}  // namespace

std::optional<std::uint64_t> header_number(const Headers& headers, std::string_view name) {
  const auto v = headers.get(name);
  if (!v || v->empty()) return std::nullopt;
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || end != v->data() + v->size()) return std::nullopt;
  return n;
}

Result<Layout> parse_layout(const Headers& h) {
  const auto size = header_number(h, proto::kBlobSize);
  const auto chunk = header_number(h, proto::kChunkSize);
  const auto chunks = header_number(h, proto::kChunks);
  const auto piece = header_number(h, proto::kPieceSize);
  const auto port = header_number(h, proto::kSeedPort);
  auto bad = [](const std::string& why) {
    return Error(Errc::kBadUpstreamResponse, "supernode blob layout: " + why);
  };
  if (!size || !chunk || !chunks || !piece || !port) return bad("headers missing");
  auto good_piece = [](std::uint64_t p) {
    return is_power_of_two(p) && p >= (16 << 10) && p <= (16 << 20);
  };
  if (!good_piece(*piece)) return bad("bad piece size");
  // Absent (a supernode before it existed): chunk 0 has the others' piece size.
  std::uint64_t first_piece = *piece;
  if (h.get(proto::kFirstPieceSize)) {
    const auto first = header_number(h, proto::kFirstPieceSize);
    if (!first || !good_piece(*first) || *first > *piece) return bad("bad first piece size");
    first_piece = *first;
  }
  if (*chunk < *piece || *chunk % *piece != 0) return bad("bad chunk size");
  const std::uint64_t expected = *size == 0 ? 1 : (*size + *chunk - 1) / *chunk;
  if (*chunks != expected || *chunks > proto::kMaxChunks) return bad("chunk count does not match");
  if (*port == 0 || *port > 65535) return bad("bad seed port");
  Layout l;
  l.size = *size;
  l.chunk_size = *chunk;
  l.piece_size = static_cast<int>(*piece);
  l.first_piece_size = static_cast<int>(first_piece);
  l.chunks = static_cast<std::size_t>(*chunks);
  l.seed_port = static_cast<std::uint16_t>(*port);
  return l;
}

SupernodeLink::SupernodeLink(asio::any_io_executor executor, SupernodeLinkOptions options)
    : executor_(executor),
      options_(std::move(options)),
      client_(executor, client_options(options_)) {}

Task<Result<Answer>> SupernodeLink::get(std::string target, std::size_t limit,
                                        std::optional<std::chrono::milliseconds> timeout) {
  ClientRequest request;
  request.url = options_.supernode;
  request.url.target = std::move(target);
  request.timeout = timeout;
  co_return co_await send(std::move(request), limit);
}

Task<Result<Answer>> SupernodeLink::post(std::string target, Headers headers, std::size_t limit) {
  ClientRequest request;
  request.method = "POST";
  request.url = options_.supernode;
  request.url.target = std::move(target);
  request.headers = std::move(headers);
  co_return co_await send(std::move(request), limit);
}

Task<Result<Answer>> SupernodeLink::send(ClientRequest request, std::size_t limit) {
  request.headers.add("Authorization", "Bearer " + options_.token);
  auto response = co_await client_.send(std::move(request));
  if (!response) co_return response.error();
  ClientResponse& r = **response;
  auto body = co_await r.read_all(limit);
  if (!body) co_return body.error();
  Answer a;
  a.status = r.status;
  a.headers = std::move(r.headers);
  a.body = std::move(*body);
  co_return a;
}

std::vector<std::string> SupernodeLink::trackers() const {
  std::string url = options_.supernode.origin() + "/announce";
  std::string query;
  if (!member_) query = "token=" + percent_encode(options_.token);
  if (!options_.zone.empty())
    query += (query.empty() ? "" : "&") + ("zone=" + percent_encode(options_.zone));
  if (!query.empty()) url += "?" + query;
  return {url};
}

Task<Result<std::string>> SupernodeLink::ip(SteadyTime deadline) {
  const std::string& host = options_.supernode.host;
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  if (!ec) co_return host;
  auto resolver = std::make_shared<asio::ip::tcp::resolver>(executor_);
  asio::steady_timer guard(executor_, deadline);
  guard.async_wait([resolver](boost::system::error_code e) {
    if (!e) resolver->cancel();
  });
  const auto results =
      co_await resolver->async_resolve(host, "", asio::redirect_error(asio::use_awaitable, ec));
  guard.cancel();
  if (ec || results.empty()) {
    co_return Error(Errc::kUpstreamUnavailable, "cannot resolve " + host + ": " + ec.message());
  }
  co_return results.begin()->endpoint().address().to_string();
}

}  // namespace layerswarm::agent
