#pragma once
// The analysis pipeline after decode: track/ follows connections, diagnose/ judges each RST.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/finding.hpp"
#include "core/fetch_ahead.hpp"
#include "core/stats.hpp"
#include "core/types.hpp"
#include "track/tracker.hpp"

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
  uint64_t max_waiting_resets = 1u << 16;     // RSTs waiting for their horizon: the oldest judged early beyond this
  CompactionOptions compaction;
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

// Time-driven work (idle expiry, judging RSTs whose horizon passed) runs at ticks: before a
// segment when this many came since the last tick or the capture's clock moved a second since,
// and whenever the clock is moved without a segment. Ticks depend on the segments alone, so any
// number of threads ticks at the same points of the capture and gives the same output.
class TickSchedule {
 public:
  static constexpr uint64_t segments = 8192;
  static constexpr int64_t interval_ns = 1'000'000'000;
  // Whether a tick comes before the next segment, whose clock is `clock_ns`.
  bool due(int64_t clock_ns) {
    if (!started_) {
      started_ = true;
      last_clock_ns_ = clock_ns;
    }
    return since_ == segments || clock_ns - last_clock_ns_ >= interval_ns;
  }
  void ticked(int64_t clock_ns) {
    since_ = 0;
    last_clock_ns_ = clock_ns;
  }
  void added() { ++since_; }

 private:
  bool started_ = false;
  uint64_t since_ = 0;
  int64_t last_clock_ns_ = 0;
};

// Keeps the RSTs that wait for their horizon under a cap, the same whatever the number of
// threads: it sees every RST segment of the capture in order (after the tick due before it),
// and at each tick names the frame up to which RSTs are judged at once, so that no more than
// `cap` wait beyond that tick. Between ticks at most a tick interval's RSTs more come.
// It keeps the low 32 bits of the frames of the last `cap` + 1 RSTs, 4 bytes each, in room
// reserved at the start and touched only as RSTs come.
class ResetCap {
 public:
  // A cap of 0 is taken as 1, and one beyond 2^62 as 2^62 (more RSTs than any capture holds).
  explicit ResetCap(uint64_t cap) : cap_(std::clamp<uint64_t>(cap, 1, uint64_t{1} << 62)) {
    frames_.reserve(static_cast<size_t>(std::min<uint64_t>(cap_ + 1, reserve_max)));
  }
  void seen(const Segment& segment) {
    if (!segment.has(tcp_flag::rst)) return;
    const auto low = static_cast<uint32_t>(segment.frame);
    if (frames_.size() <= cap_) {
      frames_.push_back(low);
    } else {
      frames_[count_ % (cap_ + 1)] = low;
    }
    newest_ = segment.frame;
    ++count_;
  }
  // The frame of the newest RST that may wait no longer (the one `cap` places before the
  // newest), or 0 while no more than `cap` have been seen. Its high bits are the newest RST's,
  // less a wrap: were 2^32 frames or more between them, the frame named is a later one, and
  // more RSTs are judged early, never fewer.
  uint64_t cut_frame() const {
    if (count_ <= cap_) return 0;
    const uint32_t low = frames_[(count_ - cap_ - 1) % (cap_ + 1)];
    return newest_ - static_cast<uint32_t>(static_cast<uint32_t>(newest_) - low);
  }

 private:
  static constexpr uint64_t reserve_max = 1u << 22;  // 16 MiB of address space, not memory
  uint64_t cap_;
  uint64_t count_ = 0;
  uint64_t newest_ = 0;
  std::vector<uint32_t> frames_;
};

// One thread: one tracker for every connection, and the judgement.
class Analyzer {
 public:
  Analyzer(const AnalyzerOptions& options, FindingSink& sink);
  ~Analyzer();
  Analyzer(const Analyzer&) = delete;
  Analyzer& operator=(const Analyzer&) = delete;

  // Feeds one decoded segment, in capture order.
  void add(const Segment& segment);
  // Feeds a batch of segments in order: the same as add() on each, with the caches warmed ahead.
  // The segments get their clock_ns set on the way. `ahead`, when given, takes a step for each.
  void add_batch(Segment* segments, size_t count, FetchAhead ahead = {});
  // Moves the clock without a segment (live capture idles): judges RSTs whose horizon passed.
  void advance(int64_t now_ns);
  // Judges everything still open and reports cross-connection patterns. Call once at the end.
  void finish();

  // The capture's clock: the latest timestamp so far.
  static int64_t advance_clock(int64_t clock_ns, Segment& segment) {
    if (segment.ts_ns > clock_ns) clock_ns = segment.ts_ns;
    segment.clock_ns = clock_ns;
    return clock_ns;
  }

  // RSTs waiting for their horizon now.
  uint64_t waiting_resets() const;
  const TrackStats& track_stats() const;
  const DiagnoseStats& diagnose_stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rstscope
