#include "diagnose/pipeline.hpp"

#include <chrono>

#include "decode/decode.hpp"

namespace rstscope {

RunStats analyze_capture(CaptureSet& capture, const AnalyzerOptions& options, FindingSink& sink,
                         const ProgressCallback& progress) {
  const auto started = std::chrono::steady_clock::now();
  RunStats stats;
  Analyzer analyzer(options, sink);
  Packet packet;
  Segment segment;
  uint64_t until_progress = 1u << 16;
  while (capture.next(packet)) {
    if (decode(packet, segment, stats.decode) == DecodeResult::tcp) analyzer.add(segment);
    if (progress && --until_progress == 0) {
      until_progress = 1u << 16;
      stats.capture = capture.stats();
      stats.track = analyzer.track_stats();
      progress(stats);
    }
  }
  analyzer.finish();
  stats.capture = capture.stats();
  stats.track = analyzer.track_stats();
  stats.diagnose = analyzer.diagnose_stats();
  stats.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return stats;
}

}  // namespace rstscope
