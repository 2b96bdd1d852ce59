// The connection table keeps IPv4 connections with their addresses in one word and IPv6 ones as
// records with the addresses after them, in two pools behind one index: every key must come back
// out whole, lookups must tell the families apart, and the idle lists must cross the pools.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "track/table.hpp"

namespace rstscope::testing {
namespace {

Segment segment_between(const Address& src, uint16_t sport, const Address& dst, uint16_t dport) {
  Segment segment;
  segment.src = src;
  segment.dst = dst;
  segment.sport = sport;
  segment.dport = dport;
  return segment;
}

Address v4(uint32_t host) { return Address::v4(host); }

Address v6(uint64_t high, uint64_t low) {
  uint8_t bytes[16];
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<uint8_t>(high >> (56 - 8 * i));
    bytes[8 + i] = static_cast<uint8_t>(low >> (56 - 8 * i));
  }
  return Address::v6(bytes);
}

bool same_key(const ConnectionKey& a, const ConnectionKey& b) { return a == b; }

// The key's low side as the order of addresses then ports defines it, written the plain way.
ConnectionKey key_by_definition(const Segment& segment) {
  const bool source_low = segment.src < segment.dst ||
                          (segment.src == segment.dst && segment.sport <= segment.dport);
  const Address& low = source_low ? segment.src : segment.dst;
  const Address& high = source_low ? segment.dst : segment.src;
  ConnectionKey key;
  key.low_bytes = low.bytes;
  key.high_bytes = high.bytes;
  key.tail = uint64_t{source_low ? segment.sport : segment.dport} |
             uint64_t{source_low ? segment.dport : segment.sport} << 16 | uint64_t{low.family} << 32;
  return key;
}

TEST(ConnectionKey, LowSideIsTheLowerAddressThenPortInBothDirections) {
  std::mt19937_64 random(11);
  // Few distinct values, so that high words, whole addresses and ports often tie.
  auto pick = [&](std::initializer_list<uint64_t> values) { return *(values.begin() + random() % values.size()); };
  for (size_t i = 0; i < 200000; ++i) {
    auto address = [&]() {
      switch (random() % 4) {
        case 0: return v4(static_cast<uint32_t>(pick({0, 1, 0xc0000201, 0xc0000202, 0xffffffff})));
        case 1: return v6(pick({0, 1, 0x20010db800000000ull, ~0ull}), pick({0, 1, 0x8000000000000000ull, ~0ull}));
        case 2: return v6(random(), random());
        default: return v4(static_cast<uint32_t>(random()));
      }
    };
    Segment segment = segment_between(address(), static_cast<uint16_t>(pick({0, 1, 443, 65535})), address(),
                                      static_cast<uint16_t>(pick({0, 1, 443, 65535})));
    if (i % 5 == 0) segment.dst = segment.src;
    if (i % 7 == 0) segment.src.family = static_cast<uint8_t>(pick({0, 4, 6}));
    const ConnectionKey key = ConnectionKey::of(segment);
    ASSERT_TRUE(same_key(key, key_by_definition(segment))) << i;
    Segment reply = segment_between(segment.dst, segment.dport, segment.src, segment.sport);
    ASSERT_TRUE(same_key(ConnectionKey::of(reply), key)) << i;
    ASSERT_EQ(key.hash(), ConnectionKey::of(reply).hash());
  }
}

TEST(ConnectionTable, KeysOfBothFamiliesComeBackWholeAndStayApart) {
  std::mt19937_64 random(7);
  ConnectionTable table(1 << 16);
  std::vector<ConnectionKey> keys;
  std::map<uint64_t, size_t> by_id;  // first_frame -> index in keys
  for (size_t i = 0; i < 6000; ++i) {
    const uint16_t sport = static_cast<uint16_t>(random());
    const uint16_t dport = static_cast<uint16_t>(random());
    Segment segment;
    switch (i % 3) {
      case 0:  // random IPv4
        segment = segment_between(v4(static_cast<uint32_t>(random())), sport, v4(static_cast<uint32_t>(random())), dport);
        break;
      case 1:  // IPv6 whose first 4 bytes of each address look like the IPv4 neighbour's
        segment = segment_between(v6(keys.back().v4_word() << 32, random()), sport,
                                  v6(keys.back().v4_word() & 0xffffffff00000000ull, random()), dport);
        break;
      default:  // the same ports as the last IPv4 one, between the same hosts' IPv6 twins
        segment = segment_between(v6(0x20010db800000000ull, i), keys[keys.size() - 2].low_port(),
                                  v6(0x20010db800000000ull, i + 1), keys[keys.size() - 2].high_port());
        break;
    }
    const ConnectionKey key = ConnectionKey::of(segment);
    ASSERT_EQ(table.find(key, key.hash()), nullptr);
    Connection* connection = table.insert(key, key.hash());
    connection->first_frame = i + 1;
    table.touch(connection, ConnectionTable::active);
    keys.push_back(key);
    by_id[i + 1] = i;
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    Connection* connection = table.find(keys[i], keys[i].hash());
    ASSERT_NE(connection, nullptr);
    EXPECT_EQ(connection->first_frame, i + 1);
    EXPECT_TRUE(same_key(connection->key(), keys[i]));
    EXPECT_EQ(connection->is_v6(), keys[i].family() == 6);
  }
  // Erase every other one, then the rest are still found and the erased ones are not.
  for (size_t i = 0; i < keys.size(); i += 2) table.erase(table.find(keys[i], keys[i].hash()));
  EXPECT_EQ(table.size(), keys.size() / 2);
  for (size_t i = 0; i < keys.size(); ++i) {
    Connection* connection = table.find(keys[i], keys[i].hash());
    if (i % 2 == 0) {
      EXPECT_EQ(connection, nullptr);
    } else {
      ASSERT_NE(connection, nullptr);
      EXPECT_EQ(connection->first_frame, i + 1);
    }
  }
  // Reinserted into freed entries of the right pool, fresh and with their own keys.
  for (size_t i = 0; i < keys.size(); i += 2) {
    Connection* connection = table.insert(keys[i], keys[i].hash());
    EXPECT_EQ(connection->first_frame, 0u);
    EXPECT_EQ(connection->list, 0);
    connection->first_frame = i + 1;
    table.touch(connection, ConnectionTable::closing);
  }
  size_t visited = 0;
  table.visit_all([&](ConnectionTable::Handle handle) {
    ++visited;
    const Connection& connection = table.full(handle);
    EXPECT_TRUE(same_key(connection.key(), keys[by_id.at(connection.first_frame)]));
  });
  EXPECT_EQ(visited, keys.size());
}

TEST(ConnectionTable, IdleListsKeepTheirOrderAcrossFamilies) {
  ConnectionTable table(64);
  std::vector<ConnectionKey> keys;
  for (uint32_t i = 0; i < 40; ++i) {
    const Segment segment = i % 2 == 0 ? segment_between(v4(0xc0000200 + i), 40000, v4(0xc6336401), 80)
                                       : segment_between(v6(0x20010db8ull << 32, i), 40000, v6(0x20010db8ull << 32, 999), 80);
    keys.push_back(ConnectionKey::of(segment));
    Connection* connection = table.insert(keys.back(), keys.back().hash());
    connection->first_frame = i + 1;
    table.touch(connection, ConnectionTable::active);
  }
  // Touch the odd ones again (IPv6): they move behind the even ones.
  for (uint32_t i = 1; i < 40; i += 2) table.touch(table.find(keys[i], keys[i].hash()), ConnectionTable::active);
  std::vector<uint64_t> order;
  table.visit_oldest_first(ConnectionTable::active, [&](ConnectionTable::Handle handle) {
    order.push_back(table.id(handle));
    return true;
  });
  std::vector<uint64_t> expected;
  for (uint64_t i = 0; i < 40; i += 2) expected.push_back(i + 1);
  for (uint64_t i = 1; i < 40; i += 2) expected.push_back(i + 1);
  EXPECT_EQ(order, expected);
  // Erasing from the middle and the ends of a list keeps it linked.
  table.erase(table.find(keys[0], keys[0].hash()));
  table.erase(table.find(keys[39], keys[39].hash()));
  table.erase(table.find(keys[21], keys[21].hash()));
  order.clear();
  table.visit_oldest_first(ConnectionTable::active, [&](ConnectionTable::Handle handle) {
    order.push_back(table.id(handle));
    return true;
  });
  std::erase(expected, 1u);
  std::erase(expected, 40u);
  std::erase(expected, 22u);
  EXPECT_EQ(order, expected);
  EXPECT_EQ(table.id(table.oldest(ConnectionTable::active)), 3u);
}

TEST(ConnectionRecord, CopiesKeepIpv6Addresses) {
  ConnectionTable table(16);
  const Address client = v6(0x20010db800000001ull, 0x10);
  const Address server = v6(0x20010db800000002ull, 0x20);
  const ConnectionKey key = ConnectionKey::of(segment_between(client, 50000, server, 443));
  Connection* connection = table.insert(key, key.hash());
  connection->originator_is_low = key.from_low(segment_between(client, 50000, server, 443));
  const ConnectionRecord copy(*connection);
  table.erase(connection);  // the copy does not depend on the table's entry
  EXPECT_EQ(copy.originator_address(), client);
  EXPECT_EQ(copy.responder_address(), server);
  EXPECT_EQ(copy.originator_port(), 50000);
  EXPECT_EQ(copy.responder_port(), 443);
  EXPECT_TRUE(same_key(copy.key(), key));
  const ConnectionRecord again(copy);
  EXPECT_TRUE(same_key(again.key(), key));
}

TEST(ConnectionRecord, HasKeyComparesEveryPartOfTheKey) {
  ConnectionTable table(16);
  const Address a6 = v6(0x20010db8ull << 32, 1), b6 = v6(0x20010db8ull << 32, 2);
  const Address a4 = v4(0xc0000201), b4 = v4(0xc0000202);
  const ConnectionKey key6 = ConnectionKey::of(segment_between(a6, 1000, b6, 2000));
  const ConnectionKey key4 = ConnectionKey::of(segment_between(a4, 1000, b4, 2000));
  const Connection* entry6 = table.insert(key6, key6.hash());
  const Connection* entry4 = table.insert(key4, key4.hash());
  EXPECT_TRUE(entry6->has_key(key6));
  EXPECT_TRUE(entry4->has_key(key4));
  EXPECT_FALSE(entry6->has_key(key4));
  EXPECT_FALSE(entry4->has_key(key6));
  // One byte or one port different, anywhere.
  for (size_t byte = 0; byte < 16; ++byte) {
    for (bool low : {true, false}) {
      ConnectionKey changed = key6;
      (low ? changed.low_bytes : changed.high_bytes)[byte] ^= 0x40;
      EXPECT_FALSE(entry6->has_key(changed)) << byte << low;
      if (byte < 4) {
        changed = key4;
        (low ? changed.low_bytes : changed.high_bytes)[byte] ^= 0x40;
        EXPECT_FALSE(entry4->has_key(changed)) << byte << low;
      }
    }
  }
  for (int shift : {0, 16}) {
    ConnectionKey changed = key6;
    changed.tail ^= uint64_t{1} << shift;
    EXPECT_FALSE(entry6->has_key(changed));
    changed = key4;
    changed.tail ^= uint64_t{1} << shift;
    EXPECT_FALSE(entry4->has_key(changed));
  }
}

TEST(ConnectionRecord, Ipv4ConnectionsKeepBothAddressesInOneWord) {
  ConnectionTable table(16);
  const Address client = v4(0xc0000207), server = v4(0xcb007109);
  const Segment segment = segment_between(client, 1234, server, 22);
  const ConnectionKey key = ConnectionKey::of(segment);
  Connection* connection = table.insert(key, key.hash());
  connection->originator_is_low = key.from_low(segment);
  EXPECT_FALSE(connection->is_v6());
  EXPECT_EQ(connection->originator_address(), client);
  EXPECT_EQ(connection->responder_address(), server);
  EXPECT_EQ(ConnectionRecord(*connection).originator_address(), client);
  static_assert(sizeof(Connection) == 256);
}

}  // namespace
}  // namespace rstscope::testing

namespace rstscope::testing {
namespace {

// Gives a connection field values of every size, so a compact form that dropped one would show.
void fill(Connection& connection, uint64_t i, std::mt19937_64& random) {
  connection.first_frame = 1000 + i;
  connection.first_ts = 1'700'000'000'000'000'000 + static_cast<int64_t>(i) * 1000;
  connection.time_shift = static_cast<uint8_t>(i % 3);
  connection.established = i % 2 == 0;
  connection.resets = static_cast<uint32_t>(i % 4);
  connection.history.add('s', true);
  connection.history.add('h', false);
  for (Endpoint* side : {&connection.originator, &connection.responder}) {
    side->isn = static_cast<uint32_t>(random());
    side->next_seq = side->isn + static_cast<uint32_t>(random() % 100000);
    side->packets = static_cast<uint32_t>(random() % 50);
    side->last_ts.ticks = static_cast<uint32_t>(random());
    side->last_frame.offset = static_cast<uint32_t>(random() % 5000);
    side->window = static_cast<uint16_t>(random());
    side->ttl_min = 60;
    side->ttl_max = 64;
    side->fin_seen = i % 3 == 0;
  }
}

// The same connection, but for its idle-list links (which later touches of others change).
bool same_bytes(const Connection& a, const ConnectionRecord& b) {
  ConnectionRecord linked(b);
  linked.older = a.older;
  linked.newer = a.newer;
  return std::memcmp(static_cast<const void*>(&a), static_cast<const void*>(&linked), sizeof(Connection)) == 0;
}

TEST(ConnectionTable, CompactConnectionsComeBackWholeInTheirPlace) {
  std::mt19937_64 random(11);
  ConnectionTable table(1024);
  std::vector<ConnectionKey> keys;
  std::vector<ConnectionRecord> originals;
  const ConnectionTable::List lists[] = {ConnectionTable::active, ConnectionTable::closing, ConnectionTable::embryonic};
  for (uint32_t i = 0; i < 300; ++i) {
    const Segment segment = i % 2 == 0 ? segment_between(v4(0xc0000200 + i), 40000, v4(0xc6336401), 80)
                                       : segment_between(v6(0x20010db8ull << 32, i), 40000, v6(0x20010db8ull << 32, 999), 80);
    keys.push_back(ConnectionKey::of(segment));
    Connection* connection = table.insert(keys.back(), keys.back().hash());
    fill(*connection, i, random);
    if (i % 10 == 0) table.rare(*connection).responder.keepalives = 3;
    connection->touched = i;
    table.touch(connection, lists[i % 3]);
    originals.emplace_back(*connection);
  }
  auto order = [&](ConnectionTable::List list) {
    std::vector<uint64_t> ids;
    table.visit_oldest_first(list, [&](ConnectionTable::Handle handle) {
      ids.push_back(table.id(handle));
      return true;
    });
    return ids;
  };
  std::vector<uint64_t> before[4];
  for (const auto list : lists) before[list] = order(list);
  // Idle for more than 100 units at 1000: all of them. Those of ids divisible by 7 stay full for now.
  auto keep_sevens = [](const Connection& connection) { return connection.id() % 7 == 0 ? -1 : int(connection.id() % 2); };
  for (const auto list : lists) table.compact_idle(list, 1000, 100, keep_sevens);
  const uint64_t sevens = (1299 / 7) - (999 / 7);
  EXPECT_EQ(table.compact_count(), 300 - sevens);
  EXPECT_EQ(table.size(), 300u);
  for (const auto list : lists) EXPECT_EQ(order(list), before[list]);
  size_t visited = 0;
  table.visit_all([&](ConnectionTable::Handle handle) {
    ++visited;
    const uint64_t i = table.id(handle) - 1000;
    ConnectionRecord copy;
    table.copy(handle, copy);
    EXPECT_TRUE(same_bytes(copy, originals[i])) << i;
    EXPECT_TRUE(same_key(copy.key(), keys[i]));
    EXPECT_EQ(table.is_compact(handle), (1000 + i) % 7 != 0);
    if (table.is_compact(handle)) {
      EXPECT_EQ(table.compact_flags(handle), (1000 + i) % 2);
    }
  });
  EXPECT_EQ(visited, 300u);
  // A lookup restores a compact connection whole, in its place in its list.
  Connection* restored = table.find(keys[2], keys[2].hash());
  ASSERT_NE(restored, nullptr);
  EXPECT_TRUE(same_bytes(*restored, originals[2]));
  EXPECT_TRUE(same_key(restored->key(), keys[2]));
  EXPECT_EQ(table.restorations(), 1u);
  Connection* with_rare = table.find(keys[10], keys[10].hash());
  ASSERT_NE(with_rare, nullptr);
  EXPECT_TRUE(same_bytes(*with_rare, originals[10]));
  EXPECT_EQ(table.rare(*with_rare).responder.keepalives, 3);
  EXPECT_EQ(table.restorations(), 2u);
  for (const auto list : lists) EXPECT_EQ(order(list), before[list]);
  // The ones kept full, and the restored ones, are tried again.
  for (const auto list : lists) table.compact_idle(list, 1000, 100, [](const Connection&) { return 0; });
  EXPECT_EQ(table.compact_count(), 300u);
  // Erasing compact connections keeps the lists linked; their keys are gone.
  for (const size_t i : {size_t{0}, size_t{3}, size_t{299}, size_t{150}}) {
    Connection* connection = table.find(keys[i], keys[i].hash());
    ASSERT_NE(connection, nullptr);
    table.erase(connection);
    EXPECT_EQ(table.find(keys[i], keys[i].hash()), nullptr);
    std::erase(before[lists[i % 3]], 1000 + i);
  }
  // And erased without a lookup: the oldest of a list, and one with a rare part.
  const ConnectionTable::Handle oldest = table.oldest(ConnectionTable::closing);
  ASSERT_TRUE(table.is_compact(oldest));
  EXPECT_EQ(table.id(oldest), 1001u);
  table.erase(oldest);
  std::erase(before[ConnectionTable::closing], 1001u);
  EXPECT_EQ(table.find(keys[1], keys[1].hash()), nullptr);
  ConnectionTable::Handle twenty = 0;
  table.visit_all([&](ConnectionTable::Handle handle) {
    if (table.id(handle) == 1020) twenty = handle;
  });
  ASSERT_TRUE(table.is_compact(twenty));
  table.erase(twenty);
  std::erase(before[lists[20 % 3]], 1020u);
  EXPECT_EQ(table.find(keys[20], keys[20].hash()), nullptr);
  for (const auto list : lists) EXPECT_EQ(order(list), before[list]);
  EXPECT_EQ(table.size(), 294u);
  // New connections go to the front; a later pass compacts only those idle long enough.
  const uint64_t compact_before = table.compact_count();
  for (uint32_t i = 0; i < 20; ++i) {
    const ConnectionKey key = ConnectionKey::of(segment_between(v4(0xcb007100 + i), 1234, v4(0xcb007101 + i), 80));
    Connection* connection = table.insert(key, key.hash());
    connection->first_frame = 5000 + i;
    connection->touched = 2000 + i * 100;
    table.touch(connection, ConnectionTable::active);
  }
  table.compact_idle(ConnectionTable::active, 3000, 500, [](const Connection&) { return 0; });
  EXPECT_EQ(table.compact_count(), compact_before + 5);  // touched 2000..2400
}

// A list whose touches are logged (log_touches) is compacted from the log instead of by a walk
// of its links: the same connections, in the same order, stopping at the same one, through
// touches again, erasures (whose places new connections take), lookups that restore compact
// connections, and connections kept full for a while.
TEST(ConnectionTable, ALoggedListCompactsWhatAWalkOfTheListWould) {
  std::mt19937_64 random(5);
  ConnectionTable walked(4096), logged(4096);
  logged.log_touches(ConnectionTable::closing);
  ConnectionTable* const tables[] = {&walked, &logged};
  std::vector<ConnectionKey> keys;
  std::vector<bool> live;
  uint32_t now = 0;
  // Kept full while the frame's low bits say so this round: retried at later calls.
  uint64_t round = 0;
  auto decide = [&](const Connection& connection) { return (connection.id() + round) % 5 == 0 ? -1 : 0; };
  auto compacted_ids = [](ConnectionTable& table) {
    std::vector<uint64_t> ids;
    table.visit_all([&](ConnectionTable::Handle handle) {
      if (table.is_compact(handle)) ids.push_back(table.id(handle));
    });
    std::sort(ids.begin(), ids.end());
    return ids;
  };
  auto order = [](ConnectionTable& table, ConnectionTable::List list) {
    std::vector<uint64_t> ids;
    table.visit_oldest_first(list, [&](ConnectionTable::Handle handle) {
      ids.push_back(table.id(handle));
      return true;
    });
    return ids;
  };
  for (uint32_t step = 0; step < 6000; ++step) {
    now += static_cast<uint32_t>(random() % 3);
    const uint64_t pick = random() % 100;
    if (pick < 40 || keys.empty()) {
      // A new connection, half of them IPv6, on the closing list or the active one.
      const uint32_t i = static_cast<uint32_t>(keys.size());
      const Segment segment = i % 2 == 0 ? segment_between(v4(0xc0000000 + i), 40000, v4(0xc6336401), 80)
                                         : segment_between(v6(0x20010db8ull << 32, i), 40000, v6(0x20010db8ull << 32, 1), 80);
      keys.push_back(ConnectionKey::of(segment));
      live.push_back(true);
      const auto list = random() % 4 == 0 ? ConnectionTable::active : ConnectionTable::closing;
      for (ConnectionTable* table : tables) {
        Connection* connection = table->insert(keys.back(), keys.back().hash());
        connection->first_frame = 1000 + i;
        connection->touched = now;
        table->touch(connection, list);
      }
      continue;
    }
    const size_t i = random() % keys.size();
    if (!live[i]) continue;
    if (pick < 70) {
      // Touched again (a lookup first, which restores a compact one), maybe onto the other list.
      const auto list = random() % 3 == 0 ? ConnectionTable::active : ConnectionTable::closing;
      for (ConnectionTable* table : tables) {
        Connection* connection = table->find(keys[i], keys[i].hash());
        ASSERT_NE(connection, nullptr);
        connection->touched = now;
        table->touch(connection, list);
      }
    } else if (pick < 80) {
      live[i] = false;
      for (ConnectionTable* table : tables) table->erase(table->find(keys[i], keys[i].hash()));
    } else if (pick < 90) {
      ++round;
      for (ConnectionTable* table : tables) table->compact_idle(ConnectionTable::closing, now, 20, decide);
      ASSERT_EQ(compacted_ids(walked), compacted_ids(logged)) << "step " << step;
      ASSERT_EQ(walked.compact_count(), logged.compact_count());
    }
  }
  for (const auto list : {ConnectionTable::closing, ConnectionTable::active}) {
    EXPECT_EQ(order(walked, list), order(logged, list));
  }
  EXPECT_GT(logged.compactions(), 500u);
  EXPECT_GT(logged.restorations(), 50u);
  EXPECT_EQ(walked.logged_touches(ConnectionTable::closing), 0u);
  // The log keeps only the touches not yet old enough, and those behind them.
  logged.compact_idle(ConnectionTable::closing, now + 1000, 20, [](const Connection&) { return 0; });
  EXPECT_EQ(logged.logged_touches(ConnectionTable::closing), 0u);
}

// Once the full entries ever in use reach the cap, compaction no longer pays and never will
// again: the log of touches ends then, so it cannot grow without bound under a flood.
TEST(ConnectionTable, TheTouchLogEndsWhenCompactionStopsPaying) {
  ConnectionTable table(64);
  table.log_touches(ConnectionTable::closing);
  std::vector<ConnectionKey> keys;
  for (uint32_t i = 0; i < 64; ++i) {
    keys.push_back(ConnectionKey::of(segment_between(v4(0xc0000000 + i), 40000, v4(0xc6336401), 80)));
    Connection* connection = table.insert(keys.back(), keys.back().hash());
    connection->first_frame = 1 + i;
    connection->touched = i;
    table.touch(connection, ConnectionTable::closing);
    if (i == 62) {
      EXPECT_TRUE(table.compaction_pays());
      EXPECT_EQ(table.logged_touches(ConnectionTable::closing), 63u);
    }
  }
  // The 64th full entry reached the cap: its touch ended the log.
  EXPECT_FALSE(table.compaction_pays());
  EXPECT_EQ(table.logged_touches(ConnectionTable::closing), 0u);
  for (uint32_t round = 0; round < 1000; ++round) {
    for (const ConnectionKey& key : keys) {
      Connection* connection = table.find(key, key.hash());
      connection->touched = 100 + round;
      table.touch(connection, ConnectionTable::closing);
    }
  }
  EXPECT_EQ(table.logged_touches(ConnectionTable::closing), 0u);
}

// A lookup may start from the slot where the prefetch found its key a few segments earlier. By
// then the table may have changed: entries erased (the deletion shifts others back), inserted,
// moved by growth, or made compact. The hint must never change what a lookup finds.
TEST(ConnectionTable, AStaleHintNeverChangesWhatALookupFinds) {
  std::mt19937_64 random(19);
  ConnectionTable table(1 << 16);
  auto segment_for = [&](size_t i) {
    return i % 2 == 0 ? segment_between(v4(static_cast<uint32_t>(random())), static_cast<uint16_t>(random()),
                                        v4(static_cast<uint32_t>(random())), 443)
                      : segment_between(v6(0x20010db8ull << 32, random()), static_cast<uint16_t>(random()),
                                        v6(0x20010db8ull << 32, 7), 443);
  };
  std::vector<ConnectionKey> keys;
  // Two keys whose hashes share the low 32 bits (the slot's tag): a hint to one's slot matches
  // the other's tag, and only the key itself tells them apart.
  std::map<uint32_t, ConnectionKey> by_tag;
  for (size_t i = 0; keys.size() < 2; ++i) {
    ASSERT_LT(i, 2'000'000u) << "no two tags alike";
    const ConnectionKey key = ConnectionKey::of(segment_for(i));
    const auto [place, fresh] = by_tag.emplace(static_cast<uint32_t>(key.hash()), key);
    if (!fresh && !(place->second == key)) {
      keys.push_back(place->second);
      keys.push_back(key);
    }
  }
  for (size_t i = 0; i < 3000; ++i) keys.push_back(ConnectionKey::of(segment_for(i)));
  uint64_t frame = 0;
  auto insert = [&](const ConnectionKey& key) {
    Connection* connection = table.insert(key, key.hash());
    connection->first_frame = ++frame;
    connection->touched = 0;
    table.touch(connection, ConnectionTable::closing);
  };
  for (size_t i = 0; i < keys.size() / 2; ++i) insert(keys[i]);
  std::vector<uint32_t> hints;
  for (const ConnectionKey& key : keys) hints.push_back(table.prefetch_entry(key.hash()));
  EXPECT_NE(hints[0], 0u);
  EXPECT_NE(hints[1], 0u);
  // Every fresh hint of a key in the table leads to it.
  for (size_t i = 0; i < keys.size() / 2; ++i) {
    EXPECT_EQ(table.find(keys[i], keys[i].hash(), hints[i]), table.find(keys[i], keys[i].hash())) << i;
  }
  // Now change the table under the hints: erase a third, insert the rest (the table grows),
  // and make the oldest idle ones compact.
  for (size_t i = 2; i < keys.size() / 2; i += 3) table.erase(table.find(keys[i], keys[i].hash()));
  for (size_t i = keys.size() / 2; i < keys.size(); ++i) insert(keys[i]);
  table.compact_idle(ConnectionTable::closing, 1000, 100, [](const Connection& connection) {
    return connection.id() % 4 == 0 ? 0 : -1;
  });
  ASSERT_GT(table.compact_count(), 0u);
  // Each key, with its own stale hint, its colliding twin's, a neighbour's, and hints far out
  // of range: found with the hint exactly as without it (a compact one restored either way).
  auto check = [&](const ConnectionKey& key, uint32_t hint, size_t i) {
    Connection* hinted = table.find(key, key.hash(), hint);
    Connection* plain = table.find(key, key.hash());
    EXPECT_EQ(hinted, plain) << "key " << i << " hint " << hint;
    if (plain != nullptr) {
      EXPECT_TRUE(same_key(plain->key(), key)) << i;
    }
  };
  for (size_t i = 0; i < keys.size(); ++i) {
    for (const uint32_t hint : {hints[i], hints[i ^ 1], hints[(i + 1) % keys.size()], 0xffffffffu, 0x7fffffffu,
                                static_cast<uint32_t>(random())}) {
      check(keys[i], hint, i);
    }
  }
  // The twins, each with the other's fresh hint.
  const uint32_t first = table.prefetch_entry(keys[0].hash()), second = table.prefetch_entry(keys[1].hash());
  EXPECT_EQ(static_cast<uint32_t>(keys[0].hash()), static_cast<uint32_t>(keys[1].hash()));
  check(keys[0], second, 0);
  check(keys[1], first, 1);
}

}  // namespace
}  // namespace rstscope::testing
