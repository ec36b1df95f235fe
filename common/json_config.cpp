#include "common/json_config.h"

#include <cstdio>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/duration.h"
#include "common/url.h"

namespace layerswarm {

using nlohmann::json;

Status check_keys(const json& obj, std::initializer_list<std::string_view> allowed,
                  const std::string& path) {
  if (!obj.is_object()) return Error(Errc::kConfigInvalid, path + ": expected an object");
  for (const auto& [key, value] : obj.items()) {
    bool known = false;
    for (auto a : allowed) known = known || a == key;
    if (!known) return Error(Errc::kConfigInvalid, path + ": unknown key '" + key + "'");
  }
  return {};
}

Status read_string(const json& obj, const char* key, const std::string& path, std::string& out) {
  auto it = obj.find(key);
  if (it == obj.end()) return {};
  if (!it->is_string())
    return Error(Errc::kConfigInvalid, path + "." + key + ": expected a string");
  out = it->get<std::string>();
  return {};
}

Status read_bool(const json& obj, const char* key, const std::string& path, bool& out) {
  auto it = obj.find(key);
  if (it == obj.end()) return {};
  if (!it->is_boolean())
    return Error(Errc::kConfigInvalid, path + "." + key + ": expected true or false");
  out = it->get<bool>();
  return {};
}

Status read_uint(const json& obj, const char* key, const std::string& path, std::uint64_t& out) {
  auto it = obj.find(key);
  if (it == obj.end()) return {};
  if (!it->is_number_unsigned()) {
    return Error(Errc::kConfigInvalid, path + "." + key + ": expected a non-negative integer");
  }
  out = it->get<std::uint64_t>();
  return {};
}

Status read_size(const json& obj, const char* key, const std::string& path,
                 std::optional<SizeSpec>& out) {
  auto it = obj.find(key);
  if (it == obj.end()) return {};
  std::string text;
  if (it->is_number_unsigned()) {
    text = std::to_string(it->get<std::uint64_t>());
  } else if (it->is_string()) {
    text = it->get<std::string>();
  } else {
    return Error(Errc::kConfigInvalid, path + "." + key + ": expected a size like \"20GiB\"");
  }
  auto size = parse_size(text);
  if (!size) return Error(Errc::kConfigInvalid, path + "." + key + ": " + size.error().what());
  out = *size;
  return {};
}

Status read_duration(const json& obj, const char* key, const std::string& path,
                     std::chrono::milliseconds& out) {
  auto it = obj.find(key);
  if (it == obj.end()) return {};
  std::string text;
  if (it->is_number_unsigned()) {
    // A bare number is seconds; parse_duration owns the range check.
    text = std::to_string(it->get<std::uint64_t>()) + "s";
  } else if (it->is_string()) {
    text = it->get<std::string>();
  } else {
    return Error(Errc::kConfigInvalid, path + "." + key + ": expected a duration like \"30s\"");
  }
  auto d = parse_duration(text);
  if (!d) return Error(Errc::kConfigInvalid, path + "." + key + ": " + d.error().what());
  out = *d;
  return {};
}

Result<json> load_json_file(const std::string& file) {
  std::ifstream in(file);
  if (!in) return Error(Errc::kConfigInvalid, "cannot read " + file);
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) return Error(Errc::kConfigInvalid, file + ": not valid JSON");
  return j;
}

Result<json> load_config_document(const std::string& file) {
  if (file.empty()) return json::object();
  return load_json_file(file);
}

Error config_file_error(const std::string& file, const Error& error) {
  return Error(Errc::kConfigInvalid, (file.empty() ? "" : file + ": ") + error.what());
}

Status apply_port_flag(std::string& listen, int port) {
  if (port < 0) return {};
  auto replaced = with_port(listen, port);
  if (!replaced) return Error(Errc::kConfigInvalid, "--p2p-port: " + replaced.error().what());
  listen = *replaced;
  return {};
}

Result<std::string> read_secret_file(const std::string& file) {
  std::ifstream in(file);
  if (!in) return Error(Errc::kConfigInvalid, "cannot read secret file " + file);
  std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto first = token.find_first_not_of(" \t\r\n");
  const auto last = token.find_last_not_of(" \t\r\n");
  if (first == std::string::npos) {
    return Error(Errc::kConfigInvalid, "secret file " + file + " is empty");
  }
  token = token.substr(first, last - first + 1);
  if (token.find_first_of(" \t\r\n") != std::string::npos) {
    return Error(Errc::kConfigInvalid, "secret file " + file + ": whitespace inside the secret");
  }
  return token;
}

Status save_json_file(const std::string& file, const nlohmann::json& doc) {
  const std::string tmp = file + ".new";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << doc.dump(2) << "\n";
    out.flush();
    if (!out) return Error(Errc::kStorage, "cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), file.c_str()) != 0) {
    return Error(Errc::kStorage, "cannot replace " + file);
  }
  return {};
}

Result<std::string> read_text_file(const std::string& file) {
  std::ifstream in(file);
  if (!in) return Error(Errc::kConfigInvalid, "cannot read " + file);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.empty()) return Error(Errc::kConfigInvalid, file + " is empty");
  return text;
}

}  // namespace layerswarm
