#include "track/table.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>

namespace rstscope {
namespace {

// Lookups land on random entries: with 4 KiB pages nearly every one misses the TLB too. Asks
// for transparent huge pages on the whole 2 MiB pages inside the block (a hint; ignored where
// the kernel does not offer them).
void advise_huge_pages(const void* data, size_t bytes) {
  constexpr uintptr_t huge = uintptr_t{2} << 20;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + huge - 1) & ~(huge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) & ~(huge - 1);
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

}  // namespace

ConnectionTable::ConnectionTable(uint64_t max_connections)
    : max_connections_(std::clamp<uint64_t>(max_connections, 16, uint64_t{1} << 30)) {  // tags hold 32 bits of home
  // Start small and double: memory follows the live connections, up to the cap.
  slots_.assign(1024, Slot{0, empty});
  mask_ = slots_.size() - 1;
  // Reserved, not touched: pages are only used as connections arrive, and the pool never has to
  // be copied to a larger block (which would double the peak memory).
  pool4_.reserve(max_connections_ + 1);
  advise_huge_pages(pool4_.data(), pool4_.capacity() * sizeof(Entry4));
  pool4_.emplace_back();
  pool6_.reserve(max_connections_ + 1);
  advise_huge_pages(pool6_.data(), pool6_.capacity() * sizeof(ConnectionRecord));
  pool6_.emplace_back();
  rare_pool_.emplace_back();
}

Connection* ConnectionTable::find(const ConnectionKey& key, uint64_t hash) {
  const uint32_t tag = static_cast<uint32_t>(hash);
  for (uint64_t position = hash & mask_;; position = (position + 1) & mask_) {
    const Slot& slot = slots_[position];
    if (slot.index == empty) return nullptr;
    if (slot.tag == tag && at(slot.index).has_key(key)) return &at(slot.index);
  }
}

uint32_t ConnectionTable::allocate(bool v6) {
  std::vector<uint32_t>& free = v6 ? free6_ : free4_;
  if (!free.empty()) {
    const uint32_t index = free.back();
    free.pop_back();
    return index;
  }
  if (v6) {
    pool6_.emplace_back();
    return static_cast<uint32_t>(pool6_.size() - 1) | v6_bit;
  }
  pool4_.emplace_back();
  return static_cast<uint32_t>(pool4_.size() - 1);
}

void ConnectionTable::grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_ = std::vector<Slot>();
  slots_.reserve(old.size() * 2);
  advise_huge_pages(slots_.data(), slots_.capacity() * sizeof(Slot));
  slots_.assign(old.size() * 2, Slot{0, empty});
  mask_ = slots_.size() - 1;
  for (const Slot& slot : old) {
    if (slot.index == empty) continue;
    uint64_t position = slot.tag & mask_;  // no need to visit the entry: the tag is its home
    while (slots_[position].index != empty) position = (position + 1) & mask_;
    slots_[position] = slot;
  }
}

Connection* ConnectionTable::insert(const ConnectionKey& key, uint64_t hash) {
  if ((size_ + 1) * 4 > slots_.size() * 3) grow();  // keep the load under 3/4
  const bool v6 = key.family() == 6;
  const uint32_t index = allocate(v6);
  if (v6) {
    pool6_[index & ~v6_bit] = ConnectionRecord{};
  } else {
    pool4_[index] = Entry4{};
  }
  at(index).set_key(key);
  uint64_t position = hash & mask_;
  while (slots_[position].index != empty) position = (position + 1) & mask_;
  slots_[position] = Slot{static_cast<uint32_t>(hash), index};
  ++size_;
  return &at(index);
}

void ConnectionTable::erase(Connection* connection) {
  const uint32_t index = index_of(*connection);
  unlink(index);
  const uint64_t hash = connection->key().hash();
  uint64_t position = hash & mask_;
  while (slots_[position].index != index) position = (position + 1) & mask_;
  // Backward-shift deletion keeps every probe chain unbroken without tombstones.
  uint64_t hole = position;
  for (uint64_t next = (hole + 1) & mask_; slots_[next].index != empty; next = (next + 1) & mask_) {
    const uint64_t home = slots_[next].tag & mask_;
    const bool movable = ((next - home) & mask_) >= ((next - hole) & mask_);
    if (movable) {
      slots_[hole] = slots_[next];
      hole = next;
    }
  }
  slots_[hole] = Slot{0, empty};
  if (connection->rare != 0) rare_free_.push_back(connection->rare);
  if ((index & v6_bit) != 0) {
    pool6_[index & ~v6_bit] = ConnectionRecord{};
    free6_.push_back(index);
  } else {
    pool4_[index] = Entry4{};
    free4_.push_back(index);
  }
  --size_;
}

ConnectionRare& ConnectionTable::rare(Connection& connection) {
  if (connection.rare != 0) return rare_pool_[connection.rare];
  if (rare_free_.empty()) {
    connection.rare = static_cast<uint32_t>(rare_pool_.size());
    return rare_pool_.emplace_back();
  }
  connection.rare = rare_free_.back();
  rare_free_.pop_back();
  return rare_pool_[connection.rare] = ConnectionRare{};
}

void ConnectionTable::unlink(uint32_t index) {
  Connection& connection = at(index);
  if (connection.list == 0) return;
  const uint8_t list = connection.list;
  if (connection.older != 0) at(connection.older).newer = connection.newer;
  if (connection.newer != 0) at(connection.newer).older = connection.older;
  if (newest_[list] == index) newest_[list] = connection.older;
  if (oldest_[list] == index) oldest_[list] = connection.newer;
  connection.older = connection.newer = 0;
  connection.list = 0;
}

void ConnectionTable::touch(Connection* connection, List list) {
  const uint32_t index = index_of(*connection);
  if (connection->list == list && newest_[list] == index) return;
  unlink(index);
  connection->list = list;
  connection->older = newest_[list];
  connection->newer = 0;
  if (newest_[list] != 0) at(newest_[list]).newer = index;
  newest_[list] = index;
  if (oldest_[list] == 0) oldest_[list] = index;
}

void ConnectionTable::clear() {
  std::fill(slots_.begin(), slots_.end(), Slot{0, empty});
  pool4_.resize(1);
  pool6_.resize(1);
  free4_.clear();
  free6_.clear();
  rare_pool_.resize(1);
  rare_free_.clear();
  std::fill(std::begin(newest_), std::end(newest_), 0u);
  std::fill(std::begin(oldest_), std::end(oldest_), 0u);
  size_ = 0;
}

Connection* ConnectionTable::oldest(List list) {
  return oldest_[list] == 0 ? nullptr : &at(oldest_[list]);
}

}  // namespace rstscope
