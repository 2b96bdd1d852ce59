#pragma once
// A classic pcap reader that walks records in place: in a mapping of the file, or in one large
// reused buffer that the file is read into. It gives the
// same packets, lengths, timestamps and errors as libpcap's savefile reader, without libpcap's
// copy of every packet and its stdio round trips. Files it cannot read exactly as libpcap
// would (old versions, the modified record format, link types libpcap rewrites) stay with
// libpcap: see PcapReader::supports().
#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "capture/mapping.hpp"

namespace rstscope::capture_detail {

class ByteStream;

struct PcapRecord {
  int64_t ts_ns = 0;
  uint32_t caplen = 0;
  uint32_t origlen = 0;           // as the record says; may be below caplen in damaged files
  const uint8_t* data = nullptr;  // valid until the next call to next()
};

class PcapReader {
 public:
  static constexpr size_t file_header_bytes = 24;
  static constexpr size_t record_header_bytes = 16;
  // libpcap's MAXIMUM_SNAPLEN: the largest record it accepts for the link types read here.
  static constexpr uint32_t maximum_snaplen = 262144;
  enum class Status : uint8_t { packet, end, error };

  // True when the file header (its first `length` bytes) is one this reader handles exactly
  // as libpcap does; anything else, including a short or invalid header, goes to libpcap.
  static bool supports(const uint8_t* header, size_t length);

  // How the bytes reach the reader. `read`: read() into the buffer. `read_ahead`: a thread of
  // its own reads (and decompresses) the stream into buffers while the records of the previous
  // one are walked; the stream is then its alone. `map`: a plain regular file is mapped and its
  // records walked where they lie, with no copy out of the page cache (anything else is read).
  enum class Fill : uint8_t { read, read_ahead, map };

  // Reads from `stream`, which must be positioned at the file header; does not own it.
  // `buffer_bytes` is the read buffer; it grows once if a record needs more. A mapped file's
  // pages are handed back `release_step` bytes at a time (see FileMapping::open).
  PcapReader(ByteStream& stream, size_t buffer_bytes, Fill fill = Fill::read,
             size_t release_step = FileMapping::default_release_step);
  ~PcapReader();
  PcapReader(const PcapReader&) = delete;
  PcapReader& operator=(const PcapReader&) = delete;

  // Inline: the usual record (its header and bytes already in the buffer, a sane length) is a
  // few loads; anything else goes to next_slow(), which also reports what is wrong.
  Status next(PcapRecord& record) {
    if (started_ && end_ - position_ >= record_header_bytes) {
      const uint8_t* header = data_ + position_;
      const uint32_t caplen = get32(header + 8);
      if (caplen <= maximum_snaplen && end_ - position_ - record_header_bytes >= caplen) {
        return take(record, header, caplen);
      }
    }
    return next_slow(record);
  }
  uint32_t link_type() const { return link_type_; }  // LINKTYPE_* value
  // Whether the records are walked in a mapping of the file (Fill::map, and the file mapped).
  bool mapped() const { return mapping_ != nullptr; }
  // The next block of a mapped file into the cache, while the prefetches lead the records by
  // less than `tracking_lead` bytes: a step of FetchAhead. The one-thread loop takes a step for
  // each segment it tracks, and the records of the next batch are in cache when it decodes
  // them (one thread, 0.935-0.969 of the time in paired runs). One block a step fetches a
  // little less than a record of the benchmark capture; two were slower (1.017).
  static constexpr size_t tracking_lead = 192u << 10;
  [[gnu::always_inline]] void prefetch_ahead() {
    if (mapping_ != nullptr && prefetched_ < position_ + tracking_lead) prefetch_block();
  }
  const std::string& error() const { return error_; }
  uint64_t error_offset() const { return error_offset_; }

 private:
  // A buffer the read-ahead thread fills: room for a carried partial record, then the bytes.
  struct Chunk {
    std::vector<uint8_t> bytes;
    size_t filled = 0;
    bool last = false;  // the stream ended (or failed) after these bytes
  };
  static constexpr size_t chunk_count = 4;
  bool start();
  // Inline: the bytes are nearly always there already, and this runs twice per record.
  bool ensure(size_t count) { return end_ - position_ >= count || refill(count); }
  bool refill(size_t count);
  bool ensure_ahead(size_t count);
  void fill_chunks();
  Status next_slow(PcapRecord& record);
  // The record whose header is at `header` and whose `caplen` bytes follow it in the buffer.
  [[gnu::always_inline]] Status take(PcapRecord& record, const uint8_t* header, uint32_t caplen) {
    // libpcap reads the time fields as signed in files of this host's byte order and as
    // unsigned in swapped ones; only damaged or far-future files can tell, but keep it exact.
    const uint32_t raw_seconds = get32(header), raw_fraction = get32(header + 4);
    const int64_t seconds = swapped_ ? int64_t{raw_seconds} : int64_t{static_cast<int32_t>(raw_seconds)};
    const int64_t fraction = swapped_ ? int64_t{raw_fraction} : int64_t{static_cast<int32_t>(raw_fraction)};
    record.ts_ns = seconds * 1000000000 + fraction * (nanosecond_ ? 1 : 1000);
    record.caplen = caplen < snapshot_ ? caplen : snapshot_;
    record.origlen = get32(header + 12);
    record.data = header + record_header_bytes;
    position_ += record_header_bytes + caplen;
    if (mapping_ != nullptr) {
      // Every line of the next few kilobytes: a mapping is read straight from memory, and the
      // hardware does not prefetch across its pages by itself. A prefetch of a page not yet
      // mapped is dropped, and the kernel maps a file's pages a block at a time (64 KiB) on a
      // fault: one read well ahead, once per block, takes that fault before the prefetches get
      // there (3 % of one thread's time on the benchmark capture).
      // Eight lines at a time, and most records need no new block: a step of four lines cost
      // about 10 instructions a record more (blocks of 16 lines measured no faster, and a
      // little slower with two threads). Into the second-level cache (locality 2), not the
      // first: most of a record's lines are payload that nothing reads, and the first level's
      // room and its misses in flight are the table's. One thread, 0.971 of the time (24 paired
      // runs; two threads the same). A prefetch past the end is harmless (an address, not a
      // read).
      while (prefetched_ < position_ + mapped_prefetch_bytes) prefetch_block();
      const auto at = static_cast<size_t>(header - data_);
      // A header of zeros is also what the rest of the last page of a file cut short since it
      // was mapped reads as: rare in a capture, so look at the file's size then.
      const bool suspect = (raw_seconds | caplen) == 0;
      if ((at >= next_check_ || suspect) && !check_mapping(at)) return fail_mapping(at);
      // A fault (a page past the end of a file cut short) may come from a read well ahead of
      // this record: the records wholly before the file's end are still the file's.
      if (mapping_->faulted() && !within_file(position_)) return fail_mapping(at);
      return Status::packet;
    }
    // The next record's header and the start of its frame (all that decoding reads of a usual
    // one): one record ahead is enough lead to find them in cache, and no line is fetched in
    // vain. A prefetch past the bytes read so far is harmless (an address, not a pointer).
    const uintptr_t next = reinterpret_cast<uintptr_t>(data_) + position_;
    __builtin_prefetch(reinterpret_cast<const void*>(next));
    __builtin_prefetch(reinterpret_cast<const void*>(next + 64));
    return Status::packet;
  }
  // The block of the mapping at `prefetched_`, and the fault ahead once per fault block.
  [[gnu::always_inline]] void prefetch_block() {
    const uint8_t* block = data_ + prefetched_;
    for (size_t line = 0; line < mapped_prefetch_step; line += 64) __builtin_prefetch(block + line, 0, 2);
    if (prefetched_ % mapped_fault_block == 0 && prefetched_ + mapped_fault_ahead < end_) {
      (void)*static_cast<const volatile uint8_t*>(block + mapped_fault_ahead);
    }
    prefetched_ += mapped_prefetch_step;
  }
  Status fail(uint64_t offset, std::string message);
  Status fail_mapping(uint64_t offset);
  // Whether the file, as it is now, still holds its first `until` bytes.
  bool within_file(size_t until) const;
  bool check_mapping(size_t at);
  uint32_t get32(const uint8_t* at) const {
    uint32_t value;
    std::memcpy(&value, at, 4);
    return swapped_ ? __builtin_bswap32(value) : value;
  }

  ByteStream& stream_;
  std::vector<uint8_t> buffer_;
  const uint8_t* data_ = nullptr;  // the bytes being walked: buffer_, the current chunk's, or the mapping
  size_t position_ = 0;  // next unread byte in buffer_
  size_t end_ = 0;       // end of the bytes read into buffer_
  uint64_t base_ = 0;    // stream offset of buffer_[0]
  bool at_end_ = false;  // the stream has no more bytes (or failed)
  bool started_ = false;
  bool swapped_ = false;
  bool nanosecond_ = false;
  uint32_t link_type_ = 0;
  uint32_t snapshot_ = 0;
  std::string error_;
  uint64_t error_offset_ = 0;

  // Mapped: the file's bytes, how far ahead of the records they were prefetched, and where
  // the next check of the file's size falls (the pages behind are handed back there too).
  static constexpr size_t mapped_prefetch_bytes = 4096, mapped_check_bytes = 512u << 10;
  static constexpr size_t mapped_fault_block = 64u << 10, mapped_fault_ahead = 128u << 10;
  static constexpr size_t mapped_prefetch_step = 512;  // divides mapped_fault_block
  static_assert(mapped_fault_block % mapped_prefetch_step == 0);
  std::unique_ptr<FileMapping> mapping_;
  size_t prefetched_ = 0, next_check_ = 0;

  // Read-ahead: chunks go from `empty_` to the thread, back in `full_`, in stream order.
  bool read_ahead_ = false;
  size_t chunk_bytes_ = 0;
  std::unique_ptr<Chunk> current_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::unique_ptr<Chunk>> empty_, full_;
  bool stopping_ = false;
  std::thread filler_;
};

}  // namespace rstscope::capture_detail
