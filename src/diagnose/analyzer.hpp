#pragma once
// The analysis pipeline after decode: track/ follows connections, diagnose/ judges each RST.
#include <cstdint>
#include <memory>

#include "core/finding.hpp"
#include "core/stats.hpp"
#include "core/types.hpp"

namespace rstscope {

// Thresholds for the findings that span many connections. All can be set on the command line.
struct PatternThresholds {
  uint64_t rst_flood_min = 200;           // RSTs toward one host within the window
  double rst_flood_rate = 50.0;           // per second, and most matching no connection
  uint64_t syn_flood_min = 100;           // half-open connections on one service
  uint64_t backscatter_min = 20;          // unsolicited SYN/ACKs or RSTs toward one address
  uint64_t port_scan_min = 15;            // refused ports or hosts from one source
  uint64_t blind_reset_min = 8;           // RSTs walking through one connection's window
  int64_t window_ns = 60'000'000'000;     // the time window the counts above are taken over
};

struct AnalyzerOptions {
  int64_t idle_timeout_ns = 900'000'000'000;  // evict connections silent this long
  int64_t horizon_ns = 3'000'000'000;         // how long a RST waits for what comes after it
  uint64_t max_connections = 1u << 20;        // memory cap: oldest idle evicted beyond this
  PatternThresholds thresholds;
};

// Receives verdicts as soon as they are final. Called per RST, never per packet.
class FindingSink {
 public:
  virtual ~FindingSink() = default;
  virtual void reset(const Finding& finding) = 0;
  virtual void connection(const ConnectionSummary& summary) = 0;
  virtual void pattern(const PatternFinding& pattern) = 0;
};

class Analyzer {
 public:
  Analyzer(const AnalyzerOptions& options, FindingSink& sink);
  ~Analyzer();
  Analyzer(const Analyzer&) = delete;
  Analyzer& operator=(const Analyzer&) = delete;

  // Feeds one decoded segment, in capture order.
  void add(const Segment& segment);
  // Feeds a batch of segments in order: the same as add() on each, with the caches warmed ahead.
  void add_batch(const Segment* segments, size_t count);
  // Moves the clock without a segment (live capture idles): judges RSTs whose horizon passed.
  void advance(int64_t now_ns);
  // Judges everything still open and reports cross-connection patterns. Call once at the end.
  void finish();

  const TrackStats& track_stats() const;
  const DiagnoseStats& diagnose_stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rstscope
