// Helpers for strict JSON configuration files (docs/configuration.md): unknown keys are errors,
// every value is type-checked, and each error names the key path. Only nlohmann's forward header is
// included here.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/size.h"

namespace layerswarm {

// Errors: kConfigInvalid when `obj` is not an object or holds a key outside `allowed`.
Status check_keys(const nlohmann::json& obj, std::initializer_list<std::string_view> allowed,
                  const std::string& path);

// Each reads obj[key] into `out` when the key is present; a wrong type is kConfigInvalid.
Status read_string(const nlohmann::json& obj, const char* key, const std::string& path,
                   std::string& out);
Status read_bool(const nlohmann::json& obj, const char* key, const std::string& path, bool& out);
Status read_uint(const nlohmann::json& obj, const char* key, const std::string& path,
                 std::uint64_t& out);
// A duration string ("30s") or a number of seconds.
// A size: a number of bytes or a string parse_size() accepts ("20GiB", "85%").
Status read_size(const nlohmann::json& obj, const char* key, const std::string& path,
                 std::optional<SizeSpec>& out);
Status read_duration(const nlohmann::json& obj, const char* key, const std::string& path,
                     std::chrono::milliseconds& out);

// Reads a secret (the cluster token) from a file, surrounding whitespace trimmed.
// Errors: kConfigInvalid (unreadable, empty, whitespace inside).
Result<std::string> read_secret_file(const std::string& file);
// A whole text file (PEM). Errors: kConfigInvalid.
Result<std::string> read_text_file(const std::string& file);

// Reads and parses a JSON file. Errors: kConfigInvalid naming the file and the parse error.
Result<nlohmann::json> load_json_file(const std::string& file);
// Writes a JSON document a program keeps for itself (run-time pins, copy rules): to
// `file`.new, then renamed over `file`, so a crash leaves the old or the new one.
// Errors: kStorage.
Status save_json_file(const std::string& file, const nlohmann::json& doc);

// A binary's configuration document: `file` parsed, or an empty object when `file` is "".
// Errors: those of load_json_file.
Result<nlohmann::json> load_config_document(const std::string& file);
// Prefixes a configuration error with the file it came from (when there is one).
Error config_file_error(const std::string& file, const Error& error);
// Applies a --p2p-port flag (-1: not given) to an "ip:port" listen address.
// Errors: kConfigInvalid.
Status apply_port_flag(std::string& listen, int port);

}  // namespace layerswarm
