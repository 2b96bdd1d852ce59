#pragma once
// Runs a whole capture through decode, track and diagnose.
#include <functional>

#include "capture/capture.hpp"
#include "diagnose/analyzer.hpp"

namespace rstscope {

// Called now and then with the packets read so far, for a progress line.
using ProgressCallback = std::function<void(const RunStats& so_far)>;

// Reads every packet of `capture`, analyses it and reports to `sink`. Returns the counters.
// With threads > 1, reading and decoding run on their own thread and hand batches of segments
// to the analysis; the findings are the same, in the same order, as with one thread.
RunStats analyze_capture(CaptureSet& capture, const AnalyzerOptions& options, FindingSink& sink,
                         const ProgressCallback& progress = {}, unsigned threads = 1);

}  // namespace rstscope
