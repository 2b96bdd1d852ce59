#pragma once
// `rstscope host`: streams the resets this host sends or accepts, with the kernel's reason, and
// optionally joins them with the analyzer's verdicts on a live capture.
#include <cstdio>
#include <string>

namespace rstscope::host {

struct HostOptions {
  double duration_seconds = 0;  // 0: until interrupted
  bool json = false;
  std::string capture_interface;  // empty: kernel records only
};

// Returns the exit status: 0 on success, 2 when tracing or capture cannot start.
int run_host(const HostOptions& options, std::FILE* out, std::FILE* err);

}  // namespace rstscope::host
