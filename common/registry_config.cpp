#include "common/registry_config.h"

#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "common/json_config.h"
#include "common/reference.h"

namespace layerswarm {

using nlohmann::json;

namespace {

// Callers pass names that is_valid_registry_host() accepted, which Url::parse accepts too; a
// name it would not parse keeps an empty URL (requests to it fail) rather than throwing.
RegistryEntry default_entry(const std::string& name) {
  RegistryEntry e;
  e.name = name;
  auto url = Url::parse(name == "docker.io" ? "https://registry-1.docker.io" : "https://" + name);
  if (url) e.url = std::move(*url);
  return e;
}

// "https://index.docker.io/v1/" -> "docker.io"; "ghcr.io" -> "ghcr.io".
std::string auths_key_host(std::string key) {
  if (auto sep = key.find("://"); sep != std::string::npos) key = key.substr(sep + 3);
  if (auto slash = key.find('/'); slash != std::string::npos) key = key.substr(0, slash);
  return canonical_registry(key);
}

}  // namespace

Registries::Registries() { entries_.emplace("docker.io", default_entry("docker.io")); }

Result<Registries> Registries::from_json(const json& registries) {
  Registries out;
  if (registries.is_null()) return out;
  if (!registries.is_object()) return Error(Errc::kConfigInvalid, "registries: expected an object");
  for (const auto& [host, spec] : registries.items()) {
    const std::string path = "registries." + host;
    if (!is_valid_registry_host(canonical_registry(host))) {
      return Error(Errc::kConfigInvalid, path + ": not a registry host");
    }
    if (auto s = check_keys(spec,
                            {"url", "username", "password", "docker_config", "ca_file",
                             "insecure_skip_verify", "authorize_clients"},
                            path);
        !s) {
      return s.error();
    }
    RegistryEntry e = default_entry(canonical_registry(host));
    std::string url, docker_config;
    Status s = read_string(spec, "url", path, url);
    if (s) s = read_string(spec, "username", path, e.username);
    if (s) s = read_string(spec, "password", path, e.password);
    if (s) s = read_string(spec, "docker_config", path, docker_config);
    if (s) s = read_string(spec, "ca_file", path, e.ca_file);
    if (s) s = read_bool(spec, "insecure_skip_verify", path, e.insecure_skip_verify);
    if (s) s = read_bool(spec, "authorize_clients", path, e.authorize_clients);
    if (!s) return s.error();
    if (!url.empty()) {
      auto u = Url::parse(url);
      if (!u) return Error(Errc::kConfigInvalid, path + ".url: " + u.error().what());
      e.url = std::move(*u);
    }
    if (!docker_config.empty()) {
      if (e.has_credentials()) {
        return Error(Errc::kConfigInvalid,
                     path + ": give username/password or docker_config, not both");
      }
      if (auto st = load_docker_config_auth(docker_config, e); !st) return st.error();
    }
    if (e.password.empty() != e.username.empty()) {
      return Error(Errc::kConfigInvalid, path + ": username and password go together");
    }
    out.entries_[e.name] = std::move(e);
  }
  return out;
}

Status Registries::set_url(std::string_view spec) {
  const auto eq = spec.find('=');
  if (eq == std::string_view::npos) {
    return Error(Errc::kConfigInvalid,
                 "--registry expects HOST=URL, got '" + std::string(spec) + "'");
  }
  const std::string host = canonical_registry(spec.substr(0, eq));
  if (!is_valid_registry_host(host)) {
    return Error(Errc::kConfigInvalid, "--registry: '" + host + "' is not a registry host");
  }
  auto url = Url::parse(spec.substr(eq + 1));
  if (!url) return Error(Errc::kConfigInvalid, "--registry " + host + ": " + url.error().what());
  auto it = entries_.find(host);
  if (it == entries_.end()) it = entries_.emplace(host, default_entry(host)).first;
  it->second.url = std::move(*url);
  return {};
}

RegistryEntry Registries::lookup(std::string_view host) const {
  const std::string name = canonical_registry(host);
  auto it = entries_.find(name);
  return it != entries_.end() ? it->second : default_entry(name);
}

bool Registries::contains(std::string_view host) const {
  return entries_.count(canonical_registry(host)) > 0;
}

Status load_docker_config_auth(const std::string& file, RegistryEntry& entry) {
  auto doc = load_json_file(file);
  if (!doc) return doc.error();
  const json& auths = (*doc).contains("auths") ? (*doc)["auths"] : json::object();
  if (!auths.is_object()) return Error(Errc::kConfigInvalid, file + ": \"auths\" is not an object");
  for (const auto& [key, value] : auths.items()) {
    if (auths_key_host(key) != entry.name || !value.is_object()) continue;
    if (value.contains("auth") && value["auth"].is_string()) {
      auto credentials = decode_basic_credentials(value["auth"].get<std::string>());
      if (!credentials) {
        return Error(Errc::kConfigInvalid, file + ": malformed \"auth\" for " + key);
      }
      entry.username = std::move(credentials->username);
      entry.password = std::move(credentials->password);
      return {};
    }
    if (value.contains("username") && value.contains("password") && value["username"].is_string() &&
        value["password"].is_string()) {
      entry.username = value["username"].get<std::string>();
      entry.password = value["password"].get<std::string>();
      return {};
    }
  }
  return {};
}

}  // namespace layerswarm
