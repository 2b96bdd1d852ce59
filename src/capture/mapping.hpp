#pragma once
// A read-only mapping of a whole regular file, for walking a capture in place without copying it
// out of the page cache. A page that cannot be read (the file was truncated while mapped, or the
// disk failed) would kill the process with SIGBUS; here a handler puts a page of zeros in its
// place, so the read completes, and marks the mapping as faulted, which the reader checks before
// it trusts a record. Pages behind the reader are handed back as it goes, so the mapping holds a
// few megabytes of the process's resident memory, not the whole file.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace rstscope::capture_detail {

class FileMapping {
 public:
  // How many bytes of pages behind the reader gather before they are handed back, when no
  // other thread of the process is busy (see open()).
  static constexpr size_t default_release_step = 512u << 10;

  // Maps the regular file open on `fd` (not owned; it must stay open) from its first byte.
  // Returns nullptr when it cannot: not a regular file, empty, no address space, or too many
  // mappings open at once. The caller then reads the file instead.
  //
  // Pages behind the reader are handed back `release_step` bytes at a time. Each time costs the
  // other cores that run the process's threads an interrupt to flush their TLBs, so a process
  // with busy threads beside the reader does better with a larger step, at the price of that
  // much more resident memory.
  static std::unique_ptr<FileMapping> open(int fd, size_t release_step = default_release_step);
  ~FileMapping();
  FileMapping(const FileMapping&) = delete;
  FileMapping& operator=(const FileMapping&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  // True once a page could not be read; its bytes, and those of every later page read, are
  // zeros, not the file's.
  bool faulted() const { return faulted_->load(std::memory_order_relaxed); }
  // The file's size now, as fstat() gives it (size() if it cannot say).
  uint64_t file_size() const;
  // Maps the file again if it has grown since; returns true if size() grew. data() may move.
  bool grow();
  // The bytes before `offset` will not be read again: once a release step of them has gathered,
  // their pages leave the process's resident memory (they stay in the page cache, and would
  // read the same if touched).
  void release_before(size_t offset);
  // Nothing more will be read: every page leaves the process's resident memory.
  void release_all();

 private:
  FileMapping() = default;
  bool map(size_t size);
  void unmap();
  // Hands back the pages before `until` (a page boundary) that are not yet.
  void hand_back(size_t until);

  int fd_ = -1;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t released_ = 0;  // pages before this offset were handed back
  size_t release_step_ = default_release_step;
  int slot_ = -1;        // in the fault handler's table
  const std::atomic<bool>* faulted_ = nullptr;
};

}  // namespace rstscope::capture_detail
