#include "diagnose/pipeline.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/thread_name.hpp"
#include "decode/decode.hpp"
#include "diagnose/diagnoser.hpp"

namespace rstscope {
namespace {

constexpr uint64_t progress_every = 1u << 16;
constexpr size_t single_batch = 256;  // segments decoded ahead of the lookups, for prefetching

// Decoded segments on their way to a tracker. RST payloads are copied, since the packet buffer
// they point into is reused as soon as more packets are read.
struct Batch {
  static constexpr uint32_t payload_keep = 64;  // the analysis looks at the first bytes only
  std::vector<Segment> segments;
  std::vector<ConnectionKey> keys;  // the segments' keys
  std::vector<uint64_t> hashes;     // and their hashes
  std::vector<uint8_t> payloads;
  // The segments whose payload was kept: index into `segments`, offset into `payloads`. Only
  // RSTs have one, so the other segments cost nothing here.
  std::vector<std::pair<uint32_t, uint32_t>> kept;
  // What follows the batch: more of the same tick interval, a tick, or the end of the input
  // (the tracker finishes instead of ticking).
  enum End : uint8_t { more, tick, last };
  End end = more;
  int64_t clock_ns = 0;   // the capture's clock at that tick
  uint64_t cut_frame = 0; // and the frame up to which waiting RSTs are judged (ResetCap)
  CaptureStats capture;   // counters as they stood (for progress; first shard only)

  // A copy of `segment`, with the capture's clock (`clock`) and its payload set in the copy:
  // a store into `segment` just before the copy's wide loads would stall them, since the CPU
  // cannot forward a load from narrower stores (two threads, 0.973 and 0.988 of the time in
  // 20 and 30 paired runs). Decoding straight into the batch instead was slower (1.06): the
  // stores of decode then wait for lines the tracker's core held.
  void add(const Segment& segment, int64_t clock, const ConnectionKey& key, uint64_t hash) {
    segments.push_back(segment);
    segments.back().clock_ns = clock;
    keep_payload(segment, segments.back(), segments.size() - 1);
    keys.push_back(key);
    hashes.push_back(hash);
  }
  // Takes the RST payload of `from` into `to`, which is segments[index] (the two may be one).
  void keep_payload(const Segment& from, Segment& to, size_t index) {
    if (from.has(tcp_flag::rst) && from.payload != nullptr && from.payload_captured > 0) {
      const uint32_t keep = std::min(from.payload_captured, payload_keep);
      kept.emplace_back(static_cast<uint32_t>(index), static_cast<uint32_t>(payloads.size()));
      payloads.insert(payloads.end(), from.payload, from.payload + keep);
      to.payload_captured = keep;
    }
    to.payload = nullptr;
  }
  // Points the kept RST payloads into this batch's own storage.
  void attach_payloads() {
    for (const auto& [index, offset] : kept) segments[index].payload = payloads.data() + offset;
  }
  void clear() {
    segments.clear();
    keys.clear();
    hashes.clear();
    payloads.clear();
    kept.clear();
    end = more;
  }
};

// A log of records that grows in chunks: a std::deque of records this large allocates and frees
// one node per record, and a vector would move them all again, into fresh pages, each time it
// grew. A cleared log keeps a few chunks for the next tick interval and gives the rest back.
template <typename T>
class ChunkedLog {
 public:
  static constexpr size_t chunk = 256, kept_chunks = 4;
  template <typename... Args>
  T& emplace_back(Args&&... args) {
    const size_t which = size_ / chunk;
    if (which == chunks_.size()) {
      chunks_.emplace_back();
      chunks_.back().reserve(chunk);
    }
    ++size_;
    return chunks_[which].emplace_back(std::forward<Args>(args)...);
  }
  void push_back(T&& item) { emplace_back(std::move(item)); }
  T& operator[](size_t i) { return chunks_[i / chunk][i % chunk]; }
  const T& operator[](size_t i) const { return chunks_[i / chunk][i % chunk]; }
  size_t size() const { return size_; }
  void clear() {
    if (chunks_.size() > kept_chunks) chunks_.resize(kept_chunks);
    for (std::vector<T>& items : chunks_) items.clear();
    size_ = 0;
  }

 private:
  std::vector<std::vector<T>> chunks_;
  size_t size_ = 0;
};

// What a shard's tracker reported over one tick interval, kept for the merge. A tick that ends
// many connections or judges many RSTs (the end of the capture ends every one still open, and
// judges most RSTs) spreads them over several logs, each `continued` but the last, so that
// memory stays bounded and the merge starts on them early: the first holds the events and the
// live count, the next ones runs of the ended connections in order of id, then runs of the
// judged RSTs in RST order, and the last `last` and the capture's counters.
struct ShardLog {
  enum Kind : uint8_t { host, service, ended };
  struct Event {
    uint64_t frame;  // the segment being added when it happened
    Kind kind;
    uint32_t index;  // into the vector of its kind
  };
  std::vector<Event> events;
  std::vector<std::pair<Address, uint8_t>> hosts;
  std::vector<Observations::Accepted> services;
  ChunkedLog<ConnectionRecord> connections;  // ended while a segment was added
  ChunkedLog<ConnectionRecord> tick_ended;   // ended at the tick, in order of id
  ChunkedLog<ResetContext> judged;           // judged at the tick, in RST order
  // At the end of the capture, once the observations are final, the tracker's thread works out
  // the prejudgements of every other RST it judges, and the merging thread those of the others:
  // prejudged[i] is judged[prejudged_from + i]'s, if it is `ready`.
  struct Prejudged {
    Prejudgement prejudgement;
    bool ready = false;
  };
  ChunkedLog<Prejudged> prejudged;
  size_t prejudged_from = 0;
  uint64_t live = 0;                    // connections alive just before the tick
  bool last = false;
  bool continued = false;  // the tick's ended connections or judged RSTs go on in the shard's next log
  bool finishing = false;  // filled at the end of the capture
  CaptureStats capture;

  void clear() {
    events.clear();
    hosts.clear();
    services.clear();
    connections.clear();
    tick_ended.clear();
    judged.clear();
    prejudged.clear();
    prejudged_from = 0;
    live = 0;
    last = false;
    continued = false;
    finishing = false;
  }
};

// A bounded hand-over of reusable objects: `free` ones go to the producer, `full` ones to the
// consumer, and back. A taker that finds its side empty may first spin for a while (`spin`)
// before it sleeps: when both ends run at about the same speed the next item is usually that
// close, and a sleep costs both threads a system call and the sleeper a wake-up.
template <typename T>
class Channel {
 public:
  explicit Channel(size_t depth, std::chrono::nanoseconds spin = std::chrono::nanoseconds::zero()) : spin_(spin) {
    for (size_t i = 0; i < depth; ++i) free_.items.push_back(std::make_unique<T>());
    free_.count.store(depth, std::memory_order_relaxed);
  }
  std::unique_ptr<T> take_free() { return pop(free_); }
  void give_free(std::unique_ptr<T> item) { push(free_, std::move(item)); }
  std::unique_ptr<T> take_full() { return pop(full_); }
  void give_full(std::unique_ptr<T> item) { push(full_, std::move(item)); }

 private:
  // One side each way, each with one taker at most, which a push wakes only when it sleeps.
  struct Side {
    std::deque<std::unique_ptr<T>> items;
    std::atomic<size_t> count{0};  // items.size(), read by the spin without the lock
    bool sleeping = false;
    std::condition_variable filled;
  };
  std::unique_ptr<T> pop(Side& from) {
    if (spin_ > std::chrono::nanoseconds::zero() && from.count.load(std::memory_order_acquire) == 0) spin(from);
    std::unique_lock lock(mutex_);
    while (from.items.empty()) {
      from.sleeping = true;
      from.filled.wait(lock);
      from.sleeping = false;
    }
    auto item = std::move(from.items.front());
    from.items.pop_front();
    from.count.store(from.items.size(), std::memory_order_relaxed);
    return item;
  }
  void push(Side& to, std::unique_ptr<T> item) {
    bool wake = false;
    {
      std::lock_guard lock(mutex_);
      to.items.push_back(std::move(item));
      to.count.store(to.items.size(), std::memory_order_release);
      wake = to.sleeping;
    }
    if (wake) to.filled.notify_one();
  }
  // Waits without sleeping until the side has an item or the spin's time is up; the clock is
  // read every few dozen pauses.
  void spin(const Side& from) const {
    const auto until = std::chrono::steady_clock::now() + spin_;
    do {
      for (int i = 0; i < 32; ++i) {
        if (from.count.load(std::memory_order_acquire) != 0) return;
        cpu_relax();
      }
    } while (std::chrono::steady_clock::now() < until);
  }
  static void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  const std::chrono::nanoseconds spin_;
  std::mutex mutex_;
  Side free_, full_;
};

// The cores this process may run on.
unsigned usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) return static_cast<unsigned>(CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

// Records a shard tracker's reports into its current log instead of acting on them, and hands
// the logs to the merge.
class Recorder final : public TrackerSink {
 public:
  // Ended connections a log holds at a tick before it continues in the next.
  static constexpr size_t part_records = 1024;
  // `observations_final` is set once the merge has every host and service of the capture, so
  // that RSTs judged after it can be prejudged here.
  Recorder(Channel<ShardLog>& output, const Diagnoser& diagnoser, const std::atomic<bool>& observations_final)
      : output_(output), diagnoser_(diagnoser), observations_final_(observations_final) {}
  uint64_t frame = 0;
  bool ticking = false;
  bool finishing = false;  // the tracker is finishing: the end of the capture

  ShardLog& log() {
    if (log_ == nullptr) {
      log_ = output_.take_free();
      log_->clear();
    }
    return *log_;
  }
  void hand_over() {
    log_->finishing = finishing;
    output_.give_full(std::move(log_));
  }

  void host_packet(const Address& address, uint8_t ttl) override {
    ShardLog& current = log();
    current.events.push_back({frame, ShardLog::host, static_cast<uint32_t>(current.hosts.size())});
    current.hosts.emplace_back(address, ttl);
  }
  void service_accepted(const Segment& synack) override {
    ShardLog& current = log();
    current.events.push_back({frame, ShardLog::service, static_cast<uint32_t>(current.services.size())});
    current.services.push_back({synack.src, synack.sport, synack.frame, synack.source_mac, synack.ttl, synack.clock_ns});
  }
  bool wants(const Connection& connection) const override { return Diagnoser::wanted(connection); }
  void ended(const Connection& connection) override {
    if (ticking) {
      // A tick ends connections before it judges RSTs; were it ever the other way round, the
      // judged ones stay in the log they are in, which is then the last.
      if (log().tick_ended.size() == part_records && log().judged.size() == 0) {
        log().continued = true;
        hand_over();
      }
      log().tick_ended.emplace_back(connection);
    } else {
      ShardLog& current = log();
      current.events.push_back({frame, ShardLog::ended, static_cast<uint32_t>(current.connections.size())});
      current.connections.emplace_back(connection);
    }
  }
  void judge(ResetContext& context) override {
    if (log().judged.size() == part_records) {
      log().continued = true;
      hand_over();
    }
    ShardLog& current = log();
    if (finishing && observations_final_.load(std::memory_order_acquire)) {
      if (current.prejudged.size() == 0) current.prejudged_from = current.judged.size();
      ShardLog::Prejudged& prejudged = current.prejudged.emplace_back();
      if (++prejudged_count_ % 2 == 0) {
        diagnoser_.prejudge(context, prejudged.prejudgement);
        prejudged.ready = true;
      }
    }
    current.judged.push_back(std::move(context));
  }

 private:
  Channel<ShardLog>& output_;
  const Diagnoser& diagnoser_;
  const std::atomic<bool>& observations_final_;
  uint64_t prejudged_count_ = 0;
  std::unique_ptr<ShardLog> log_;
};

// Findings in the order the Diagnoser reported them, on their way to the sink. Slots are
// assigned over, not rebuilt, so the strings and vectors of earlier findings keep their storage.
struct Reports {
  enum Kind : uint8_t { reset, connection, pattern };
  std::vector<Kind> order;
  std::vector<Finding> resets;
  std::vector<ConnectionSummary> connections;
  std::vector<PatternFinding> patterns;
  size_t reset_count = 0, connection_count = 0, pattern_count = 0;
  bool last = false;  // nothing follows

  template <typename T>
  static void keep(std::vector<T>& slots, size_t& count, const T& item) {
    if (count < slots.size()) {
      slots[count] = item;
    } else {
      slots.push_back(item);
    }
    ++count;
  }
  void replay(FindingSink& sink) const {
    size_t next_reset = 0, next_connection = 0, next_pattern = 0;
    for (const Kind kind : order) {
      switch (kind) {
        case reset:
          sink.reset(resets[next_reset++]);
          break;
        case connection:
          sink.connection(connections[next_connection++]);
          break;
        case pattern:
          sink.pattern(patterns[next_pattern++]);
          break;
      }
    }
  }
  void clear() {
    order.clear();
    reset_count = connection_count = pattern_count = 0;
    last = false;
  }
};

// Hands the Diagnoser's findings to a thread of its own that formats and writes them: most
// connections end, and many RSTs are judged, only when the capture ends, and with the
// formatting elsewhere that last stretch is not all on the merging thread.
class ReportQueue final : public FindingSink {
 public:
  explicit ReportQueue(FindingSink& sink) : reports_(depth), current_(reports_.take_free()) {
    writer_ = std::thread([this, &sink] {
      name_this_thread("rstscope-write");
      for (bool last = false; !last;) {
        std::unique_ptr<Reports> reports = reports_.take_full();
        reports->replay(sink);
        last = reports->last;
        reports->clear();
        reports_.give_free(std::move(reports));
      }
    });
  }
  ~ReportQueue() {
    if (writer_.joinable()) finish();
  }
  ReportQueue(const ReportQueue&) = delete;
  ReportQueue& operator=(const ReportQueue&) = delete;

  void reset(const Finding& finding) override {
    current_->order.push_back(Reports::reset);
    Reports::keep(current_->resets, current_->reset_count, finding);
    if (current_->order.size() == handoff) flush();
  }
  void connection(const ConnectionSummary& summary) override {
    current_->order.push_back(Reports::connection);
    Reports::keep(current_->connections, current_->connection_count, summary);
    if (current_->order.size() == handoff) flush();
  }
  void pattern(const PatternFinding& pattern) override {
    current_->order.push_back(Reports::pattern);
    Reports::keep(current_->patterns, current_->pattern_count, pattern);
    if (current_->order.size() == handoff) flush();
  }
  // Passes on what was reported so far.
  void flush() {
    if (current_->order.empty()) return;
    reports_.give_full(std::move(current_));
    current_ = reports_.take_free();
  }
  // Passes on the rest and waits until all of it is written.
  void finish() {
    current_->last = true;
    reports_.give_full(std::move(current_));
    writer_.join();
  }

 private:
  static constexpr size_t handoff = 256, depth = 8;
  Channel<Reports> reports_;
  std::unique_ptr<Reports> current_;
  std::thread writer_;
};

RunStats analyze_one_thread(CaptureSet& capture, const AnalyzerOptions& options, FindingSink& sink,
                            const ProgressCallback& progress) {
  RunStats stats;
  Analyzer analyzer(options, sink);
  Batch batch;
  batch.segments.resize(single_batch);
  size_t count = 0;
  Packet packet;
  uint64_t until_progress = progress_every;
  const FetchAhead ahead = capture.fetch_ahead();
  for (bool more = true; more;) {
    more = capture.next(packet);
    // Decoded in place: a batch is only a window of segments ahead of their lookups.
    if (more && decode(packet, batch.segments[count], stats.decode) == DecodeResult::tcp) {
      batch.keep_payload(batch.segments[count], batch.segments[count], count);
      ++count;
    }
    if (count == single_batch || (!more && count > 0)) {
      batch.attach_payloads();
      analyzer.add_batch(batch.segments.data(), count, ahead);
      batch.payloads.clear();
      batch.kept.clear();
      count = 0;
    }
    if (progress && more && --until_progress == 0) {
      until_progress = progress_every;
      stats.capture = capture.stats();
      stats.track = analyzer.track_stats();
      progress(stats);
    }
  }
  analyzer.finish();
  stats.track = analyzer.track_stats();
  stats.diagnose = analyzer.diagnose_stats();
  return stats;
}

// Connections sharded by the symmetric hash of their 4-tuple: one thread reads and decodes and
// hands each shard its segments, one tracker per shard follows them, and this thread merges
// what the trackers report back into capture order for the one Diagnoser. Ticks fall on the
// same segments as with one thread, so the findings are the same, in the same order.
RunStats analyze_sharded(CaptureSet& capture, const AnalyzerOptions& options, FindingSink& sink,
                         const ProgressCallback& progress, unsigned shards) {
  // Small batches, many in flight: they stay in cache between the reading thread that fills
  // them and the tracker that empties them, and leave the cache to the read buffer.
  constexpr size_t handoff = 512, batch_depth = 16, log_depth = 4;
  // A tracker short of segments, or the reading thread short of free batches, spins this long
  // before it sleeps: the other end is usually one batch (some 50 us) away. Measured with two
  // threads on the benchmark capture: 0.622 against 0.653 s (11 runs), fewer sleeps and wake-ups.
  // Only when each of those threads can have a core of its own: with more, a spinner keeps the
  // one it waits for off its core (3 trackers on 2 cores: 0.692 against 0.650 s).
  const std::chrono::microseconds batch_spin{shards + 1 <= usable_cores() ? 50 : 0};
  RunStats stats;
  ReportQueue reports(sink);
  Diagnoser diagnoser(options.thresholds, reports);
  std::vector<std::unique_ptr<Channel<Batch>>> inputs;
  std::vector<std::unique_ptr<Channel<ShardLog>>> outputs;
  std::vector<TrackStats> shard_stats(shards);
  for (unsigned s = 0; s < shards; ++s) {
    inputs.push_back(std::make_unique<Channel<Batch>>(batch_depth, batch_spin));
    outputs.push_back(std::make_unique<Channel<ShardLog>>(log_depth));
  }

  // The trackers reserve their tables here, before any thread starts: a cap larger than the
  // machine can reserve is then an error for the caller, not an exception on a worker thread.
  std::atomic<bool> observations_final{false};
  std::vector<std::unique_ptr<Recorder>> recorders;
  std::vector<std::unique_ptr<Tracker>> trackers;
  for (unsigned s = 0; s < shards; ++s) {
    recorders.push_back(std::make_unique<Recorder>(*outputs[s], diagnoser, observations_final));
    trackers.push_back(std::make_unique<Tracker>(tracker_options(options, shards), *recorders.back()));
  }

  DecodeStats decode_stats;  // the reader's own until it is done
  std::thread reader([&] {
    name_this_thread("rstscope-decode");
    std::vector<std::unique_ptr<Batch>> batches;
    for (unsigned s = 0; s < shards; ++s) batches.push_back(inputs[s]->take_free());
    Packet packet;
    Segment segment;
    int64_t clock_ns = 0;
    TickSchedule schedule;
    ResetCap reset_cap(options.max_waiting_resets);
    auto hand_over = [&](unsigned s, Batch::End end) {
      batches[s]->end = end;
      batches[s]->clock_ns = clock_ns;
      batches[s]->cut_frame = reset_cap.cut_frame();
      if (s == 0 && progress && end != Batch::more) batches[s]->capture = capture.stats();
      inputs[s]->give_full(std::move(batches[s]));
      if (end != Batch::last) batches[s] = inputs[s]->take_free();
    };
    while (capture.next(packet)) {
      if (decode(packet, segment, decode_stats) != DecodeResult::tcp) continue;
      clock_ns = std::max(clock_ns, segment.ts_ns);  // Analyzer::advance_clock(), but into the batch's copy
      if (schedule.due(clock_ns)) {
        // Every shard ticks here, where one tracker would.
        for (unsigned s = 0; s < shards; ++s) hand_over(s, Batch::tick);
        schedule.ticked(clock_ns);
      }
      reset_cap.seen(segment);
      // The key and its hash, which the tracker needs too, worked out here where there is time
      // to spare (the tracker is the busier thread): the hash's low half places the key in the
      // shard's table, its high half picks the shard.
      const ConnectionKey key = ConnectionKey::of(segment);
      const uint64_t hash = key.hash();
      const unsigned s = static_cast<unsigned>(((hash >> 32) * shards) >> 32);
      batches[s]->add(segment, clock_ns, key, hash);
      if (batches[s]->segments.size() == handoff) hand_over(s, Batch::more);
      schedule.added();
    }
    for (unsigned s = 0; s < shards; ++s) hand_over(s, Batch::last);
  });

  std::vector<std::thread> workers;
  for (unsigned s = 0; s < shards; ++s) {
    workers.emplace_back([&, s] {
      name_this_thread("rstscope-track");
      // The reading thread is the one stage that cannot be split, so the trackers yield the
      // cores to it (a hint: where it cannot be set, they run at the same priority).
      errno = 0;
      const int nice = getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
      if (errno == 0) setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), std::min(nice + 3, 19));
      Recorder& recorder = *recorders[s];
      Tracker& tracker = *trackers[s];
      for (bool last = false; !last;) {
        std::unique_ptr<Batch> batch = inputs[s]->take_full();
        batch->attach_payloads();
        const Segment* segments = batch->segments.data();
        tracker.add_prefetched(segments, batch->segments.size(),
                               [&](size_t i, const ConnectionKey& key, uint64_t hash) {
                                 recorder.frame = segments[i].frame;
                                 tracker.add(segments[i], key, hash);
                               },
                               batch->keys.data(), batch->hashes.data());
        const Batch::End end = batch->end;
        last = end == Batch::last;
        if (end != Batch::more) {
          recorder.log().live = tracker.live();
          recorder.ticking = true;
          if (last) {
            recorder.finishing = true;
            tracker.finish(batch->clock_ns);
          } else {
            tracker.tick(batch->clock_ns, batch->cut_frame);
          }
          recorder.ticking = false;
          ShardLog& log = recorder.log();  // the tick's last log
          log.last = last;
          if (s == 0 && progress) log.capture = batch->capture;
          recorder.hand_over();
        }
        batch->clear();
        if (!last) inputs[s]->give_free(std::move(batch));
      }
      shard_stats[s] = tracker.stats();
    });
  }

  // The merge: each shard's log is in capture order; so is the result.
  std::vector<std::unique_ptr<ShardLog>> logs(shards);
  std::vector<size_t> at(shards);
  uint64_t live_peak = 0;
  for (bool last = false; !last;) {
    uint64_t live = 0;
    for (unsigned s = 0; s < shards; ++s) {
      logs[s] = outputs[s]->take_full();
      live += logs[s]->live;
    }
    live_peak = std::max(live_peak, live);
    // Pick, each time, the shard whose next entry comes first; `key` gives that entry's place.
    // A shard's entries go on in its next log while `goes_on` says so of its log.
    auto merge = [&](auto size, auto key, auto replay, auto goes_on) {
      std::fill(at.begin(), at.end(), 0);
      for (;;) {
        unsigned best = shards;
        for (unsigned s = 0; s < shards; ++s) {
          while (at[s] == size(*logs[s]) && goes_on(*logs[s])) {
            outputs[s]->give_free(std::move(logs[s]));
            logs[s] = outputs[s]->take_full();
            at[s] = 0;
          }
          if (at[s] < size(*logs[s]) && (best == shards || key(*logs[s], at[s]) < key(*logs[best], at[best]))) best = s;
        }
        if (best == shards) return;
        replay(*logs[best], at[best]++);
      }
    };
    merge([](const ShardLog& log) { return log.events.size(); },
          [](const ShardLog& log, size_t i) { return log.events[i].frame; },
          [&](ShardLog& log, size_t i) {
            const ShardLog::Event& event = log.events[i];
            switch (event.kind) {
              case ShardLog::host:
                diagnoser.host_packet(log.hosts[event.index].first, log.hosts[event.index].second);
                break;
              case ShardLog::service:
                diagnoser.service_accepted(log.services[event.index]);
                break;
              case ShardLog::ended:
                diagnoser.ended(log.connections[event.index]);
                break;
            }
          },
          [](const ShardLog&) { return false; });
    // At the end of the capture the observations are now final: the trackers may prejudge.
    bool finishing = true;
    for (unsigned s = 0; s < shards; ++s) finishing = finishing && logs[s]->finishing;
    if (finishing) observations_final.store(true, std::memory_order_release);
    // A log with judged RSTs holds the shard's last ended connections of the tick.
    merge([](const ShardLog& log) { return log.tick_ended.size(); },
          [](const ShardLog& log, size_t i) { return log.tick_ended[i].id(); },
          [&](ShardLog& log, size_t i) { diagnoser.ended(log.tick_ended[i]); },
          [](const ShardLog& log) { return log.continued && log.judged.size() == 0; });
    merge([](const ShardLog& log) { return log.judged.size(); },
          [](const ShardLog& log, size_t i) { return log.judged[i].rst.frame; },
          [&](ShardLog& log, size_t i) {
            if (log.prejudged.size() > 0 && i >= log.prejudged_from && log.prejudged[i - log.prejudged_from].ready) {
              diagnoser.judge(log.judged[i], log.prejudged[i - log.prejudged_from].prejudgement);
            } else {
              diagnoser.judge(log.judged[i]);
            }
          },
          [](const ShardLog& log) { return log.continued; });
    // Each shard's log is now the tick's last.
    for (unsigned s = 0; s < shards; ++s) last = logs[s]->last;
    reports.flush();
    if (progress && !last) {
      stats.capture = logs[0]->capture;
      stats.track.live_peak = live_peak;
      progress(stats);
    }
    for (unsigned s = 0; s < shards; ++s) {
      if (!last) outputs[s]->give_free(std::move(logs[s]));
    }
  }
  reader.join();
  for (std::thread& worker : workers) worker.join();
  stats.decode = decode_stats;
  diagnoser.finish();
  reports.finish();

  for (const TrackStats& shard : shard_stats) {
    stats.track.segments += shard.segments;
    stats.track.connections += shard.connections;
    stats.track.evicted_idle += shard.evicted_idle;
    stats.track.compacted += shard.compacted;
    stats.track.restored += shard.restored;
    stats.track.evicted_pressure += shard.evicted_pressure;
    stats.track.port_reuse += shard.port_reuse;
    stats.track.resets += shard.resets;
    stats.track.resets_without_connection += shard.resets_without_connection;
    stats.track.resets_judged_early += shard.resets_judged_early;
    stats.track.retransmissions += shard.retransmissions;
    stats.track.out_of_order += shard.out_of_order;
  }
  stats.track.live_peak = live_peak;
  stats.diagnose = diagnoser.stats();
  return stats;
}

}  // namespace

RunStats analyze_capture(CaptureSet& capture, const AnalyzerOptions& options, FindingSink& sink,
                         const ProgressCallback& progress, unsigned threads) {
  const auto started = std::chrono::steady_clock::now();
  // The reading thread counts as one of the threads: on two cores, one tracker beside it beat two
  // (0.63 s against 0.67 s with the benchmark capture cached as read from disk, 0.70 s against
  // 0.74 s as just written), since three busy threads on two cores kept waiting for each other.
  RunStats stats = threads <= 1 ? analyze_one_thread(capture, options, sink, progress)
                                : analyze_sharded(capture, options, sink, progress, threads - 1);
  stats.capture = capture.stats();
  stats.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return stats;
}

}  // namespace rstscope
