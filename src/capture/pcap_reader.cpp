#include "capture/pcap_reader.hpp"

#include <algorithm>
#include <cstring>

#include "capture/stream.hpp"
#include "core/thread_name.hpp"

namespace rstscope::capture_detail {

namespace {

constexpr uint32_t magic_microsecond = 0xa1b2c3d4;
constexpr uint32_t magic_nanosecond = 0xa1b23c4d;
constexpr size_t record_header_bytes = PcapReader::record_header_bytes;
constexpr uint32_t maximum_snaplen = PcapReader::maximum_snaplen;
// The low 26 bits of the header's link type field; the rest hold FCS details.
constexpr uint32_t link_type_mask = 0x03FFFFFF;

uint32_t load32(const uint8_t* at) {
  uint32_t value = 0;
  std::memcpy(&value, at, 4);
  return value;
}

uint16_t load16(const uint8_t* at) {
  uint16_t value = 0;
  std::memcpy(&value, at, 2);
  return value;
}

// Link types whose bytes libpcap hands out untouched and whose LINKTYPE and DLT values agree
// (or, for raw IP, map back to the same LINKTYPE). libpcap rewrites the pseudo-headers of
// USB, NFLOG, PFLOG and, from swapped files, SocketCAN inside Linux cooked captures.
bool link_type_untouched(uint32_t link_type, bool swapped) {
  switch (link_type) {
    case 0:    // NULL (BSD loopback)
    case 1:    // Ethernet
    case 101:  // raw IP
    case 228:  // IPv4
    case 229:  // IPv6
      return true;
    case 113:  // Linux cooked v1
    case 276:  // Linux cooked v2
      return !swapped;
    default:
      return false;
  }
}

std::string truncated_message(const char* what, uint64_t wanted, size_t got) {
  return "truncated dump file; tried to read " + std::to_string(wanted) + " " + what +
         ", only got " + std::to_string(got);
}

}  // namespace

bool PcapReader::supports(const uint8_t* header, size_t length) {
  if (length < file_header_bytes) return false;
  const uint32_t magic = load32(header);
  bool swapped = false;
  if (magic == __builtin_bswap32(magic_microsecond) || magic == __builtin_bswap32(magic_nanosecond)) {
    swapped = true;
  } else if (magic != magic_microsecond && magic != magic_nanosecond) {
    return false;
  }
  uint16_t major = load16(header + 4), minor = load16(header + 6);
  uint32_t link_type = load32(header + 20);
  if (swapped) {
    major = __builtin_bswap16(major);
    minor = __builtin_bswap16(minor);
    link_type = __builtin_bswap32(link_type);
  }
  // Versions before 2.4 may hold caplen and len the other way round; libpcap guesses there.
  if (major != 2 || minor != 4) return false;
  return link_type_untouched(link_type & link_type_mask, swapped);
}

// Room at the front of each read-ahead chunk for the partial record carried over from the one
// before: records are at most this long.
constexpr size_t carry_bytes = record_header_bytes + maximum_snaplen;

PcapReader::PcapReader(ByteStream& stream, size_t buffer_bytes, Fill fill, size_t release_step)
    : stream_(stream), read_ahead_(fill == Fill::read_ahead) {
  if (fill == Fill::map) {
    // The mapping starts at the file's first byte, where the stream's bytes start too.
    mapping_ = FileMapping::open(stream.mappable_fd(), release_step);
    if (mapping_ != nullptr) {
      data_ = mapping_->data();
      end_ = mapping_->size();
      return;
    }
  }
  if (!read_ahead_) {
    buffer_.resize(std::max(buffer_bytes, record_header_bytes + file_header_bytes));
    data_ = buffer_.data();
    return;
  }
  chunk_bytes_ = std::max(buffer_bytes, record_header_bytes + file_header_bytes);
  for (size_t i = 0; i < chunk_count; ++i) {
    auto chunk = std::make_unique<Chunk>();
    chunk->bytes.resize(carry_bytes + chunk_bytes_);
    empty_.push_back(std::move(chunk));
  }
  filler_ = std::thread([this] {
    name_this_thread("rstscope-read");
    fill_chunks();
  });
}

PcapReader::~PcapReader() {
  if (!filler_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  filler_.join();
}

void PcapReader::fill_chunks() {
  for (bool last = false; !last;) {
    std::unique_ptr<Chunk> chunk;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || !empty_.empty(); });
      if (stopping_) return;
      chunk = std::move(empty_.front());
      empty_.pop_front();
    }
    chunk->filled = 0;
    chunk->last = false;
    while (chunk->filled < chunk_bytes_) {
      const ptrdiff_t got = stream_.read(chunk->bytes.data() + carry_bytes + chunk->filled, chunk_bytes_ - chunk->filled);
      if (got <= 0) {
        chunk->last = last = true;
        break;
      }
      chunk->filled += static_cast<size_t>(got);
    }
    {
      std::lock_guard lock(mutex_);
      full_.push_back(std::move(chunk));
    }
    changed_.notify_all();
  }
}

// ensure() for read-ahead: moves on to the next chunk, carrying the partial record over.
bool PcapReader::ensure_ahead(size_t count) {
  while (end_ - position_ < count) {
    if (at_end_) return false;
    std::unique_ptr<Chunk> next;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return !full_.empty(); });
      next = std::move(full_.front());
      full_.pop_front();
    }
    const size_t tail = end_ - position_;  // below carry_bytes: a record is never longer
    uint8_t* front = next->bytes.data() + carry_bytes - tail;
    if (tail > 0) std::memcpy(front, data_ + position_, tail);
    // Offsets are base_ + a position; unsigned wrap-around keeps them right.
    base_ += position_ - (carry_bytes - tail);
    at_end_ = next->last;
    if (current_ != nullptr) {
      {
        std::lock_guard lock(mutex_);
        empty_.push_back(std::move(current_));
      }
      changed_.notify_all();
    }
    current_ = std::move(next);
    data_ = current_->bytes.data();
    position_ = carry_bytes - tail;
    end_ = carry_bytes + current_->filled;
  }
  return true;
}

PcapReader::Status PcapReader::fail(uint64_t offset, std::string message) {
  error_ = std::move(message);
  error_offset_ = offset;
  at_end_ = true;
  return Status::error;
}

// Every so often while a mapped file is walked (the record at `at` just taken): hands back the
// pages behind it, and looks at the file's size. A file cut short since it was mapped reads as
// zeros to the end of its last page, then faults: stop at its new end instead, as read() would,
// or fail if the record just taken reaches past it. Returns false then.
bool PcapReader::check_mapping(size_t at) {
  next_check_ = at + mapped_check_bytes;
  mapping_->release_before(at);
  const uint64_t now = mapping_->file_size();
  if (now >= end_) return true;
  if (now < position_) return false;
  end_ = static_cast<size_t>(now);
  return true;
}

bool PcapReader::within_file(size_t until) const { return mapping_->file_size() >= until; }

PcapReader::Status PcapReader::fail_mapping(uint64_t offset) {
  const uint64_t now = mapping_->file_size();
  if (now < mapping_->size()) {
    return fail(offset, "the file shrank to " + std::to_string(now) + " bytes while it was read (it had " +
                            std::to_string(mapping_->size()) + ")");
  }
  return fail(offset, "part of the file could not be read (an I/O error)");
}

// ensure() when the bytes are not there yet: makes `count` unread bytes available at
// data_[position_], reading as much as fits.
// Returns false at the end of the stream (or on a stream error) with fewer bytes there.
bool PcapReader::refill(size_t count) {
  if (read_ahead_) return ensure_ahead(count);
  if (mapping_ != nullptr) {
    // The end of the mapping: the file may have grown since it was mapped, as a capture still
    // being written does; read() would find those bytes too.
    if (!mapping_->faulted() && mapping_->grow()) {
      data_ = mapping_->data();
      end_ = mapping_->size();
    }
    return end_ - position_ >= count;
  }
  if (at_end_) return false;
  if (count > buffer_.size()) {
    // Only a record larger than the buffer gets here, its length already checked: doubling
    // keeps the number of reallocations small, the cap keeps hostile lengths from growing it.
    buffer_.resize(std::max(count, std::min(2 * buffer_.size(), record_header_bytes + maximum_snaplen)));
    data_ = buffer_.data();
  }
  // Carry the partial record to the front so the read can fill the rest of the buffer.
  if (position_ > 0) {
    const size_t tail = end_ - position_;
    if (tail > 0) std::memmove(buffer_.data(), buffer_.data() + position_, tail);
    base_ += position_;
    end_ = tail;
    position_ = 0;
  }
  while (end_ < count) {
    const ptrdiff_t got = stream_.read(buffer_.data() + end_, buffer_.size() - end_);
    if (got <= 0) {
      at_end_ = true;
      return false;
    }
    end_ += static_cast<size_t>(got);
  }
  return true;
}

bool PcapReader::start() {
  started_ = true;
  if (!ensure(file_header_bytes) || !supports(data_ + position_, file_header_bytes)) return false;
  const uint8_t* header = data_ + position_;
  const uint32_t magic = load32(header);
  swapped_ = magic != magic_microsecond && magic != magic_nanosecond;
  nanosecond_ = (swapped_ ? __builtin_bswap32(magic) : magic) == magic_nanosecond;
  const uint32_t snaplen = get32(header + 16);
  link_type_ = get32(header + 20) & link_type_mask;
  // As libpcap: no snap length, or one beyond the maximum, means the maximum.
  snapshot_ = snaplen == 0 || snaplen > maximum_snaplen ? maximum_snaplen : snaplen;
  position_ += file_header_bytes;
  return true;
}

PcapReader::Status PcapReader::next_slow(PcapRecord& record) {
  if (!started_ && !start()) {
    if (!stream_.error().empty()) return fail(base_ + end_, stream_.error());
    return fail(0, "not a pcap file this reader handles");
  }
  const uint64_t offset = base_ + position_;
  // A page read before this record (by whoever read the last record's bytes) was lost.
  if (mapping_ != nullptr && mapping_->faulted()) return fail_mapping(offset);
  if (!ensure(record_header_bytes)) {
    if (mapping_ != nullptr && mapping_->faulted()) return fail_mapping(offset);
    if (!stream_.error().empty()) return fail(offset, stream_.error());
    const size_t have = end_ - position_;
    if (have == 0) {
      // The end: the pages still mapped need not stay resident while the analysis finishes.
      if (mapping_ != nullptr) mapping_->release_all();
      return Status::end;
    }
    return fail(offset, truncated_message("header bytes", record_header_bytes, have));
  }
  const uint32_t caplen = get32(data_ + position_ + 8);
  if (caplen > maximum_snaplen) {
    return fail(offset, "invalid packet capture length " + std::to_string(caplen) +
                            ", bigger than snaplen of " + std::to_string(snapshot_));
  }
  if (!ensure(record_header_bytes + caplen)) {
    if (mapping_ != nullptr && mapping_->faulted()) return fail_mapping(offset);
    if (!stream_.error().empty()) return fail(offset, stream_.error());
    const size_t have = end_ - position_ - record_header_bytes;
    // libpcap first reads up to the snap length, then skips the rest of a longer record.
    const uint32_t wanted = caplen > snapshot_ && have < snapshot_ ? snapshot_ : caplen;
    return fail(offset, truncated_message("captured bytes", wanted, have));
  }
  return take(record, data_ + position_, caplen);
}

}  // namespace rstscope::capture_detail
