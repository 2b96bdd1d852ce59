#pragma once
// An open-addressing table of connections with preallocated storage and two idle lists.
#include <cstdint>
#include <deque>
#include <vector>

#include "track/connection.hpp"

namespace rstscope {

class ConnectionTable {
 public:
  // Lists a connection can sit on: synchronized and active, closed and lingering a short while,
  // or embryonic (a handshake that never completed: what a SYN flood leaves behind).
  enum List : uint8_t { active = 1, closing = 2, embryonic = 3 };

  explicit ConnectionTable(uint64_t max_connections);

  Connection* find(const ConnectionKey& key, uint64_t hash);
  // Hints for a lookup soon: first the slot's cache line, later (once it is cached) the entry.
  void prefetch_slot(uint64_t hash) const { __builtin_prefetch(&slots_[hash & mask_]); }
  void prefetch_entry(uint64_t hash) const {
    const Slot& slot = slots_[hash & mask_];
    if (slot.index == empty) return;
    const auto* entry = reinterpret_cast<const char*>(&pool_[slot.index]);
    for (size_t line = 0; line < sizeof(Connection); line += 64) __builtin_prefetch(entry + line);
  }
  // Inserts a fresh connection; the caller checks size() < capacity() first.
  Connection* insert(const ConnectionKey& key, uint64_t hash);
  void erase(Connection* connection);
  // Marks a connection as just used and files it on `list`.
  void touch(Connection* connection, List list);
  // The least recently used connection on `list`, or nullptr.
  Connection* oldest(List list);
  // Calls `visit` on the connections of `list`, oldest first, while it returns true.
  template <typename Visit>
  void visit_oldest_first(List list, Visit&& visit) {
    for (uint32_t index = oldest_[list]; index != 0 && visit(pool_[index]); index = pool_[index].newer) {
    }
  }
  // Calls `visit` on every connection, in storage order (a sequential walk, not a chase of links).
  template <typename Visit>
  void visit_all(Visit&& visit) {
    for (size_t index = 1; index < pool_.size(); ++index) {
      if (pool_[index].list != 0) visit(pool_[index]);
    }
  }
  // A connection's rare part: made on first use, freed with the connection.
  ConnectionRare& rare(Connection& connection);
  ConnectionRare* find_rare(const Connection& connection) {
    return connection.rare == 0 ? nullptr : &rare_pool_[connection.rare];
  }
  // Forgets every connection at once (the end of the input), without erasing them one by one.
  void clear();

  uint64_t size() const { return size_; }
  uint64_t capacity() const { return max_connections_; }

 private:
  static constexpr uint32_t empty = 0xffffffffu;
  struct Slot {
    uint32_t tag;    // the hash's low 32 bits: its home slot, and a filter before key compares
    uint32_t index;  // into pool_, or `empty`
  };
  void unlink(uint32_t index);
  void grow();
  uint32_t allocate();

  uint64_t max_connections_;
  uint64_t size_ = 0;
  std::vector<Slot> slots_;
  uint64_t mask_ = 0;
  std::vector<Connection> pool_;  // index 0 is a sentinel, never used
  std::vector<uint32_t> free_;
  std::deque<ConnectionRare> rare_pool_;  // index 0 is a sentinel; a deque keeps references valid
  std::vector<uint32_t> rare_free_;
  // Heads (newest) and tails (oldest) of the idle lists, by list number.
  uint32_t newest_[4] = {0, 0, 0, 0};
  uint32_t oldest_[4] = {0, 0, 0, 0};
};

}  // namespace rstscope
