#include "common/auth_challenge.h"

#include <algorithm>
#include <cctype>

namespace layerswarm {
namespace {

bool is_tchar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  bool done() const { return i_ >= s_.size(); }
  char peek() const { return done() ? '\0' : s_[i_]; }
  std::size_t pos() const { return i_; }
  void seek(std::size_t p) { i_ = p; }
  void skip_ws() {
    while (!done() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  void skip_ws_and_commas() {
    while (!done() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == ',')) ++i_;
  }
  std::string_view token() {
    const std::size_t start = i_;
    while (!done() && is_tchar(s_[i_])) ++i_;
    return s_.substr(start, i_ - start);
  }
  // After the opening quote. nullopt when unterminated.
  std::optional<std::string> quoted() {
    std::string out;
    ++i_;
    while (!done()) {
      const char c = s_[i_++];
      if (c == '"') return out;
      if (c == '\\') {
        if (done()) return std::nullopt;
        out.push_back(s_[i_++]);
      } else {
        out.push_back(c);
      }
    }
    return std::nullopt;
  }

 private:
  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace

std::string Challenge::param(std::string_view key) const {
  auto it = params.find(std::string(key));
  return it == params.end() ? std::string() : it->second;
}

std::vector<Challenge> parse_challenges(std::string_view value) {
  std::vector<Challenge> out;
  Lexer lx(value);
  lx.skip_ws_and_commas();
  while (!lx.done()) {
    const std::string_view scheme = lx.token();
    if (scheme.empty()) return out;  // malformed
    Challenge ch;
    ch.scheme = lower(scheme);
    // auth-params: key = value, separated by commas; a token not followed by '=' starts the
    // next challenge.
    while (true) {
      lx.skip_ws_and_commas();
      if (lx.done()) break;
      const std::size_t mark = lx.pos();
      const std::string_view key = lx.token();
      if (key.empty()) {
        out.push_back(std::move(ch));
        return out;  // malformed
      }
      lx.skip_ws();
      if (lx.peek() != '=') {
        lx.seek(mark);  // the next challenge's scheme
        break;
      }
      while (lx.peek() == '=') {  // also consumes token68 padding
        lx.seek(lx.pos() + 1);
      }
      lx.skip_ws();
      std::string v;
      if (lx.peek() == '"') {
        auto q = lx.quoted();
        if (!q) {
          out.push_back(std::move(ch));
          return out;
        }
        v = std::move(*q);
      } else {
        v = std::string(lx.token());
      }
      ch.params.emplace(lower(key), std::move(v));
    }
    out.push_back(std::move(ch));
  }
  return out;
}

std::optional<Challenge> pick_challenge(const std::vector<std::string>& values) {
  std::optional<Challenge> basic;
  for (const auto& v : values) {
    for (auto& ch : parse_challenges(v)) {
      if (ch.scheme == "bearer" && !ch.param("realm").empty()) return std::move(ch);
      if (ch.scheme == "basic" && !basic) basic = std::move(ch);
    }
  }
  return basic;
}

std::optional<Scope> parse_scope(std::string_view scope) {
  const auto first = scope.find(':');
  const auto last = scope.rfind(':');
  if (first == std::string_view::npos || first == last) return std::nullopt;
  Scope s{std::string(scope.substr(0, first)),
          std::string(scope.substr(first + 1, last - first - 1)),
          std::string(scope.substr(last + 1))};
  if (s.type.empty() || s.resource.empty()) return std::nullopt;
  return s;
}

}  // namespace layerswarm
