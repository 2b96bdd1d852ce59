#pragma once
// An open-addressing table of connections with preallocated storage and idle lists.
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
  // Always inlined: on its own GCC finds such a function free of side effects (a prefetch has
  // none) and deletes the calls.
  [[gnu::always_inline]] void prefetch_slot(uint64_t hash) const { __builtin_prefetch(&slots_[hash & mask_]); }
  [[gnu::always_inline]] void prefetch_entry(uint64_t hash) const {
    const Slot& slot = slots_[hash & mask_];
    if (slot.index == empty) return;
    if ((slot.index & v6_bit) == 0) {
      // Four aligned lines.
      const auto* entry = reinterpret_cast<const char*>(&pool4_[slot.index]);
      for (size_t line = 0; line < sizeof(Entry4); line += 64) __builtin_prefetch(entry + line);
    } else {
      // 288 bytes at any 8-byte offset: up to six lines.
      const auto* entry = reinterpret_cast<const char*>(&pool6_[slot.index & ~v6_bit]);
      for (size_t line = 0; line < sizeof(ConnectionRecord); line += 64) __builtin_prefetch(entry + line);
      __builtin_prefetch(entry + sizeof(ConnectionRecord) - 1);
    }
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
    for (uint32_t index = oldest_[list]; index != 0 && visit(at(index)); index = at(index).newer) {
    }
  }
  // Calls `visit` on every connection, in storage order (a sequential walk, not a chase of
  // links): the IPv4 ones, then the IPv6 ones.
  template <typename Visit>
  void visit_all(Visit&& visit) {
    for (size_t index = 1; index < pool4_.size(); ++index) {
      if (pool4_[index].list != 0) visit(static_cast<Connection&>(pool4_[index]));
    }
    for (size_t index = 1; index < pool6_.size(); ++index) {
      if (pool6_[index].list != 0) visit(static_cast<Connection&>(pool6_[index]));
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
  // IPv4 entries: a Connection alone, aligned so that each spans exactly four cache lines.
  struct alignas(64) Entry4 : Connection {};
  static_assert(sizeof(Entry4) == sizeof(Connection) && sizeof(Connection) % 64 == 0);
  static constexpr uint32_t empty = 0xffffffffu;
  // An index with this bit is into pool6_, without it into pool4_ (index 0 of each is unused,
  // so 0 means none in the idle lists' links).
  static constexpr uint32_t v6_bit = 0x80000000u;
  struct Slot {
    uint32_t tag;    // the hash's low 32 bits: its home slot, and a filter before key compares
    uint32_t index;  // into pool4_ or (with v6_bit) pool6_, or `empty`
  };
  Connection& at(uint32_t index) {
    return (index & v6_bit) == 0 ? static_cast<Connection&>(pool4_[index])
                                 : static_cast<Connection&>(pool6_[index & ~v6_bit]);
  }
  uint32_t index_of(const Connection& connection) const {
    if (!connection.is_v6()) return static_cast<uint32_t>(static_cast<const Entry4*>(&connection) - pool4_.data());
    return static_cast<uint32_t>(static_cast<const ConnectionRecord*>(&connection) - pool6_.data()) | v6_bit;
  }
  void unlink(uint32_t index);
  void grow();
  uint32_t allocate(bool v6);

  uint64_t max_connections_;
  uint64_t size_ = 0;
  std::vector<Slot> slots_;
  uint64_t mask_ = 0;
  // Reserved whole at the start, so entries never move; index 0 of each is a sentinel.
  std::vector<Entry4> pool4_;
  std::vector<ConnectionRecord> pool6_;
  std::vector<uint32_t> free4_, free6_;
  std::deque<ConnectionRare> rare_pool_;  // index 0 is a sentinel; a deque keeps references valid
  std::vector<uint32_t> rare_free_;
  // Heads (newest) and tails (oldest) of the idle lists, by list number.
  uint32_t newest_[4] = {0, 0, 0, 0};
  uint32_t oldest_[4] = {0, 0, 0, 0};
};

}  // namespace rstscope
