#include "track/tracker.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>

#include "core/seq.hpp"

namespace rstscope {
namespace {

constexpr int64_t too_far_seq = 1 << 20;  // seq jumps beyond this are not one stream (Zeek's bound)
// A second, in the units of Connection::touched.
constexpr uint32_t touch_interval_units = 1'000'000'000 >> Connection::touch_unit_shift;

// Both sides are in step: the handshake completed, or data flowed (a connection seen mid-stream).
bool synchronized(const Connection& connection) {
  return connection.established || connection.originator.data_seen || connection.responder.data_seen ||
         !connection.originator_known;
}

bool is_pure_ack(const Segment& segment) {
  return segment.payload_len == 0 &&
         (segment.flags & (tcp_flag::syn | tcp_flag::fin | tcp_flag::rst)) == 0 &&
         segment.has(tcp_flag::ack);
}

// The first RST of the side's current episode, 0 when it is in none.
uint64_t episode_first_frame(const Connection& connection, const Endpoint& side, const EndpointRare& rare) {
  if (side.episode_resets == 0) return 0;
  // With one RST in the episode, that RST is the side's last packet.
  return connection.frame(side.episode_resets == 1 ? side.last_frame : rare.episode_rst_frame);
}

}  // namespace

SegmentBrief SegmentBrief::of(const Segment& segment, bool from_originator) {
  SegmentBrief brief;
  brief.frame = segment.frame;
  brief.ts_ns = segment.ts_ns;
  brief.seq = segment.seq;
  brief.ack = segment.ack;
  brief.payload_len = segment.payload_len;
  brief.window = segment.window;
  brief.ip_id = segment.ip_id;
  brief.flags = segment.flags;
  brief.ttl = segment.ttl;
  brief.from_originator = from_originator;
  brief.valid = true;
  return brief;
}

ResetSegment ResetSegment::of(const Segment& segment, bool from_low) {
  ResetSegment rst;
  rst.frame = segment.frame;
  rst.ts_ns = segment.ts_ns;
  rst.source_mac = segment.source_mac;
  rst.seq = segment.seq;
  rst.ack = segment.ack;
  rst.payload_len = segment.payload_len;
  rst.window = segment.window;
  rst.ip_id = segment.ip_id;
  rst.flags = segment.flags;
  rst.reserved = segment.reserved;
  rst.ttl = segment.ttl;
  rst.mptcp_reset_reason = segment.mptcp_reset_reason;
  rst.df = segment.df;
  rst.has_mptcp_reset = segment.has_mptcp_reset;
  rst.has_md5_or_ao = segment.has_md5_or_ao;
  rst.from_low = from_low;
  return rst;
}

Segment ResetSegment::segment(const ConnectionKey& key) const {
  Segment segment;
  segment.frame = frame;
  segment.ts_ns = ts_ns;
  segment.src = from_low ? key.low_address() : key.high_address();
  segment.dst = from_low ? key.high_address() : key.low_address();
  segment.sport = from_low ? key.low_port() : key.high_port();
  segment.dport = from_low ? key.high_port() : key.low_port();
  segment.source_mac = source_mac;
  segment.seq = seq;
  segment.ack = ack;
  segment.payload_len = payload_len;
  segment.window = window;
  segment.ip_id = ip_id;
  segment.flags = flags;
  segment.reserved = reserved;
  segment.ttl = ttl;
  segment.mptcp_reset_reason = mptcp_reset_reason;
  segment.df = df;
  segment.has_mptcp_reset = has_mptcp_reset;
  segment.has_md5_or_ao = has_md5_or_ao;
  return segment;
}

const ResetContext::Absent ResetContext::none{};

SegmentBrief ResetContext::answers() const {
  SegmentBrief answers;
  const Endpoint& receiver = connection.receiver(from_originator);
  if (receiver.packets == 0) return answers;
  answers.valid = true;
  answers.frame = connection.frame(receiver.last_frame);
  answers.ts_ns = connection.time(receiver.last_ts);
  answers.seq = receiver.last_seq;
  answers.ack = receiver.last_ack;
  answers.flags = receiver.last_flags();
  answers.payload_len = receiver.last_payload();
  answers.from_originator = !from_originator;
  answers.ip_id = receiver.ip_id;
  return answers;
}

int64_t ResetContext::silence_ns() const {
  const Endpoint& receiver = connection.receiver(from_originator);
  return receiver.packets == 0 ? 0 : connection.duration(receiver.gap_before_last);
}

int64_t ResetContext::since_answers_ns() const {
  const Endpoint& receiver = connection.receiver(from_originator);
  return receiver.packets == 0 ? -1 : rst.ts_ns - connection.time(receiver.last_ts);
}

Tracker::Tracker(const TrackerOptions& options, TrackerSink& sink)
    : options_(options), sink_(sink), table_(options.max_connections), pending_base_(options.first_reset_number) {
  // Closed connections are compacted within a fraction of a second (see CompactionOptions).
  if (options_.compaction.closing_after_ns >= 0) table_.log_touches(ConnectionTable::closing);
}

void Tracker::add(const Segment& segment, const ConnectionKey& key, uint64_t hash) {
  ++stats_.segments;
  bool from_originator = false;
  bool created = false;
  Connection* connection = lookup(segment, key, hash, from_originator, created);
  if (connection->pending_resets > 0) observe_after(*connection, segment, from_originator);
  if (segment.has(tcp_flag::rst)) open_reset(*connection, segment, from_originator, created);
  update(*connection, segment, from_originator);
  // Keep the idle lists in LRU order by the capture's clock: moving a connection costs two
  // cache misses, so a busy connection is moved at most once per touch interval.
  const auto list = connection->closed()  ? ConnectionTable::closing
                    : synchronized(*connection) ? ConnectionTable::active
                                               : ConnectionTable::embryonic;
  const uint32_t now = Connection::touch_units(segment.clock_ns);
  if (connection->list != list || now - connection->touched > touch_interval_units) {
    connection->touched = now;
    table_.touch(connection, list);
  }
}

void Tracker::tick(int64_t clock_ns, uint64_t cut_frame) {
  expire(clock_ns);
  release(clock_ns, false, cut_frame);
  compact_idle(clock_ns);
}

void Tracker::compact_idle(int64_t clock_ns) {
  if (!table_.compaction_pays()) return;
  const uint32_t now = Connection::touch_units(clock_ns);
  auto compact_list = [&](ConnectionTable::List list, int64_t after_ns) {
    if (after_ns < 0) return;
    after_ns = std::min(after_ns, TrackerOptions::max_timeout_ns);
    // The lists are in the order of their last touch, which a busy connection's packets renew
    // only once a second: its last packet tells whether it is silent.
    auto decide = [&](const Connection& connection) {
      if (clock_ns - connection.last_ts() <= after_ns) return -1;
      return (sink_.wants(connection) ? int{wanted_flag} : 0) | (waiting(connection) ? int{waiting_flag} : 0);
    };
    table_.compact_idle(list, now, static_cast<uint32_t>(after_ns >> Connection::touch_unit_shift), decide);
  };
  compact_list(ConnectionTable::closing, options_.compaction.closing_after_ns);
  compact_list(ConnectionTable::embryonic, options_.compaction.embryonic_after_ns);
  compact_list(ConnectionTable::active, options_.compaction.active_after_ns);
}

void Tracker::finish(int64_t clock_ns) {
  table_.visit_all([&](ConnectionTable::Handle handle) {
    if (table_.is_compact(handle)) {
      if (table_.compact_flags(handle) == wanted_flag) ending_.emplace_back(table_.id(handle), handle);
      return;
    }
    const Connection& connection = table_.full(handle);
    if (!waiting(connection) && sink_.wants(connection)) ending_.emplace_back(connection.id(), handle);
  });
  // Ids are first frames: this is the capture's order, whichever shard holds which connection.
  std::sort(ending_.begin(), ending_.end());
  ConnectionRecord record;
  for (const auto& [id, handle] : ending_) {
    if (table_.is_compact(handle)) {
      table_.copy(handle, record);
      sink_.ended(record);
    } else {
      sink_.ended(table_.full(handle));
    }
  }
  ending_.clear();
  // The others stay in the table until their last RST is judged (release), so they are copied
  // one at a time rather than all at once here.
  release(clock_ns, true);
  table_.clear();  // all at once, not one by one
}

Connection* Tracker::lookup(const Segment& segment, const ConnectionKey& key, uint64_t hash,
                            bool& from_originator, bool& created) {
  Connection* connection = table_.find(key, hash, probe_hint_);
  probe_hint_ = 0;
  if (connection != nullptr) {
    from_originator = key.from_low(segment) == connection->originator_is_low;
    const bool fresh_syn = segment.has(tcp_flag::syn) && !segment.has(tcp_flag::ack) &&
                           !segment.has(tcp_flag::rst);
    const Endpoint& sender = connection->sender(from_originator);
    const bool same_syn = sender.syn_seen && segment.seq == sender.isn;
    // A new SYN on a 4-tuple whose connection has closed opens a new connection (port reuse).
    if (fresh_syn && !same_syn && connection->closed()) {
      ++stats_.port_reuse;
      end(connection);
      connection = nullptr;
    }
  }
  if (connection == nullptr) {
    created = true;
    connection = create(key, hash, segment, from_originator);
  }
  return connection;
}

Connection* Tracker::create(const ConnectionKey& key, uint64_t hash, const Segment& segment,
                            bool& from_originator) {
  if (table_.size() >= table_.capacity()) make_room();
  Connection* connection = table_.insert(key, hash);
  ++stats_.connections;
  const bool syn = segment.has(tcp_flag::syn) && !segment.has(tcp_flag::rst);
  if (syn) {
    // The SYN's sender opened the connection; a SYN/ACK's sender answered it.
    from_originator = !segment.has(tcp_flag::ack);
  } else {
    // Mid-stream: guess that the side on the lower port is the service.
    connection->originator_known = false;
    from_originator = segment.sport >= segment.dport;
  }
  connection->originator_is_low = key.from_low(segment) == from_originator;
  connection->first_ts = segment.ts_ns;
  connection->first_frame = segment.frame;
  return connection;
}

namespace {

// The sender's TTLs, DF bits and IP IDs, for comparison with RSTs in its name.
[[gnu::always_inline]] inline void take_fingerprint(Endpoint& sender, const Segment& segment) {
  sender.ttl_min = std::min(sender.ttl_min, segment.ttl);
  sender.ttl_max = std::max(sender.ttl_max, segment.ttl);
  if (segment.df) {
    sender.df_seen = true;
  } else {
    sender.df_missing = true;
  }
  if (!segment.src.is_v6()) {
    if (sender.seq_known()) {  // an earlier packet of its own carried an IP ID
      const uint16_t step = static_cast<uint16_t>(segment.ip_id - sender.ip_id);
      if (step == 0 || step > 1024) sender.ip_id_incrementing = false;
    }
    if (segment.ip_id != 0) sender.ip_id_zero = false;
    sender.ip_id = segment.ip_id;
  }
}

}  // namespace

// Most segments of a capture: an ACK, with or without data, in order, in a synchronized
// connection whose sides have both spoken, with nothing rare about it. update() would take every
// one of its checks to the same end; this takes only the steps they lead to (2.5 % fewer
// instructions in all on the benchmark capture).
bool Tracker::usual(const Connection& connection, const Endpoint& sender, const Endpoint& receiver,
                    const Segment& segment) {
  return (segment.flags & (tcp_flag::syn | tcp_flag::fin | tcp_flag::rst | tcp_flag::ack)) == tcp_flag::ack &&
         connection.established && connection.rare == 0 && sender.non_rst_packets == 3 && sender.ack_known &&
         !receiver.fin_seen && segment.window != 0 && segment.seq == sender.next_seq &&
         (segment.payload_len == 0 || (sender.data_seen && segment.payload_len < too_far_seq));
}

void Tracker::update(Connection& connection, const Segment& segment, bool from_originator) {
  Endpoint& sender = connection.sender(from_originator);
  Endpoint& receiver = connection.receiver(from_originator);
  if (options_.usual_path && usual(connection, sender, receiver, segment)) {
    // As update() below, step by step, for such a segment.
    const int64_t usual_gap = segment.ts_ns - connection.last_ts();  // it has packets
    ++sender.packets;
    connection.set_last_ts(from_originator, segment.ts_ns);
    connection.set_frame(sender.last_frame, segment.frame);
    connection.set_duration(sender.gap_before_last, usual_gap);
    sender.episode_resets = 0;
    take_fingerprint(sender, segment);
    if (seq_gt(segment.ack, sender.max_ack)) sender.max_ack = segment.ack;
    sender.window = segment.window;
    sender.offer_window(segment.window, sender.window_scale);
    if (segment.payload_len > 0) {
      sender.next_seq = segment.seq + segment.payload_len;
      sender.add_bytes(segment.payload_len);
      connection.set_time(sender.last_data_ts, segment.ts_ns);
      connection.set_frame(sender.last_data_frame, segment.frame);
    }
    sender.last_seq = segment.seq;
    sender.last_ack = segment.ack;
    sender.set_last(segment.payload_len, segment.flags);
    return;
  }
  const int64_t gap = connection.packets() == 0 ? 0 : segment.ts_ns - connection.last_ts();
  const FrameRef previous_frame = sender.last_frame;
  ++sender.packets;
  connection.set_last_ts(from_originator, segment.ts_ns);
  connection.set_frame(sender.last_frame, segment.frame);
  connection.set_duration(sender.gap_before_last, gap);
  if (ConnectionRare* rare = table_.find_rare(connection)) {
    rare->side(!from_originator).keepalives = 0;  // the receiver's probes were answered
  }

  if (segment.has(tcp_flag::rst)) {
    ++stats_.resets;
    ++connection.resets;
    if (sender.resets < 0xffff) ++sender.resets;  // saturating: the rules ask only whether it sent any
    // The episode's first RST is kept apart once it is no longer the sender's last packet.
    if (sender.episode_resets == 1) {
      table_.rare(connection).side(from_originator).episode_rst_frame = previous_frame;
    }
    if (sender.episode_resets < 3) ++sender.episode_resets;
    connection.history.add('r', from_originator);
    return;
  }

  sender.episode_resets = 0;  // it spoke again: a later RST starts a new episode
  take_fingerprint(sender, segment);

  const uint32_t end = segment.seq + segment.seq_len();
  if (segment.has(tcp_flag::syn)) {
    const bool retransmitted = sender.syn_seen && segment.seq == sender.isn;
    if (retransmitted) {
      if (segment.has(tcp_flag::ack)) ++connection.synack_retransmissions;
      else ++connection.syn_retransmissions;
    } else if (sender.syn_seen || (connection.established && !segment.has(tcp_flag::ack))) {
      // A new SYN inside a synchronized connection: a restarted peer (RFC 5961 §4).
      ConnectionRare& rare = table_.rare(connection);
      rare.syn_in_established = true;
      connection.set_frame(rare.syn_in_established_frame, segment.frame);
    }
    if (!sender.syn_seen || !retransmitted) {
      sender.isn = segment.seq;
      sender.next_seq = end;
    }
    sender.syn_seen = true;
    connection.set_frame(sender.syn_frame, segment.frame);
    if (segment.has(tcp_flag::ack)) {
      connection.signed_synack = segment.has_md5_or_ao && !from_originator;
    } else if (from_originator) {
      connection.signed_syn = segment.has_md5_or_ao;
    }
    const uint8_t offered = std::min<uint8_t>(segment.window_scale, 14);  // as it will be applied
    sender.offered_scale = (segment.window_scale == 0xff ? Endpoint::no_scale : offered) & 0xf;
    if (segment.has(tcp_flag::ack)) {
      connection.synack_seen = true;
      sink_.service_accepted(segment);
      sink_.host_packet(segment.src, segment.ttl);
      // RFC 7323 §2.2: scaling applies only when both SYNs carried the option.
      if (receiver.offered_scale != Endpoint::no_scale && sender.offered_scale != Endpoint::no_scale) {
        sender.window_scale = sender.offered_scale;
        receiver.window_scale = receiver.offered_scale;
      }
    } else if (from_originator) {
      connection.handshake_seen = true;
    }
    if (!(sender.syn_seen && retransmitted)) connection.history.add(segment.has(tcp_flag::ack) ? 'h' : 's', from_originator);
  } else if (!sender.seq_known()) {
    sender.next_seq = end;
  } else if (seq_gt(end, sender.next_seq) && seq_diff(end, sender.next_seq) < too_far_seq) {
    if (seq_lt(segment.seq, sender.next_seq) && segment.payload_len > 0) ++stats_.out_of_order;
    sender.next_seq = end;
  } else if (segment.payload_len > 1 && seq_lt(segment.seq, sender.next_seq)) {
    ++stats_.retransmissions;
    EndpointRare& rare = table_.rare(connection).side(from_originator);
    ++rare.retransmissions;
    ++rare.stalled_retransmissions;
    if (rare.retransmissions == 1 || rare.retransmissions == 10) connection.history.add('t', from_originator);
  } else if (segment.payload_len <= 1 && segment.seq + 1 == sender.next_seq &&
             !segment.has(tcp_flag::fin) && (sender.data_seen || connection.established)) {
    // Keep-alive probe: one byte below SND.NXT, so the peer must answer with an ACK (RFC 9293 §3.8.4).
    EndpointRare& rare = table_.rare(connection).side(from_originator);
    ++rare.keepalives;
    connection.set_frame(rare.keepalive_frame, segment.frame);
  }

  if (segment.has(tcp_flag::ack)) {
    if (receiver.fin_seen && segment.ack == receiver.fin_seq + 1 && sender.fin_acks < 255) ++sender.fin_acks;
    if (!sender.ack_known || seq_gt(segment.ack, sender.max_ack)) {
      ConnectionRare* rare = table_.find_rare(connection);
      if (sender.ack_known && rare != nullptr) rare->side(!from_originator).stalled_retransmissions = 0;
      sender.max_ack = segment.ack;
      sender.ack_known = true;
    }
    if (connection.synack_seen && from_originator && !connection.established) {
      connection.established = true;
      if (connection.originator.syn_seen) {
        connection.set_duration(connection.handshake_rtt, segment.ts_ns - connection.first_ts);
      }
    }
    if (!sender.data_seen && segment.payload_len == 0 && !segment.has(tcp_flag::syn) &&
        !segment.has(tcp_flag::fin) && sender.packets <= 3) {
      connection.history.add('a', from_originator);
    }
  }
  if (!segment.has(tcp_flag::syn)) {
    sender.window = segment.window;
    sender.offer_window(segment.window, sender.window_scale);
    if (segment.window == 0) {
      EndpointRare& rare = table_.rare(connection).side(from_originator);
      if (rare.zero_windows++ == 0) connection.history.add('w', from_originator);
      rare.zero_window_ts = segment.ts_ns;
      connection.set_frame(rare.zero_window_frame, segment.frame);
    }
  } else {
    sender.window = segment.window;  // SYN windows are never scaled (RFC 7323 §2.2)
    sender.offer_window(segment.window, 0);
  }
  if (segment.payload_len > 0) {
    if (!sender.data_seen) connection.history.add('d', from_originator);
    sender.data_seen = true;
    sender.add_bytes(segment.payload_len);
    connection.set_time(sender.last_data_ts, segment.ts_ns);
    connection.set_frame(sender.last_data_frame, segment.frame);
    if (receiver.data_seen && sender.data_seen && !connection.established && !connection.handshake_seen) {
      connection.established = true;
    }
  }
  if (segment.has(tcp_flag::fin)) {
    if (!sender.fin_seen) connection.history.add('f', from_originator);
    sender.fin_seen = true;
    sender.fin_seq = segment.seq + segment.payload_len;
    connection.set_time(sender.fin_ts, segment.ts_ns);
    connection.set_frame(sender.fin_frame, segment.frame);
  }
  if (sender.packets == 1 && segment.payload_len > 0) sink_.host_packet(segment.src, segment.ttl);
  sender.last_seq = segment.seq;
  sender.last_ack = segment.ack;
  sender.set_last(segment.payload_len, segment.flags);
  if (sender.non_rst_packets < 3) ++sender.non_rst_packets;
}

void Tracker::open_reset(Connection& connection, const Segment& segment, bool from_originator,
                         bool created) {
  ResetContext context;
  context.rst = ResetSegment::of(segment, from_originator == connection.originator_is_low);
  const uint32_t length =
      segment.payload == nullptr ? 0 : std::min(segment.payload_captured, ResetContext::payload_text_max);
  if (length > 0) {
    context.payload_chars = std::make_unique<char[]>(length);
    for (uint32_t i = 0; i < length; ++i) {
      const unsigned char byte = segment.payload[i];
      context.payload_chars[i] = std::isprint(byte) ? static_cast<char>(byte) : '.';
    }
    context.payload_text_length = static_cast<uint8_t>(length);
  }
  context.from_originator = from_originator;
  context.connection_new = created;
  context.deadline_ns = segment.clock_ns + options_.horizon_ns;
  context.connection = ConnectionRecord(connection);
  if (const ConnectionRare* rare = table_.find_rare(connection)) {
    context.rare_part = std::make_unique<ConnectionRare>(*rare);
  }
  if (created) ++stats_.resets_without_connection;
  const Endpoint& sender = connection.sender(from_originator);
  const Endpoint& receiver = connection.receiver(from_originator);

  // How the receiver would judge the RST's seq (RFC 9293 §3.10.7, RFC 5961 §3.2).
  if (receiver.syn_seen && !sender.syn_seen && sender.non_rst_packets == 0 && !from_originator) {
    // SYN-SENT: the RST is acceptable only if it acknowledges the SYN (RFC 9293 §3.10.7.3).
    context.expected_seq = 0;
    context.seq_check = segment.has(tcp_flag::ack) && segment.ack == receiver.isn + 1
                            ? SeqCheck::exact
                            : SeqCheck::out_of_window;
  } else if (receiver.ack_known || sender.seq_known()) {
    const uint32_t expected = receiver.ack_known ? receiver.max_ack : sender.next_seq;
    context.expected_seq = expected;
    const uint32_t window = std::max<uint32_t>(receiver.ack_known ? receiver.scaled_window() : receiver.max_window(), 1);
    context.receive_window = window;
    context.seq_is_fin = sender.fin_seen && segment.seq == sender.fin_seq;
    const bool exact = segment.seq == expected || (sender.seq_known() && segment.seq == sender.next_seq) ||
                       context.seq_is_fin;
    if (exact) {
      context.seq_check = SeqCheck::exact;
    } else if (seq_in_window(segment.seq, expected, std::max<uint32_t>(window, receiver.max_window()))) {
      context.seq_check = SeqCheck::in_window;
    } else {
      context.seq_check = SeqCheck::out_of_window;
    }
  }
  context.earlier_resets = sender.episode_resets;
  context.earlier_reset_frame = episode_first_frame(connection, sender, context.rare().side(from_originator));

  const uint64_t number = pending_base_ + pending_.size();
  pending_links_.push_back(newest_pending(connection));
  pending_.push_back(std::move(context));
  connection.newest_pending = static_cast<uint32_t>(number + 1);
  ++connection.pending_resets;
}

void Tracker::observe_after(Connection& connection, const Segment& segment, bool from_originator) {
  uint64_t link = newest_pending(connection);
  for (uint32_t walked = 0; link > pending_base_ && walked < connection.pending_resets; ++walked) {
    const uint64_t index = link - 1 - pending_base_;
    ResetContext& context = pending_[index];
    link = pending_links_[index];
    if (segment.clock_ns > deadline(context)) continue;  // past its horizon, waiting for a tick
    if (!context.after_part) context.after_part = std::make_unique<AfterReset>();
    AfterReset& after = *context.after_part;
    const SegmentBrief brief = SegmentBrief::of(segment, from_originator);
    const bool from_sender = from_originator == context.from_originator;
    if (segment.has(tcp_flag::rst)) {
      if (from_sender) {
        if (after.challenge_ack && !after.exact_rst_after_challenge.valid &&
            segment.seq == after.challenge.ack) {
          after.exact_rst_after_challenge = brief;
        }
        if (after.sender_rsts.size() < 16) after.sender_rsts.push_back(brief);
      } else if (!after.receiver_rst.valid) {
        after.receiver_rst = brief;
      }
      continue;
    }
    if (from_sender) {
      if (after.sender_segments++ == 0) after.sender_first = brief;
      if (segment.has(tcp_flag::syn) && segment.has(tcp_flag::ack) && !after.sender_synack.valid) {
        after.sender_synack = brief;
      } else if (segment.has(tcp_flag::syn) && !segment.has(tcp_flag::ack)) {
        after.sender_syn = true;
      } else if (!segment.has(tcp_flag::syn)) {
        const Endpoint& sender = context.connection.sender(context.from_originator);
        const bool own_stream =
            sender.seq_known() && std::abs(static_cast<int64_t>(seq_diff(segment.seq, sender.next_seq))) < too_far_seq;
        if (own_stream && (segment.payload_len > 0 || segment.has(tcp_flag::ack))) after.sender_continued = true;
        // Did the segment the RST answered reach the real sender? Then nobody in the path dropped it.
        const SegmentBrief answers = context.answers();
        if (segment.has(tcp_flag::ack) &&
            (!answers.valid || seq_ge(segment.ack, answers.seq + answers.seq_len()))) {
          after.sender_acked_answers = true;
        }      }
    } else {
      if (after.receiver_segments++ == 0 && is_pure_ack(segment) && after.sender_segments == 0) {
        after.challenge_ack = true;
        after.challenge = brief;
      }
    }
  }
}

void Tracker::end(Connection* connection) {
  end_copy(*connection);
  table_.erase(connection);
}

void Tracker::end_copy(const Connection& connection) {
  if (waiting(connection)) {
    // Reported after its last RST is judged, so the summary carries every cause.
    ResetContext& last = pending_[newest_pending(connection) - 1 - pending_base_];
    last.ended_connection = std::make_unique<ConnectionRecord>(connection);
  } else if (sink_.wants(connection)) {
    sink_.ended(connection);
  }
}

void Tracker::end(ConnectionTable::Handle handle) {
  if (!table_.is_compact(handle)) return end(&table_.full(handle));
  if (table_.compact_flags(handle) != 0) {
    ConnectionRecord record;
    table_.copy(handle, record);
    end_copy(record);
  }
  table_.erase(handle);
}

void Tracker::end_in_order() {
  std::sort(ending_.begin(), ending_.end());
  for (const auto& [id, handle] : ending_) end(handle);
  ending_.clear();
}

void Tracker::expire(int64_t clock_ns) {
  // Each list is in the order of the clock at its last touch, so the idle ones are a prefix.
  const uint32_t now = Connection::touch_units(clock_ns);
  auto idle_before = [&](ConnectionTable::List list, int64_t timeout_ns) {
    const auto timeout_units = static_cast<uint32_t>(timeout_ns >> Connection::touch_unit_shift);
    table_.visit_oldest_first(list, [&](ConnectionTable::Handle handle) {
      if (now - table_.touched(handle) <= timeout_units) return false;
      ending_.emplace_back(table_.id(handle), handle);
      return true;
    });
  };
  idle_before(ConnectionTable::closing, options_.closing_timeout_ns);
  idle_before(ConnectionTable::embryonic, options_.idle_timeout_ns);
  idle_before(ConnectionTable::active, options_.idle_timeout_ns);
  stats_.evicted_idle += ending_.size();
  end_in_order();
}

void Tracker::make_room() {
  // Under the memory cap: half-open handshakes first, then closed connections, then idle ones.
  // Half-open handshakes go first: under a SYN flood they are the flood, not the real traffic.
  ConnectionTable::Handle victim = table_.oldest(ConnectionTable::embryonic);
  if (victim == 0) victim = table_.oldest(ConnectionTable::closing);
  if (victim == 0) victim = table_.oldest(ConnectionTable::active);
  if (victim == 0) return;
  ++stats_.evicted_pressure;
  end(victim);
}

void Tracker::release(int64_t clock_ns, bool all, uint64_t cut_frame) {
  // Deadlines follow the capture's clock at each RST, and frames its order, so the due ones are
  // a prefix.
  while (!pending_.empty() && (all || deadline(pending_.front()) < clock_ns || pending_.front().rst.frame <= cut_frame)) {
    ResetContext& context = pending_.front();
    if (!all && deadline(context) >= clock_ns) ++stats_.resets_judged_early;
    const ConnectionKey key = context.connection.key();
    const ConnectionTable::Handle handle = all ? table_.find_handle(key, key.hash()) : 0;
    if (handle != 0 && table_.is_compact(handle)) {
      // At the end a compact connection is read, not restored (which would take memory): what
      // follows its RSTs is only their judgement and its summary, after its newest RST.
      if ((table_.compact_flags(handle) & waiting_flag) != 0 && table_.id(handle) == context.connection.id()) {
        auto record = std::make_unique<ConnectionRecord>();
        table_.copy(handle, *record);
        if (record->pending_resets > 0 && record->newest_pending == static_cast<uint32_t>(pending_base_ + 1)) {
          record->pending_resets = 0;  // as the RSTs' releases would leave it
          record->newest_pending = 0;
          context.ended_connection = std::move(record);
        }
      }
    } else if (Connection* connection = table_.find(key, key.hash());
               connection != nullptr && connection->id() == context.connection.id() && connection->pending_resets > 0) {
      const bool newest = newest_pending(*connection) == pending_base_ + 1;
      --connection->pending_resets;
      if (newest) {
        connection->newest_pending = 0;
        // At the end the connection ends too, reported after this, its last RST.
        if (all) context.ended_connection = std::make_unique<ConnectionRecord>(*connection);
      }
    }
    sink_.judge(context);
    pending_.pop_front();
    pending_links_.pop_front();
    ++pending_base_;
  }
}

}  // namespace rstscope
