// The registries table: how to reach each upstream registry that clients name (docker.io,
// ghcr.io, my.reg:5000): its URL, credentials (inline or from a docker config.json "auths"),
// CA file and TLS verification. Shared by the agent and (later) the supernode.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <map>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/url.h"

namespace layerswarm {

struct RegistryEntry {
  std::string name;  // canonical host as clients write it ("docker.io", "127.0.0.1:5000")
  Url url;           // where it is reached
  std::string username;
  std::string password;  // never logged
  std::string ca_file;
  bool insecure_skip_verify = false;
  // Clients must bring credentials the registry accepts for the repository, for cached content
  // too (docs/security.md "Client credentials").
  bool authorize_clients = false;
  // Set when `url` is a supernode mirroring this registry: every request names the registry
  // with ?ns=, and carries the cluster token as a bearer token (no challenge flow).
  std::string ns;
  std::string bearer_token;  // never logged

  bool has_credentials() const { return !username.empty(); }
};

class Registries {
 public:
  // The default table: docker.io -> https://registry-1.docker.io, anonymous.
  Registries();

  // Reads the "registries" object: {"host": {"url", "username", "password", "docker_config",
  // "ca_file", "insecure_skip_verify", "authorize_clients"}}. Errors: kConfigInvalid naming the
  // key.
  static Result<Registries> from_json(const nlohmann::json& registries);

  // "HOST=URL": sets the URL of HOST's entry, creating it. Errors: kConfigInvalid.
  Status set_url(std::string_view spec);

  // The entry for `host` (canonicalised). A host not in the table is reached over https with
  // the system CAs and no credentials.
  RegistryEntry lookup(std::string_view host) const;
  bool contains(std::string_view host) const;

  const std::map<std::string, RegistryEntry>& entries() const { return entries_; }

 private:
  std::map<std::string, RegistryEntry> entries_;
};

// Finds credentials for registry `name` in the "auths" of a docker config.json file.
// Errors: kConfigInvalid (unreadable file, malformed entry); absent credentials are not an
// error (returns an entry with empty username).
Status load_docker_config_auth(const std::string& file, RegistryEntry& entry);

}  // namespace layerswarm
