#pragma once
// The options that tune the analysis itself (timeouts, the memory caps, the pattern
// thresholds), the same for `analyze` and `live`.
#include <cstdint>

#include <CLI/CLI.hpp>

#include "diagnose/analyzer.hpp"

namespace rstscope::cli {

struct AnalysisArguments {
  double idle_timeout_seconds = 900;
  double horizon_seconds = 3;
  uint64_t max_connections = 1u << 20;
  uint64_t max_waiting_resets = 1u << 16;
  uint64_t rst_flood_min = 0, syn_flood_min = 0, backscatter_min = 0, port_scan_min = 0,
           blind_reset_min = 0;
  double pattern_window_seconds = 0;

  AnalyzerOptions options() const;
};

// Registers the options on `command`, writing into `arguments` (which must outlive it).
void add_analysis_options(CLI::App* command, AnalysisArguments& arguments);

}  // namespace rstscope::cli
