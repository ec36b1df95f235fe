// layerswarm export (docs/operations.md "Export"): an image from a running node's cache (its
// registry API; what it lacks it fetches like any pull) into a `docker load` archive or an
// OCI image layout directory. Every manifest and blob is checked against its digest before
// the output is complete; a mismatch removes the output.
#pragma once

#include <string>

#include "common/url.h"

namespace layerswarm::cli {

struct ExportOptions {
  Url server;
  std::string token;     // for a supernode
  std::string image;     // reference as people write it
  std::string output;    // docker: a tar file; oci: a directory (new or empty)
  std::string format;    // "docker" or "oci"
  std::string platform;  // os/arch[/variant] chosen from an index (default linux/amd64)
};

// 0 done, 1 the server failed or content did not verify, 2 bad usage. Messages on stderr.
int run_export(const ExportOptions& options);

}  // namespace layerswarm::cli
