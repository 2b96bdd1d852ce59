#include "cli/analysis_options.hpp"

#include <cmath>

namespace rstscope::cli {
namespace {

int64_t seconds_to_ns(double seconds) { return static_cast<int64_t>(std::llround(seconds * 1e9)); }

}  // namespace

AnalyzerOptions AnalysisArguments::options() const {
  AnalyzerOptions options;
  options.idle_timeout_ns = seconds_to_ns(idle_timeout_seconds);
  options.horizon_ns = seconds_to_ns(horizon_seconds);
  options.max_connections = max_connections;
  options.max_waiting_resets = max_waiting_resets;
  PatternThresholds& thresholds = options.thresholds;
  if (rst_flood_min != 0) thresholds.rst_flood_min = rst_flood_min;
  if (syn_flood_min != 0) thresholds.syn_flood_min = syn_flood_min;
  if (backscatter_min != 0) thresholds.backscatter_min = backscatter_min;
  if (port_scan_min != 0) thresholds.port_scan_min = port_scan_min;
  if (blind_reset_min != 0) thresholds.blind_reset_min = blind_reset_min;
  if (pattern_window_seconds > 0) thresholds.window_ns = seconds_to_ns(pattern_window_seconds);
  return options;
}

void add_analysis_options(CLI::App* command, AnalysisArguments& arguments) {
  command->add_option("--idle-timeout", arguments.idle_timeout_seconds,
                      "Forget connections silent this many seconds (at most 2000000, 23 days)")
      ->check(CLI::PositiveNumber & CLI::Range(0.0, 2e6))
      ->capture_default_str();
  command->add_option("--horizon", arguments.horizon_seconds,
                      "Seconds of capture a reset waits for what follows it before judgement "
                      "(at most 2000000)")
      ->check(CLI::Range(0.0, 2e6))
      ->capture_default_str();
  command->add_option("--max-connections", arguments.max_connections,
                      "Memory cap: connections tracked at once")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_option("--max-waiting-resets", arguments.max_waiting_resets,
                      "Memory cap: resets waiting for their horizon at once (beyond it the oldest "
                      "are judged early)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_option("--rst-flood-min", arguments.rst_flood_min,
                      "RSTs toward one host within the window that make a flood")
      ->check(CLI::PositiveNumber);
  command->add_option("--syn-flood-min", arguments.syn_flood_min,
                      "Half-open connections on one service that make a SYN flood")
      ->check(CLI::PositiveNumber);
  command->add_option("--backscatter-min", arguments.backscatter_min,
                      "Unsolicited SYN/ACKs or RSTs toward one address that make backscatter")
      ->check(CLI::PositiveNumber);
  command->add_option("--port-scan-min", arguments.port_scan_min,
                      "Refused ports or hosts from one source that make a scan")
      ->check(CLI::PositiveNumber);
  command->add_option("--blind-reset-min", arguments.blind_reset_min,
                      "RSTs stepping through one connection's window that make a blind attack")
      ->check(CLI::PositiveNumber);
  command->add_option("--pattern-window", arguments.pattern_window_seconds,
                      "Seconds over which the pattern counts are taken")
      ->check(CLI::PositiveNumber);
}

}  // namespace rstscope::cli
