#include "capture/mapping.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mutex>

namespace rstscope::capture_detail {

namespace {

// The mappings the SIGBUS handler may repair. An unused entry has begin == end == 0; entries
// change with end cleared first and set last, so the handler never sees a range that is not one.
struct Guard {
  std::atomic<bool> used{false};
  std::atomic<uintptr_t> begin{0}, end{0};
  std::atomic<bool> faulted{false};
};
static_assert(std::atomic<uintptr_t>::is_always_lock_free && std::atomic<bool>::is_always_lock_free,
              "the fault handler reads the table without locks");

constexpr int guard_count = 16;
Guard guards[guard_count];
uintptr_t page_bytes = 4096;
struct sigaction previous_action {};
std::once_flag install_once;
bool handler_installed = false;

void on_bus_error(int signal_number, siginfo_t* info, void* context) {
  const auto address = reinterpret_cast<uintptr_t>(info->si_addr);
  for (Guard& guard : guards) {
    const uintptr_t begin = guard.begin.load(std::memory_order_acquire);
    const uintptr_t end = guard.end.load(std::memory_order_acquire);
    if (address < begin || address >= end) continue;
    // A page of zeros where the file's page could not be read: the load that faulted then
    // completes, and the reader sees the flag before it uses what it read.
    void* page = reinterpret_cast<void*>(address & ~(page_bytes - 1));
    if (::mmap(page, page_bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
      guard.faulted.store(true, std::memory_order_relaxed);
      return;
    }
    break;
  }
  // Not a page of a guarded mapping: what would have happened without this handler.
  if ((previous_action.sa_flags & SA_SIGINFO) != 0 && previous_action.sa_sigaction != nullptr) {
    previous_action.sa_sigaction(signal_number, info, context);
    return;
  }
  if (previous_action.sa_handler != SIG_DFL && previous_action.sa_handler != SIG_IGN) {
    previous_action.sa_handler(signal_number);
    return;
  }
  // The default action: the signal, raised again, is delivered as this handler returns (and a
  // faulting instruction would fault again), and ends the process.
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  ::sigaction(SIGBUS, &default_action, nullptr);
  ::raise(SIGBUS);
}

void install_handler() {
  const long size = ::sysconf(_SC_PAGESIZE);
  if (size > 0) page_bytes = static_cast<uintptr_t>(size);
  struct sigaction action {};
  action.sa_sigaction = on_bus_error;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&action.sa_mask);
  handler_installed = ::sigaction(SIGBUS, &action, &previous_action) == 0;
}

}  // namespace

std::unique_ptr<FileMapping> FileMapping::open(int fd, size_t release_step) {
  std::call_once(install_once, install_handler);
  if (!handler_installed || fd < 0) return nullptr;
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode) || info.st_size <= 0) return nullptr;
  int slot = -1;
  for (int i = 0; i < guard_count && slot < 0; ++i) {
    bool expected = false;
    if (guards[i].used.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) slot = i;
  }
  if (slot < 0) return nullptr;
  std::unique_ptr<FileMapping> mapping(new FileMapping());
  mapping->fd_ = fd;
  mapping->slot_ = slot;
  mapping->release_step_ = release_step;
  guards[slot].faulted.store(false, std::memory_order_relaxed);
  mapping->faulted_ = &guards[slot].faulted;
  if (!mapping->map(static_cast<size_t>(info.st_size))) return nullptr;
  return mapping;
}

FileMapping::~FileMapping() {
  unmap();
  if (slot_ >= 0) {
    guards[slot_].faulted.store(false, std::memory_order_relaxed);
    guards[slot_].used.store(false, std::memory_order_release);
  }
}

bool FileMapping::map(size_t size) {
  void* address = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd_, 0);
  if (address == MAP_FAILED) return false;
  // Without this the kernel maps the page cache's large folios whole, 2 MiB at a time, and
  // more of the file stays resident ahead of the reader and behind it.
  ::madvise(address, size, MADV_NOHUGEPAGE);
  unmap();
  data_ = static_cast<const uint8_t*>(address);
  size_ = size;
  Guard& guard = guards[slot_];
  guard.begin.store(reinterpret_cast<uintptr_t>(address), std::memory_order_release);
  guard.end.store(reinterpret_cast<uintptr_t>(address) + size, std::memory_order_release);
  // Pages before `released_` were handed back from the old mapping; the new one never touched them.
  return true;
}

void FileMapping::unmap() {
  if (data_ == nullptr) return;
  Guard& guard = guards[slot_];
  guard.end.store(0, std::memory_order_release);
  guard.begin.store(0, std::memory_order_release);
  ::munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
}

uint64_t FileMapping::file_size() const {
  struct stat info {};
  if (::fstat(fd_, &info) != 0 || info.st_size < 0) return size_;
  return static_cast<uint64_t>(info.st_size);
}

bool FileMapping::grow() {
  const uint64_t now = file_size();
  if (now <= size_) return false;
  return map(static_cast<size_t>(now));
}

void FileMapping::release_before(size_t offset) {
  if (offset >= size_) {
    release_all();
    return;
  }
  const size_t until = offset & ~(page_bytes - 1);
  if (until >= released_ + release_step_) hand_back(until);
}

// The last page's bytes end at size_, but the page is whole.
void FileMapping::release_all() { hand_back((size_ + (page_bytes - 1)) & ~(page_bytes - 1)); }

void FileMapping::hand_back(size_t until) {
  if (until <= released_) return;
  ::madvise(const_cast<uint8_t*>(data_) + released_, until - released_, MADV_DONTNEED);
  released_ = until;
}

}  // namespace rstscope::capture_detail
