#include "diagnose/analyzer.hpp"

#include <algorithm>
#include <vector>

#include "diagnose/diagnoser.hpp"
#include "track/tracker.hpp"

namespace rstscope {

TrackerOptions tracker_options(const AnalyzerOptions& options, unsigned shards) {
  // Closed connections linger at least as long as a RST waits, so its judgement sees them.
  // Idle times are kept in 32 bits of about a millisecond: timeouts stop at max_timeout_ns.
  const auto timeout = [](int64_t ns) { return std::clamp<int64_t>(ns, 0, TrackerOptions::max_timeout_ns); };
  TrackerOptions tracker;
  tracker.idle_timeout_ns = timeout(options.idle_timeout_ns);
  tracker.closing_timeout_ns = timeout(std::max<int64_t>(120'000'000'000, options.horizon_ns));
  tracker.horizon_ns = options.horizon_ns;
  tracker.max_connections = (options.max_connections + shards - 1) / shards;
  tracker.compaction = options.compaction;
  return tracker;
}

struct Analyzer::Impl {
  Impl(const AnalyzerOptions& options, FindingSink& sink)
      : diagnoser(options.thresholds, sink),
        tracker(tracker_options(options, 1), diagnoser),
        reset_cap(options.max_waiting_resets) {}

  void add(Segment& segment, const ConnectionKey& key, uint64_t hash) {
    clock_ns = advance_clock(clock_ns, segment);
    if (schedule.due(clock_ns)) tick();
    reset_cap.seen(segment);
    tracker.add(segment, key, hash);
    schedule.added();
  }
  void tick() {
    schedule.ticked(clock_ns);
    // Between ticks connections are only added (port reuse and the cap replace one with
    // another), so the most alive at once is reached just before a tick.
    live_peak = std::max(live_peak, tracker.live());
    tracker.tick(clock_ns, reset_cap.cut_frame());
  }

  Diagnoser diagnoser;
  Tracker tracker;
  ResetCap reset_cap;
  int64_t clock_ns = 0;
  TickSchedule schedule;
  uint64_t live_peak = 0;
  TrackStats stats;
};

Analyzer::Analyzer(const AnalyzerOptions& options, FindingSink& sink) : impl_(std::make_unique<Impl>(options, sink)) {}
Analyzer::~Analyzer() = default;

void Analyzer::add(const Segment& segment) {
  Segment copy = segment;
  const ConnectionKey key = ConnectionKey::of(copy);
  impl_->add(copy, key, key.hash());
}

void Analyzer::add_batch(Segment* segments, size_t count, FetchAhead ahead) {
  impl_->tracker.add_prefetched(segments, count, [&](size_t i, const ConnectionKey& key, uint64_t hash) {
    if (ahead) ahead();
    impl_->add(segments[i], key, hash);
  });
}

void Analyzer::advance(int64_t now_ns) {
  impl_->clock_ns = std::max(impl_->clock_ns, now_ns);
  impl_->tick();
}

void Analyzer::finish() {
  impl_->live_peak = std::max(impl_->live_peak, impl_->tracker.live());
  impl_->tracker.finish(impl_->clock_ns);
  impl_->diagnoser.finish();
}

uint64_t Analyzer::waiting_resets() const { return impl_->tracker.waiting_resets(); }

const TrackStats& Analyzer::track_stats() const {
  impl_->stats = impl_->tracker.stats();
  impl_->stats.live_peak = std::max(impl_->live_peak, impl_->tracker.live());
  return impl_->stats;
}
const DiagnoseStats& Analyzer::diagnose_stats() const { return impl_->diagnoser.stats(); }

}  // namespace rstscope
