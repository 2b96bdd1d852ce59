#pragma once
// Follows every TCP connection in both directions and turns each RST into a ResetContext,
// which stays open for a horizon of capture time to see what follows it.
#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

#include "core/chunked_fifo.hpp"
#include "core/prefetch.hpp"
#include "core/stats.hpp"
#include "track/observations.hpp"
#include "track/reset_context.hpp"
#include "track/table.hpp"

namespace rstscope {

// When connections are kept in a compact form (about half the size), restored whole by their
// next packet: those silent this long, closed ones, half-open handshakes and active ones.
// Negative: never. Only memory and speed depend on these, never the output. Half-open
// handshakes are left whole: under a SYN flood they are the flood, evicted first under the
// memory cap, and compacting them first only costs time.
struct CompactionOptions {
  int64_t closing_after_ns = 150'000'000;
  int64_t embryonic_after_ns = -1;
  int64_t active_after_ns = 5'000'000'000;
};

struct TrackerOptions {
  int64_t idle_timeout_ns = 900'000'000'000;    // active connections silent this long are dropped
  int64_t closing_timeout_ns = 120'000'000'000;  // closed ones linger this long (TIME-WAIT and more)
  int64_t horizon_ns = 3'000'000'000;
  uint64_t max_connections = 1u << 20;
  // The longest timeout a connection's 32-bit idle clock (Connection::touched) can measure.
  static constexpr int64_t max_timeout_ns = 2'000'000 * int64_t{1'000'000'000};
  // The number of the first RST. Connections keep RST numbers modulo 2^32; tests start near the
  // wrap to cross it.
  uint64_t first_reset_number = 0;
  CompactionOptions compaction;
  // The short way through the usual segment (Tracker::usual); tests turn it off to show that it
  // leaves every connection as the long way does.
  bool usual_path = true;
};

// What a tracker reports. A tracker owns a share of the connections (all of them with one
// thread, one hash shard of them with several); everything that spans connections (the
// observations, the judgement, the patterns) happens behind this interface, in one place.
class TrackerSink {
 public:
  virtual ~TrackerSink() = default;
  // While a segment is added: what it showed about its host and service.
  virtual void host_packet(const Address& address, uint8_t ttl) = 0;
  virtual void service_accepted(const Segment& synack) = 0;
  // A connection ended. While a segment is added (port reuse, the memory cap), or at a tick,
  // where the ended connections come in order of their id.
  virtual void ended(const Connection& connection) = 0;
  // Whether ended() needs to hear of this connection at all.
  virtual bool wants(const Connection& connection) const = 0;
  // At a tick, after the connections it ended: a RST whose horizon passed, in capture order.
  // `ended_connection` is set when the connection ended while the RST was waiting.
  virtual void judge(ResetContext& context) = 0;
};

// Follows connections. Segments come with the capture's clock (Segment::clock_ns, the latest
// timestamp so far across the whole capture); time-driven work (idle expiry, the judgement of
// RSTs whose horizon passed) happens only at ticks, which the caller places at the same points
// of the capture whatever the number of threads. That makes each tracker's behaviour depend
// only on its own connections and the clock, so shards give the same results as one tracker.
class Tracker {
 public:
  Tracker(const TrackerOptions& options, TrackerSink& sink);
  void add(const Segment& segment) {
    const ConnectionKey key = ConnectionKey::of(segment);
    add(segment, key, key.hash());
  }
  // The same, with the segment's canonical key and its hash already worked out.
  void add(const Segment& segment, const ConnectionKey& key, uint64_t hash);
  // Walks a batch in order with lookahead: keys and hashes first, then `add(i, key, hash)` for
  // each segment, preceded a few segments ahead by a prefetch of its slot and, further on, of
  // its entry (read from the slot once that line has arrived). `add` calls add() in the end.
  // `keys` and `hashes`, when given, hold the segments' keys (ConnectionKey::of()) and their
  // hashes (ConnectionKey::hash()) worked out already.
  template <typename Add>
  void add_prefetched(const Segment* segments, size_t count, Add&& add, const ConnectionKey* keys = nullptr,
                      const uint64_t* hashes = nullptr) {
    constexpr size_t slot_ahead = 16, entry_ahead = 8;
    if (keys == nullptr || hashes == nullptr) {
      batch_keys_.resize(count);
      batch_hashes_.resize(count);
      for (size_t i = 0; i < count; ++i) {
        batch_keys_[i] = ConnectionKey::of(segments[i]);
        batch_hashes_[i] = batch_keys_[i].hash();
      }
      keys = batch_keys_.data();
      hashes = batch_hashes_.data();
    }
    for (size_t i = 0; i < count && i < slot_ahead; ++i) table_.prefetch_slot(hashes[i]);
    // The slots prefetch_entry() found, by segment, for the lookups: a ring of the last few.
    uint32_t hints[hint_ring] = {};
    static_assert(hint_ring > entry_ahead);
    for (size_t i = 0; i < count; ++i) {
      if (i + slot_ahead < count) table_.prefetch_slot(hashes[i + slot_ahead]);
      probe_hint_ = hints[i % hint_ring];
      if (i + entry_ahead < count) {
        hints[(i + entry_ahead) % hint_ring] = table_.prefetch_entry(hashes[i + entry_ahead]);
        // The segment itself: handed over by the reading thread, it sits in the other core's
        // cache, and fetched ahead the tracker's thread took 4-5 % less CPU (two threads, wall
        // 0.78 s against 0.79-0.83 s). With one thread it is in cache already, and costs nothing.
        prefetch_object<sizeof(Segment)>(segments + i + entry_ahead);
      }
      add(i, keys[i], hashes[i]);
    }
  }
  // Expires idle connections and judges the RSTs whose horizon ended before `clock_ns`, and
  // those up to frame `cut_frame` (the cap on waiting RSTs) before their horizon.
  void tick(int64_t clock_ns, uint64_t cut_frame = 0);
  // Ends every connection and judges every RST still waiting. Call once, at the end.
  void finish(int64_t clock_ns);
  uint64_t live() const { return table_.size(); }
  // RSTs waiting for their horizon.
  uint64_t waiting_resets() const { return pending_.size(); }
  // Of them, kept compact.
  uint64_t compact() const { return table_.compact_count(); }
  TrackStats stats() const {
    TrackStats stats = stats_;
    stats.compacted = table_.compactions();
    stats.restored = table_.restorations();
    return stats;
  }

 private:
  Connection* lookup(const Segment& segment, const ConnectionKey& key, uint64_t hash, bool& from_originator,
                     bool& created);
  Connection* create(const ConnectionKey& key, uint64_t hash, const Segment& segment,
                     bool& from_originator);
  void update(Connection& connection, const Segment& segment, bool from_originator);
  static bool usual(const Connection& connection, const Endpoint& sender, const Endpoint& receiver,
                    const Segment& segment);
  void open_reset(Connection& connection, const Segment& segment, bool from_originator,
                  bool created);
  void observe_after(Connection& connection, const Segment& segment, bool from_originator);
  // Reports that a connection ended, or, while RSTs of it still wait, hands it to the last of
  // them (reported after their judgement), and removes it.
  void end(Connection* connection);
  void end(ConnectionTable::Handle handle);
  // Reports the connection's end (or hands it to its last RST), leaving the table as it is.
  void end_copy(const Connection& connection);
  // Ends the connections in `ending_`, in order of their id.
  void end_in_order();
  void expire(int64_t clock_ns);
  // Compacts the connections idle for longer than the options say.
  void compact_idle(int64_t clock_ns);
  // Judges the RSTs whose horizon ended before `clock_ns` or whose frame is `cut_frame` or
  // earlier, or, at the end, all of them, each connection still in the table reported after its
  // last RST.
  void release(int64_t clock_ns, bool all, uint64_t cut_frame = 0);
  void make_room();
  // Some RST of the connection still waits for its horizon.
  bool waiting(const Connection& connection) const { return newest_pending(connection) != 0; }
  // The number + 1 of the connection's newest RST still waiting, or 0 for none. The connection
  // keeps it modulo 2^32; fewer than 2^31 RSTs wait at once, so the queue tells the rest.
  uint64_t newest_pending(const Connection& connection) const {
    if (connection.pending_resets == 0) return 0;
    const uint32_t ahead = connection.newest_pending - 1 - static_cast<uint32_t>(pending_base_);
    return ahead < pending_.size() ? pending_base_ + ahead + 1 : 0;
  }
  static int64_t deadline(const ResetContext& context) { return context.deadline_ns; }

  TrackerOptions options_;
  TrackerSink& sink_;
  ConnectionTable table_;
  TrackStats stats_;  // but for the compaction counts, which are the table's
  // Open contexts in RST order; `pending_base_` is the sequence number of the front.
  ChunkedFifo<ResetContext, 32> pending_;
  std::deque<uint64_t> pending_links_;  // per context: the previous one of its connection
  uint64_t pending_base_ = 0;
  std::vector<std::pair<uint64_t, ConnectionTable::Handle>> ending_;  // the connections a tick ends, by id
  // What a compact connection keeps of what the tracker and the sink thought of it when it was
  // compacted (neither changes before it is restored): the sink wants to hear of it when it
  // ends; a RST of it waits.
  static constexpr uint8_t wanted_flag = 1, waiting_flag = 2;
  // For the next lookup: where add_prefetched() found its key's slot (0 for nowhere). The
  // lookup takes it and leaves 0.
  static constexpr size_t hint_ring = 16;
  uint32_t probe_hint_ = 0;
  std::vector<ConnectionKey> batch_keys_;
  std::vector<uint64_t> batch_hashes_;
};

}  // namespace rstscope
