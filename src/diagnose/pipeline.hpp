#pragma once
// Runs a whole capture through decode, track and diagnose.
#include <functional>

#include "capture/capture.hpp"
#include "diagnose/analyzer.hpp"

namespace rstscope {

// Called now and then with the packets read so far, for a progress line.
using ProgressCallback = std::function<void(const RunStats& so_far)>;

// Reads every packet of `capture`, analyses it and reports to `sink`. Returns the counters.
// With threads > 1, one thread reads and decodes, and the connections are split into threads - 1
// shards by a symmetric hash of their 4-tuple, each followed by a thread of its own; the
// findings are the same, in the same order, as with one thread (unless --max-connections is
// reached with more than one shard: each shard then keeps its share of the cap, and evicts its
// own oldest).
RunStats analyze_capture(CaptureSet& capture, const AnalyzerOptions& options, FindingSink& sink,
                         const ProgressCallback& progress = {}, unsigned threads = 1);

}  // namespace rstscope
