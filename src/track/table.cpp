#include "track/table.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "track/compact.hpp"

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
    : max_connections_(std::clamp<uint64_t>(max_connections, 16, (uint64_t{1} << 30) - 1)) {  // indices stay below compact_bit
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

ConnectionTable::Handle ConnectionTable::find_handle(const ConnectionKey& key, uint64_t hash) {
  const uint32_t tag = static_cast<uint32_t>(hash);
  for (uint64_t position = hash & mask_;; position = (position + 1) & mask_) {
    const Slot& slot = slots_[position];
    if (slot.index == empty) return 0;
    if (slot.tag == tag && (is_compact(slot.index) ? compact_has_key(slot.index, key) : at(slot.index).has_key(key))) {
      return slot.index;
    }
  }
}

ConnectionKey ConnectionTable::compact_key(uint32_t index) {
  const CompactHead& compact = head(index);
  const std::byte* addresses = compact_entry(index) + sizeof(CompactHead);
  ConnectionKey key;
  key.tail = compact.key_tail;
  if (key.family() == 6) {
    std::memcpy(key.low_bytes.data(), addresses, 16);
    std::memcpy(key.high_bytes.data(), addresses + 16, 16);
  } else {
    std::memcpy(key.low_bytes.data(), addresses, 4);
    std::memcpy(key.high_bytes.data(), addresses + 4, 4);
  }
  return key;
}

bool ConnectionTable::compact_has_key(uint32_t index, const ConnectionKey& key) {
  return head(index).key_tail == key.tail && compact_key(index) == key;
}

void ConnectionTable::replace(uint32_t index, uint32_t replacement, uint64_t hash) {
  const Links moved = links(replacement);  // already holds the connection's list fields
  if (moved.older != 0) links(moved.older).newer = replacement;
  if (moved.newer != 0) links(moved.newer).older = replacement;
  if (moved.list != 0) {
    if (newest_[moved.list] == index) newest_[moved.list] = replacement;
    if (oldest_[moved.list] == index) oldest_[moved.list] = replacement;
    if (frontier_[moved.list] == index) frontier_[moved.list] = replacement;
  }
  uint64_t position = hash & mask_;
  while (slots_[position].index != index) position = (position + 1) & mask_;
  slots_[position].index = replacement;
}

uint32_t ConnectionTable::allocate_compact(size_t size_class) {
  CompactClass& entries = classes_[size_class];
  uint32_t place;
  if (!entries.free.empty()) {
    place = entries.free.back();
    entries.free.pop_back();
  } else {
    place = entries.used++;
    if (place / class_chunk == entries.chunks.size()) {
      // Not zeroed: pages are only used as entries are written.
      entries.chunks.emplace_back(new std::byte[size_t{class_chunk} * (size_class + 1) * compact_unit]);
    }
  }
  return compact_bit | static_cast<uint32_t>(size_class) << class_shift | place;
}

uint32_t ConnectionTable::compact(uint32_t index, uint8_t flags) {
  Connection& connection = at(index);
  const uint64_t hash = connection.key().hash();
  prefetch_slot(hash);  // for replace(), after the encoding
  uint8_t body[compact::max_size];
  const size_t body_size = compact::encode(connection, body);
  const bool v6 = connection.is_v6();
  const size_t address_bytes = v6 ? 32 : 8;
  const size_t bytes = sizeof(CompactHead) + address_bytes + body_size;
  const size_t size_class = (bytes + compact_unit - 1) / compact_unit - 1;
  // Kept full when that is no larger, or its class is full.
  if (bytes >= (v6 ? sizeof(ConnectionRecord) : sizeof(Entry4)) || size_class >= compact_classes) return index;
  if (classes_[size_class].free.empty() && classes_[size_class].used > place_mask) return index;
  const uint32_t compact_index = allocate_compact(size_class);
  std::byte* entry = compact_entry(compact_index);
  new (entry) CompactHead{connection.key_tail,
                          connection.older,
                          connection.newer,
                          connection.touched,
                          static_cast<uint16_t>(body_size),
                          connection.list,
                          static_cast<uint8_t>((flags & ~has_rare) | (connection.rare != 0 ? has_rare : 0))};
  if (v6) {
    const auto& record = static_cast<const ConnectionRecord&>(connection);
    std::memcpy(entry + sizeof(CompactHead), record.low6.data(), 16);
    std::memcpy(entry + sizeof(CompactHead) + 16, record.high6.data(), 16);
  } else {
    std::memcpy(entry + sizeof(CompactHead), &connection.v4_addresses, 8);
  }
  std::memcpy(entry + sizeof(CompactHead) + address_bytes, body, body_size);
  replace(index, compact_index, hash);
  free_full(index);
  ++compact_count_;
  ++compactions_;
  return compact_index;
}

Connection* ConnectionTable::restore(uint32_t index, uint64_t hash) {
  const CompactHead& compact = head(index);
  const uint32_t full_index = allocate(compact.key_tail >> 32 == 6);
  Connection& connection = at(full_index);  // a default entry
  unpack(index, connection);
  replace(index, full_index, hash);
  head(index).list = 0;  // freed (visit_all skips it)
  classes_[(index & ~compact_bit) >> class_shift].free.push_back(index & place_mask);
  --compact_count_;
  ++restorations_;
  // Behind its list's frontier, in its place: compact_idle() tries it again.
  if (connection.list != 0) retry_[connection.list].push_back({full_index, connection.touched, connection.id()});
  return &connection;
}

uint64_t ConnectionTable::id(Handle handle) {
  if (!is_compact(handle)) return at(handle).id();
  return compact::decode_id(body(handle));
}

uint8_t ConnectionTable::compact_flags(Handle handle) {
  return is_compact(handle) ? static_cast<uint8_t>(head(handle).flags & ~has_rare) : 0;
}

uint32_t ConnectionTable::touched(Handle handle) {
  return is_compact(handle) ? head(handle).touched : at(handle).touched;
}

void ConnectionTable::copy(Handle handle, ConnectionRecord& record) {
  if (!is_compact(handle)) {
    record = ConnectionRecord(at(handle));
    return;
  }
  record = ConnectionRecord{};
  unpack(handle, record);
}

const uint8_t* ConnectionTable::body(uint32_t index) {
  const size_t address_bytes = head(index).key_tail >> 32 == 6 ? 32 : 8;
  return reinterpret_cast<const uint8_t*>(compact_entry(index) + sizeof(CompactHead) + address_bytes);
}

void ConnectionTable::unpack(uint32_t index, Connection& connection) {
  const CompactHead& compact = head(index);
  connection.set_key(compact_key(index));
  compact::decode(body(index), compact.body_size, connection);
  connection.older = compact.older;
  connection.newer = compact.newer;
  connection.touched = compact.touched;
  connection.list = compact.list;
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
  const uint32_t index = allocate(v6);  // a default entry: fresh, or reset when it was freed
  at(index).set_key(key);
  uint64_t position = hash & mask_;
  while (slots_[position].index != empty) position = (position + 1) & mask_;
  slots_[position] = Slot{static_cast<uint32_t>(hash), index};
  ++size_;
  return &at(index);
}

void ConnectionTable::erase(Handle index) {
  uint64_t hash;
  uint32_t rare = 0;
  if (is_compact(index)) {
    hash = compact_key(index).hash();
    if ((head(index).flags & has_rare) != 0) {
      ConnectionRecord record;
      copy(index, record);
      rare = record.rare;
    }
  } else {
    hash = at(index).key().hash();
    rare = at(index).rare;
  }
  unlink(index);
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
  if (rare != 0) rare_free_.push_back(rare);
  if (is_compact(index)) {
    classes_[(index & ~compact_bit) >> class_shift].free.push_back(index & place_mask);
    --compact_count_;
  } else {
    free_full(index);
  }
  --size_;
}

void ConnectionTable::free_full(uint32_t index) {
  if ((index & v6_bit) != 0) {
    pool6_[index & ~v6_bit] = ConnectionRecord{};
    free6_.push_back(index);
  } else {
    pool4_[index] = Entry4{};
    free4_.push_back(index);
  }
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
  const Links connection = links(index);
  if (connection.list == 0) return;
  const uint8_t list = connection.list;
  if (connection.older != 0) links(connection.older).newer = connection.newer;
  if (connection.newer != 0) links(connection.newer).older = connection.older;
  if (newest_[list] == index) newest_[list] = connection.older;
  if (oldest_[list] == index) oldest_[list] = connection.newer;
  if (frontier_[list] == index) frontier_[list] = connection.older;
  connection.older = connection.newer = 0;
  connection.list = 0;
}

void ConnectionTable::touch(Connection* connection, List list) {
  const uint32_t index = index_of(*connection);
  if (logged_[list]) {
    // Once compaction stops paying it never pays again (the pools only grow), so the log ends.
    if (compaction_pays()) {
      touches_[list].push_back({index, connection->touched, connection->id()});
    } else if (!touches_[list].empty()) {
      touches_[list] = ChunkedFifo<Retry, 4096>();
    }
  }
  if (connection->list == list && newest_[list] == index) return;
  unlink(index);
  connection->list = list;
  connection->older = newest_[list];
  connection->newer = 0;
  if (newest_[list] != 0) links(newest_[list]).newer = index;
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
  std::fill(std::begin(frontier_), std::end(frontier_), 0u);
  for (auto& retry : retry_) retry.clear();
  for (auto& log : touches_) log = ChunkedFifo<Retry, 4096>();
  for (CompactClass& entries : classes_) entries = CompactClass{};
  compact_count_ = 0;
  size_ = 0;
}

}  // namespace rstscope
