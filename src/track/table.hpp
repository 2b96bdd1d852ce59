#pragma once
// An open-addressing table of connections with preallocated storage and idle lists.
#include <cstdint>
#include <array>
#include <cstddef>
#include <deque>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "core/chunked_fifo.hpp"
#include "core/prefetch.hpp"
#include "track/connection.hpp"

namespace rstscope {

class ConnectionTable {
 public:
  // Lists a connection can sit on: synchronized and active, closed and lingering a short while,
  // or embryonic (a handshake that never completed: what a SYN flood leaves behind).
  enum List : uint8_t { active = 1, closing = 2, embryonic = 3 };
  // A connection's place in the table, full or compact. It changes when the connection is
  // compacted or restored, and is gone when it is erased.
  using Handle = uint32_t;

  explicit ConnectionTable(uint64_t max_connections);

  // The connection with this key, restored whole if it was compact. Inline: it runs for every
  // segment, and restoring (rare) stays out of line.
  Connection* find(const ConnectionKey& key, uint64_t hash) {
    const uint32_t tag = static_cast<uint32_t>(hash);
    for (uint64_t position = hash & mask_;; position = (position + 1) & mask_) {
      const Slot& slot = slots_[position];
      if (slot.index == empty) return nullptr;
      if (slot.tag != tag) continue;
      if (is_compact(slot.index)) [[unlikely]] {
        if (compact_has_key(slot.index, key)) return restore(slot.index, hash);
      } else if (at(slot.index).has_key(key)) {
        return &at(slot.index);
      }
    }
  }
  // The same, first trying the slot prefetch_entry() found for this key a few segments ago
  // (`hint`, 0 for none): the table may have changed since, so the slot counts only if it
  // still holds a full entry with this key (keys are unique). That skips find()'s walk, whose
  // branches are a coin toss: whether a key sits in its home slot.
  Connection* find(const ConnectionKey& key, uint64_t hash, uint32_t hint) {
    if (hint != 0) {
      const Slot& slot = slots_[(hint - 1) & mask_];
      if (slot.tag == static_cast<uint32_t>(hash) && !is_compact(slot.index) && at(slot.index).has_key(key)) {
        return &at(slot.index);
      }
    }
    return find(key, hash);
  }
  // The connection with this key as it is (0 for none).
  Handle find_handle(const ConnectionKey& key, uint64_t hash);
  // Hints for a lookup soon: first the slot's cache line, later (once it is cached) the entry.
  // Always inlined: on its own GCC finds such a function free of side effects (a prefetch has
  // none) and deletes the calls.
  [[gnu::always_inline]] void prefetch_slot(uint64_t hash) const { __builtin_prefetch(&slots_[hash & mask_]); }
  // Returns that slot's position + 1 for find()'s hint when it holds a full entry, else 0.
  [[gnu::always_inline]] uint32_t prefetch_entry(uint64_t hash) const {
    // The first slot with the hash's tag on its probe path, as find() will walk it: with
    // linear probing a third of the keys sit past their home slot, and prefetching the home
    // slot's entry instead fetched four lines in vain and left the real one to miss.
    const uint32_t tag = static_cast<uint32_t>(hash);
    for (uint64_t position = hash & mask_;; position = (position + 1) & mask_) {
      const Slot& slot = slots_[position];
      if (slot.index == empty) return 0;
      if (slot.tag != tag) continue;
      if ((slot.index & compact_bit) != 0) return 0;
      prefetch(slot.index);
      return static_cast<uint32_t>(position + 1);
    }
  }

  // Inserts a fresh connection; the caller checks size() < capacity() first.
  Connection* insert(const ConnectionKey& key, uint64_t hash);
  void erase(Connection* connection) { erase(handle(*connection)); }
  void erase(Handle handle);
  // Marks a connection as just used and files it on `list`.
  void touch(Connection* connection, List list);

  Handle handle(const Connection& connection) const { return index_of(connection); }
  bool is_compact(Handle handle) const { return (handle & compact_bit) != 0; }
  // The full connection behind a handle that is not compact.
  Connection& full(Handle handle) { return at(handle); }
  // The connection's id (Connection::id), full or compact.
  uint64_t id(Handle handle);
  // The flags given to compact() (0 for a full connection).
  uint8_t compact_flags(Handle handle);
  // A copy of the connection, full or compact, as it would be if restored.
  void copy(Handle handle, ConnectionRecord& record);
  // The least recently used connection on `list`, or 0.
  Handle oldest(List list) const { return oldest_[list]; }
  // The clock of a connection's last touch (Connection::touched).
  uint32_t touched(Handle handle);
  // Calls `visit(handle)` on the connections of `list`, oldest first, while it returns true.
  template <typename Visit>
  void visit_oldest_first(List list, Visit&& visit) {
    for (Handle handle = oldest_[list]; handle != 0;) {
      const Handle newer = links(handle).newer;
      if (!visit(handle)) return;
      handle = newer;
    }
  }
  // Calls `visit(handle)` on every connection, in storage order (a sequential walk of the full
  // pools and the compact classes, not a chase of links).
  template <typename Visit>
  void visit_all(Visit&& visit) {
    for (size_t index = 1; index < pool4_.size(); ++index) {
      if (pool4_[index].list != 0) visit(static_cast<Handle>(index));
    }
    for (size_t index = 1; index < pool6_.size(); ++index) {
      if (pool6_[index].list != 0) visit(static_cast<Handle>(index) | v6_bit);
    }
    for (uint32_t size_class = 0; size_class < compact_classes; ++size_class) {
      for (uint32_t place = 0; place < classes_[size_class].used; ++place) {
        const Handle handle = compact_bit | size_class << class_shift | place;
        if (head(handle).list != 0) visit(handle);  // freed places have none
      }
    }
  }
  // Compacts the connections of `list` touched more than `idle_units` before `now` (in
  // Connection::touched units, modulo 2^32), oldest first, each as `decide(connection)` says: a
  // negative value keeps it full for now, otherwise the value is the flags the compact form
  // keeps (compact_flags). Those kept full, and those find() restored since, are tried again at
  // the next call.
  template <typename Decide>
  void compact_idle(List list, uint32_t now, uint32_t idle_units, Decide&& decide);
  // Keeps a log of the touches onto `list`, which compact_idle() then walks instead of the list
  // itself. For a list whose connections are compacted soon after they join it (the closing
  // one): the log holds only that long's touches, and its entries sit in order in memory, so
  // the connections can be fetched well ahead. Walking the list chased its links, one cache
  // miss after another.
  void log_touches(List list) { logged_[list] = true; }
  size_t logged_touches(List list) const { return touches_[list].size(); }
  uint64_t compact_count() const { return compact_count_; }
  // Whether compacting can still keep memory down: not once the full entries ever in use reach
  // the cap (as under a flood), since their memory stays and compact copies would add to it.
  bool compaction_pays() const { return pool4_.size() - 1 + pool6_.size() - 1 < max_connections_; }
  // Since the start: connections compacted, and restored.
  uint64_t compactions() const { return compactions_; }
  uint64_t restorations() const { return restorations_; }
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
  static constexpr uint8_t lists = 4;
  // IPv4 entries: a Connection alone, aligned so that each spans exactly four cache lines.
  struct alignas(64) Entry4 : Connection {};
  static_assert(sizeof(Entry4) == sizeof(Connection) && sizeof(Connection) % 64 == 0);
  static constexpr uint32_t empty = 0xffffffffu;
  // An index with this bit is into pool6_, without it into pool4_ (index 0 of each is unused,
  // so 0 means none in the idle lists' links).
  static constexpr uint32_t v6_bit = 0x80000000u;
  // An index with this bit is a compact entry: its size class in the next 6 bits, its place in
  // the class below them.
  static constexpr uint32_t compact_bit = 0x40000000u;
  static constexpr int class_shift = 24;
  static constexpr uint32_t place_mask = (1u << class_shift) - 1;
  struct Slot {
    uint32_t tag;    // the hash's low 32 bits: its home slot, and a filter before key compares
    uint32_t index;  // into pool4_, pool6_ (with v6_bit) or a compact class (with compact_bit), or `empty`
  };
  // The idle-list fields of a connection, full or compact.
  struct Links {
    uint32_t& older;
    uint32_t& newer;
    uint8_t& list;
  };
  // A compact entry: this head, the addresses (8 bytes for IPv4, 32 for IPv6), then the
  // connection's other fields in compact::encode's form. Entries come in size classes of 8 bytes.
  struct CompactHead {
    uint64_t key_tail;
    uint32_t older, newer;
    uint32_t touched;
    uint16_t body_size;
    uint8_t list;
    uint8_t flags;  // compact_flags() in the low bits, has_rare on top
  };
  static constexpr uint8_t has_rare = 0x80;
  static constexpr size_t compact_unit = 8;
  static constexpr size_t compact_classes = 64;  // entries of up to 512 bytes
  static constexpr uint32_t class_chunk = 4096;  // entries per allocation
  struct CompactClass {
    std::vector<std::unique_ptr<std::byte[]>> chunks;
    uint32_t used = 0;  // places handed out, freed ones included
    std::vector<uint32_t> free;
  };

  // Every line of the full entry at `index`.
  [[gnu::always_inline]] void prefetch(uint32_t index) const {
    if ((index & v6_bit) == 0) {
      // Four aligned lines.
      const auto* entry = reinterpret_cast<const char*>(&pool4_[index]);
      for (size_t line = 0; line < sizeof(Entry4); line += 64) __builtin_prefetch(entry + line);
    } else {
      // 288 bytes at any 8-byte offset: up to six lines.
      prefetch_object<sizeof(ConnectionRecord)>(&pool6_[index & ~v6_bit]);
    }
  }
  // Without a branch: IPv4 and IPv6 connections come mixed, so which pool was a coin toss.
  Connection& at(uint32_t index) {
    const uint32_t place = index & ~v6_bit;
    Connection* const four = pool4_.data() + place;  // both within the pools' reserved room
    Connection* const six = pool6_.data() + place;
    return *((index & v6_bit) == 0 ? four : six);
  }
  uint32_t index_of(const Connection& connection) const {
    if (!connection.is_v6()) return static_cast<uint32_t>(static_cast<const Entry4*>(&connection) - pool4_.data());
    return static_cast<uint32_t>(static_cast<const ConnectionRecord*>(&connection) - pool6_.data()) | v6_bit;
  }
  std::byte* compact_entry(uint32_t index) {
    const uint32_t size_class = (index & ~compact_bit) >> class_shift, place = index & place_mask;
    return classes_[size_class].chunks[place / class_chunk].get() +
           size_t{place % class_chunk} * (size_class + 1) * compact_unit;
  }
  CompactHead& head(uint32_t index) { return *std::launder(reinterpret_cast<CompactHead*>(compact_entry(index))); }
  Links links(uint32_t index) {
    if (is_compact(index)) {
      CompactHead& compact = head(index);
      return {compact.older, compact.newer, compact.list};
    }
    Connection& connection = at(index);
    return {connection.older, connection.newer, connection.list};
  }
  [[gnu::cold]] bool compact_has_key(uint32_t index, const ConnectionKey& key);
  ConnectionKey compact_key(uint32_t index);
  // Where a compact entry's encoded fields begin.
  const uint8_t* body(uint32_t index);
  // Writes the compact connection at `index` whole into `connection` (a default one; for IPv6 a
  // record).
  void unpack(uint32_t index, Connection& connection);
  // Gives the connection at `index` the new index `replacement` in its list and its slot.
  void replace(uint32_t index, uint32_t replacement, uint64_t hash);
  // Compacts the full connection at `index`, returning its new index, or `index` if it stays full.
  uint32_t compact(uint32_t index, uint8_t flags);
  // Restores the compact connection at `index` to a full entry in its place and returns it.
  [[gnu::cold]] Connection* restore(uint32_t index, uint64_t hash);
  void unlink(uint32_t index);
  void grow();
  uint32_t allocate(bool v6);
  void free_full(uint32_t index);  // frees a full entry's storage
  uint32_t allocate_compact(size_t size_class);

  uint64_t max_connections_;
  uint64_t size_ = 0;
  uint64_t compact_count_ = 0;
  uint64_t compactions_ = 0, restorations_ = 0;
  std::vector<Slot> slots_;
  uint64_t mask_ = 0;
  // Reserved whole at the start, so entries never move; index 0 of each is a sentinel.
  std::vector<Entry4> pool4_;
  std::vector<ConnectionRecord> pool6_;
  std::vector<uint32_t> free4_, free6_;
  std::array<CompactClass, compact_classes> classes_;
  std::deque<ConnectionRare> rare_pool_;  // index 0 is a sentinel; a deque keeps references valid
  std::vector<uint32_t> rare_free_;
  // Heads (newest) and tails (oldest) of the idle lists, by list number.
  uint32_t newest_[lists] = {0, 0, 0, 0};
  uint32_t oldest_[lists] = {0, 0, 0, 0};
  // Per list, the newest connection compact_idle() has passed (0 for none): the older ones are
  // compact, or waiting in retry_. A logged list (log_touches) keeps its place in its log
  // instead, and this stays 0.
  uint32_t frontier_[lists] = {0, 0, 0, 0};
  // Connections compact_idle() was told to keep full for now, with their ids and clocks (an
  // index may be reused by another connection, or the connection touched, before the retry).
  struct Retry {
    uint32_t index;
    uint32_t touched;
    uint64_t id;
  };
  std::vector<Retry> retry_[lists];
  // The touches of the logged lists (log_touches), oldest first, as Retry entries: one whose
  // connection was touched again since, freed or compacted is passed over.
  bool logged_[lists] = {false, false, false, false};
  ChunkedFifo<Retry, 4096> touches_[lists];
  // Whether a full index lies within its pool.
  bool in_pools(uint32_t index) const {
    return (index & v6_bit) == 0 ? index < pool4_.size() : (index & ~v6_bit) < pool6_.size();
  }
  // The full connection a logged touch names, if its index is in the pools (a hint only).
  [[gnu::always_inline]] void prefetch_touched(const Retry& entry) const {
    if (in_pools(entry.index)) prefetch(entry.index);
  }
  // Whether a Retry entry still names the full connection it was made for, on `list`.
  bool still(const Retry& entry, List list) {
    if (is_compact(entry.index) || !in_pools(entry.index)) return false;
    const Connection& connection = at(entry.index);
    return connection.list == list && connection.id() == entry.id && connection.touched == entry.touched;
  }
};

template <typename Decide>
void ConnectionTable::compact_idle(List list, uint32_t now, uint32_t idle_units, Decide&& decide) {
  auto compact_if = [&](uint32_t index, Connection& connection) {
    const int flags = decide(connection);
    if (flags >= 0) return compact(index, static_cast<uint8_t>(flags));
    retry_[list].push_back({index, connection.touched, connection.id()});
    return index;
  };
  // First those kept full last time, each still in its place if it is the same connection and
  // was not touched since (a touch moves it to the front of a list).
  std::vector<Retry> retry;
  retry.swap(retry_[list]);
  // Each is fetched ahead: a connection kept full is tried at several ticks (392,900 tries for
  // 173,000 compactions on the benchmark capture), though its recent packets often left it in
  // the cache.
  constexpr size_t retry_ahead = 16;
  for (size_t i = 0; i < retry.size(); ++i) {
    if (i + retry_ahead < retry.size()) prefetch_touched(retry[i + retry_ahead]);
    if (still(retry[i], list)) compact_if(retry[i].index, at(retry[i].index));
  }
  if (logged_[list]) {
    // The log is in the order of the touches, as the list is: the same connections come in the
    // same order, and the walk stops at the same one.
    ChunkedFifo<Retry, 4096>& log = touches_[list];
    constexpr size_t ahead = 16;  // 8 and 12 measured the same; the slots fetched too, no faster
    for (size_t i = 0; i < ahead && i < log.size(); ++i) prefetch_touched(log[i]);
    while (!log.empty() && now - log.front().touched > idle_units) {
      const Retry entry = log.front();
      log.pop_front();
      if (log.size() >= ahead) prefetch_touched(log[ahead - 1]);
      if (still(entry, list)) compact_if(entry.index, at(entry.index));
    }
    return;
  }
  // Then onwards from the frontier: every connection newer than it is full.
  for (uint32_t index = frontier_[list] == 0 ? oldest_[list] : links(frontier_[list]).newer; index != 0;) {
    if (is_compact(index) || now - at(index).touched <= idle_units) break;
    const uint32_t newer = at(index).newer;
    // Idle connections are out of the cache: the next one's lines come in while this one is
    // encoded.
    if (newer != 0 && !is_compact(newer)) prefetch(newer);
    frontier_[list] = compact_if(index, at(index));
    index = newer;
  }
}

}  // namespace rstscope
