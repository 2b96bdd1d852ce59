#include "track/page_warmer.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

#include "core/thread_name.hpp"

namespace rstscope {

PageWarmer::~PageWarmer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void PageWarmer::request(size_t bytes) {
  // In whole huge pages of the address space, since one fault zeroes one of them: once the use
  // is three quarters into one, warm the next. Early enough for the other core to finish it,
  // and late enough that the peak memory is seldom a page more than without the warmer.
  const uintptr_t at = reinterpret_cast<uintptr_t>(begin_) + bytes;
  const uintptr_t page_start = at & ~uintptr_t{step - 1};
  const uintptr_t trigger = page_start + step / 4 * 3;
  if (at < trigger) {
    next_ = trigger - reinterpret_cast<uintptr_t>(begin_);
    return;
  }
  next_ = trigger + step - reinterpret_cast<uintptr_t>(begin_);
  const size_t target = std::min(bytes_, page_start + 2 * step - reinterpret_cast<uintptr_t>(begin_));
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;  // the kernel said no: nothing more to do
    target_ = std::max(target_, target);
  }
  if (!thread_.joinable()) {
    thread_ = std::thread([this] {
      name_this_thread("rstscope-warm");
      run();
    });
  } else {
    wake_.notify_one();
  }
}

void PageWarmer::run() {
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  // Whole pages only, from the first page boundary inside the block.
  const uintptr_t first = (reinterpret_cast<uintptr_t>(begin_) + page - 1) & ~(page - 1);
  uintptr_t warm = first;
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [&] { return stopping_ || reinterpret_cast<uintptr_t>(begin_) + target_ > warm + page; });
    if (stopping_) return;
    const uintptr_t end = (reinterpret_cast<uintptr_t>(begin_) + target_) & ~(page - 1);
    if (end <= warm) continue;
    lock.unlock();
#ifdef MADV_POPULATE_WRITE
    const bool done = ::madvise(reinterpret_cast<void*>(warm), end - warm, MADV_POPULATE_WRITE) == 0;
#else
    const bool done = false;
#endif
    lock.lock();
    if (!done) {
      stopping_ = true;  // an older kernel, or no memory to spare: the tracker faults them in
      return;
    }
    warm = end;
  }
}

}  // namespace rstscope
