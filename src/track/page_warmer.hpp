#pragma once
// Faults in the pages of a growing block ahead of its use, on a thread of its own.
//
// A fresh page costs its first writer a page fault and the kernel's zeroing of the page: for
// the connection pool that is a tenth of a one-thread run, all of it on the thread that follows
// the packets. The warmer faults in the huge page after the one in use, from another core, so
// the tracker finds its pages ready. It changes no byte of the block: it asks the
// kernel to populate the pages (MADV_POPULATE_WRITE), which leaves a page that is already there
// as it is. Where the kernel cannot do that, it stops, and pages fault in as before.
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>

namespace rstscope {

class PageWarmer {
 public:
  static constexpr size_t step = size_t{2} << 20;  // a huge page: what one fault zeroes

  // The block is `bytes` long at `begin`; nothing of it is touched until used() asks.
  PageWarmer(void* begin, size_t bytes) : begin_(static_cast<char*>(begin)), bytes_(bytes) {}
  ~PageWarmer();
  PageWarmer(const PageWarmer&) = delete;
  PageWarmer& operator=(const PageWarmer&) = delete;

  // The block is in use up to `bytes`. Inline and cheap: it asks for more once per step.
  void used(size_t bytes) {
    if (bytes >= next_) request(bytes);
  }

 private:
  void request(size_t bytes);
  void run();

  char* begin_;
  size_t bytes_;
  size_t next_ = 0;  // the next use that asks (small blocks never start the thread)
  std::mutex mutex_;
  std::condition_variable wake_;
  size_t target_ = 0;   // warm up to here (under mutex_)
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace rstscope
