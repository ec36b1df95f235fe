#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <thread>

#include "common/http_client.h"
#include "common/http_server.h"
#include "tests/support/http.h"

using namespace layerswarm;
using namespace std::chrono_literals;
using layerswarm::test::http_request;
using layerswarm::test::raw_exchange;

namespace {

class TestHandler final : public HttpHandler {
 public:
  Task<void> handle(HttpRequest request, ResponseWriter& out) override {
    ResponseHead head;
    head.headers.add("X-Accept-Count", std::to_string(request.headers.get_all("Accept").size()));
    if (request.target == "/throw") throw std::runtime_error("handler bug");
    if (request.target == "/none") co_return;  // wrote nothing: the server answers 500
    const std::string body = "hello";
    head.content_length = request.target == "/ok" ? body.size() : 10;
    const auto ec = co_await out.write_head(std::move(head));
    if (ec) co_return;
    co_await out.write_body(body);
    if (request.target == "/abort") out.abort();
    // "/short": declared 10 bytes, wrote 5: the server must not let it look complete.
  }
};

// An HttpServer with TestHandler on its own thread.
class ServerThread {
 public:
  ServerThread() : server_(ioc_, handler_) {
    auto bound = server_.listen("127.0.0.1:0", std::nullopt);
    REQUIRE(bound);
    address_ = *bound;
    server_.start();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~ServerThread() {
    asio::post(ioc_, [this] {
      server_.stop_accepting();
      ioc_.stop();
    });
    thread_.join();
  }
  const std::string& address() const { return address_; }

 private:
  asio::io_context ioc_;
  TestHandler handler_;
  HttpServer server_;
  std::string address_;
  std::thread thread_;
};

}  // namespace

TEST_CASE("server: plain responses, HEAD, repeated headers", "[unit][http]") {
  ServerThread s;
  auto r =
      http_request(s.address(), "GET", "/ok", {{"Accept", "a"}, {"Accept", "b"}, {"Accept", "c"}});
  CHECK(r.status == 200);
  CHECK(r.body == "hello");
  CHECK(r.complete);
  CHECK(r.header("x-accept-count") == "3");  // repeated header lines are not merged away
  CHECK(r.header("docker-distribution-api-version") == "registry/2.0");
  auto h = http_request(s.address(), "HEAD", "/ok");
  CHECK(h.status == 200);
  CHECK(h.header("content-length") == "5");
  CHECK(h.body.empty());
}

TEST_CASE("server: a TLS ClientHello on the plain port gets an HTTP 400", "[unit][http]") {
  ServerThread s;
  const std::string hello("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11);
  const std::string answer = raw_exchange(s.address(), hello);
  CHECK(answer.rfind("HTTP/1.0 400 Bad Request", 0) == 0);
}

TEST_CASE("server: malformed and oversized requests", "[unit][http]") {
  ServerThread s;
  CHECK(raw_exchange(s.address(), "NOT A REQUEST\r\n\r\n").rfind("HTTP/1.1 400", 0) == 0);
  const std::string big =
      "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n";
  CHECK(raw_exchange(s.address(), big).rfind("HTTP/1.1 431", 0) == 0);
}

TEST_CASE("server: keep-alive serves pipelined requests in order", "[unit][http]") {
  ServerThread s;
  const std::string two =
      "GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  const std::string answer = raw_exchange(s.address(), two);
  std::size_t count = 0;
  for (auto p = answer.find("HTTP/1.1 200"); p != std::string::npos;
       p = answer.find("HTTP/1.1 200", p + 1))
    ++count;
  CHECK(count == 2);
}

TEST_CASE("server: cut responses never look complete", "[unit][http]") {
  ServerThread s;
  for (const char* target : {"/abort", "/short"}) {
    INFO(target);
    auto r = http_request(s.address(), "GET", target);
    CHECK(r.status == 200);
    CHECK_FALSE(r.complete);
    CHECK(r.body.size() < 10);
  }
  CHECK(http_request(s.address(), "GET", "/throw").status == 500);
  CHECK(http_request(s.address(), "GET", "/none").status == 500);
  CHECK(http_request(s.address(), "GET", "/ok").status == 200);  // still serving
}

namespace {

Task<void> client_script(HttpClient* client, std::string address, std::vector<std::string>* bodies,
                         std::string* error) {
  for (int i = 0; i < 3; ++i) {
    ClientRequest req{"GET", *Url::parse("http://" + address + "/ok"), {}, std::nullopt};
    auto resp = co_await client->send(std::move(req));
    if (!resp) {
      *error = resp.error().what();
      co_return;
    }
    auto body = co_await (*resp)->read_all(1024);
    if (body) bodies->push_back(*body);
  }
  ClientRequest cut{"GET", *Url::parse("http://" + address + "/short"), {}, std::nullopt};
  auto resp = co_await client->send(std::move(cut));
  if (resp) {
    auto body = co_await (*resp)->read_all(1024);
    if (!body) bodies->push_back("cut:" + body.error().what());
  }
}

}  // namespace

TEST_CASE("client: reads bodies and reuses connections", "[unit][http]") {
  ServerThread s;
  asio::io_context ioc;
  HttpClient client(ioc.get_executor(), ClientOptions{});
  std::vector<std::string> bodies;
  std::string error;
  asio::co_spawn(ioc, client_script(&client, s.address(), &bodies, &error), asio::detached);
  ioc.run_for(10s);
  CHECK(error.empty());
  REQUIRE(bodies.size() == 4);
  CHECK(bodies[0] == "hello");
  CHECK(bodies[2] == "hello");
  CHECK(bodies[3].rfind("cut:", 0) == 0);  // a truncated body is an error, not a short read
}
