#pragma once
// A first-in, first-out queue with access by position, kept in chunks of many elements.
// std::deque gives an element of more than 256 bytes a 512-byte block of its own, so a
// 400-byte element costs 528 bytes of heap; here a chunk holds `chunk_elements` of them, and
// the only slack is in the first and last chunks. A chunk emptied at the front is kept for the
// next one needed at the back, so a queue that stays about the same length stops allocating.
#include <cstddef>
#include <deque>
#include <memory>
#include <utility>

namespace rstscope {

template <typename T, size_t chunk_elements>
class ChunkedFifo {
  static_assert(chunk_elements > 0);

 public:
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  // The element `index` places after the front; index < size().
  T& operator[](size_t index) {
    const size_t at = head_ + index;
    return chunks_[at / chunk_elements][at % chunk_elements];
  }
  const T& operator[](size_t index) const {
    const size_t at = head_ + index;
    return chunks_[at / chunk_elements][at % chunk_elements];
  }
  T& front() { return (*this)[0]; }

  void push_back(T&& value) {
    const size_t at = head_ + size_;
    if (at / chunk_elements == chunks_.size()) {
      chunks_.push_back(spare_ ? std::move(spare_) : std::make_unique<T[]>(chunk_elements));
    }
    chunks_[at / chunk_elements][at % chunk_elements] = std::move(value);
    ++size_;
  }
  // Drops the front element (what it owns is freed now, not when its chunk is reused).
  void pop_front() {
    chunks_.front()[head_] = T{};
    --size_;
    if (++head_ == chunk_elements || size_ == 0) {  // the first chunk holds no more
      spare_ = std::move(chunks_.front());
      chunks_.pop_front();
      head_ = 0;
    }
  }

 private:
  std::deque<std::unique_ptr<T[]>> chunks_;
  std::unique_ptr<T[]> spare_;
  size_t head_ = 0;  // the front element's place in the first chunk
  size_t size_ = 0;
};

}  // namespace rstscope
