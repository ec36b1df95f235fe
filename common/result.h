// Result<T>: a value or an Error (an error code plus a human message), returned by every
// synchronous operation that can fail (STYLE.md 8). Result<void> carries only the error.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "common/error.h"

namespace layerswarm {

struct Error {
  boost::system::error_code code;
  std::string message;  // for logs and the OCI "message"; never holds credentials

  Error() = default;
  Error(boost::system::error_code c, std::string m = {}) : code(c), message(std::move(m)) {}
  Error(Errc c, std::string m = {}) : code(make_error_code(c)), message(std::move(m)) {}

  // The message, or the code's own text when none was given.
  std::string what() const { return message.empty() ? code.message() : message; }
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}
  Result(Errc e, std::string message = {}) : v_(Error(e, std::move(message))) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}
  Result(Errc e, std::string message = {}) : error_(Error(e, std::move(message))) {}

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const {
    assert(!ok());
    return *error_;
  }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

}  // namespace layerswarm
