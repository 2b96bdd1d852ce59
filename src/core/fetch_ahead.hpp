#pragma once
// One step of fetching a capture ahead into the cache, taken by a loop that is busy with
// something else.

namespace rstscope {

// With one thread, the capture is read in bursts (a batch of records decoded at once) between
// longer stretches of tracking that read none of it. A loop that takes one step per segment
// while it tracks spreads the capture's fetches from memory over that time instead (see
// PcapReader::prefetch_ahead). Empty when the input has nothing to fetch ahead.
struct FetchAhead {
  void (*step)(void*) = nullptr;
  void* context = nullptr;

  explicit operator bool() const { return step != nullptr; }
  void operator()() const { step(context); }
};

}  // namespace rstscope
