#include "diagnose/pipeline.hpp"

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "decode/decode.hpp"

namespace rstscope {
namespace {

constexpr uint64_t progress_every = 1u << 16;

// Segments handed from the reading thread to the analysing one. RST payloads are copied,
// since the packet buffer they point into is reused as soon as the next packet is read.
struct Batch {
  static constexpr size_t capacity = 8192;
  static constexpr uint32_t payload_keep = 64;  // the analysis looks at the first bytes only
  std::vector<Segment> segments;
  std::vector<uint8_t> payloads;
  std::vector<uint32_t> payload_offsets;  // per segment, offset into `payloads` + 1, 0 for none
  CaptureStats capture;  // counters as they stood when the batch was full
  bool last = false;
};

// A bounded queue of batches, with the emptied batches going back for reuse.
class BatchQueue {
 public:
  explicit BatchQueue(size_t depth) {
    for (size_t i = 0; i < depth; ++i) {
      auto batch = std::make_unique<Batch>();
      batch->segments.reserve(Batch::capacity);
      batch->payload_offsets.reserve(Batch::capacity);
      free_.push_back(std::move(batch));
    }
  }
  std::unique_ptr<Batch> take_free() { return pop(free_); }
  void give_free(std::unique_ptr<Batch> batch) { push(free_, std::move(batch)); }
  std::unique_ptr<Batch> take_full() { return pop(full_); }
  void give_full(std::unique_ptr<Batch> batch) { push(full_, std::move(batch)); }

 private:
  std::unique_ptr<Batch> pop(std::deque<std::unique_ptr<Batch>>& from) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return !from.empty(); });
    auto batch = std::move(from.front());
    from.pop_front();
    return batch;
  }
  void push(std::deque<std::unique_ptr<Batch>>& to, std::unique_ptr<Batch> batch) {
    {
      std::lock_guard lock(mutex_);
      to.push_back(std::move(batch));
    }
    changed_.notify_all();
  }
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::unique_ptr<Batch>> free_, full_;
};

void read_batches(CaptureSet& capture, BatchQueue& queue, DecodeStats& decode_stats) {
  Packet packet;
  Segment segment;
  std::unique_ptr<Batch> batch = queue.take_free();
  for (;;) {
    const bool more = capture.next(packet);
    if (more && decode(packet, segment, decode_stats) == DecodeResult::tcp) {
      uint32_t offset = 0;
      if (segment.has(tcp_flag::rst) && segment.payload != nullptr && segment.payload_captured > 0) {
        const uint32_t keep = std::min(segment.payload_captured, Batch::payload_keep);
        offset = static_cast<uint32_t>(batch->payloads.size()) + 1;
        batch->payloads.insert(batch->payloads.end(), segment.payload, segment.payload + keep);
        segment.payload_captured = keep;
      }
      segment.payload = nullptr;
      batch->segments.push_back(segment);
      batch->payload_offsets.push_back(offset);
    }
    if (!more || batch->segments.size() == Batch::capacity) {
      batch->capture = capture.stats();
      batch->last = !more;
      queue.give_full(std::move(batch));
      if (!more) return;
      batch = queue.take_free();
    }
  }
}

}  // namespace

RunStats analyze_capture(CaptureSet& capture, const AnalyzerOptions& options, FindingSink& sink,
                         const ProgressCallback& progress, unsigned threads) {
  const auto started = std::chrono::steady_clock::now();
  RunStats stats;
  Analyzer analyzer(options, sink);
  if (threads <= 1) {
    Packet packet;
    Segment segment;
    uint64_t until_progress = progress_every;
    while (capture.next(packet)) {
      if (decode(packet, segment, stats.decode) == DecodeResult::tcp) analyzer.add(segment);
      if (progress && --until_progress == 0) {
        until_progress = progress_every;
        stats.capture = capture.stats();
        stats.track = analyzer.track_stats();
        progress(stats);
      }
    }
  } else {
    BatchQueue queue(8);
    DecodeStats decode_stats;
    std::thread reader([&] { read_batches(capture, queue, decode_stats); });
    for (bool last = false; !last;) {
      std::unique_ptr<Batch> batch = queue.take_full();
      for (size_t i = 0; i < batch->segments.size(); ++i) {
        if (batch->payload_offsets[i] != 0) {
          batch->segments[i].payload = batch->payloads.data() + batch->payload_offsets[i] - 1;
        }
      }
      analyzer.add_batch(batch->segments.data(), batch->segments.size());
      last = batch->last;
      if (progress && !last) {
        stats.capture = batch->capture;
        stats.track = analyzer.track_stats();
        progress(stats);
      }
      batch->segments.clear();
      batch->payloads.clear();
      batch->payload_offsets.clear();
      if (!last) queue.give_free(std::move(batch));
    }
    reader.join();
    stats.decode = decode_stats;
  }
  analyzer.finish();
  stats.capture = capture.stats();
  stats.track = analyzer.track_stats();
  stats.diagnose = analyzer.diagnose_stats();
  stats.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return stats;
}

}  // namespace rstscope
