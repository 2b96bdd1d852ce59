// rstscope-readlimit: the practical read limit for a classic pcap file on this machine.
//
// It reads the file with read() into one large reused buffer, walks every record (either byte
// order, microsecond or nanosecond), parses down to the TCP flags (Ethernet with any number of
// 802.1Q/802.1ad tags, Linux cooked v1/v2, raw IP; IPv4; IPv6 with extension headers) and
// counts RSTs. Nothing else: any analyser reading the same file is slower than this.
// Every read of packet bytes is bounds-checked.
//
//   rstscope-readlimit FILE                 counts packets, TCP segments and RSTs
//   rstscope-readlimit FILE --head N OUT    also writes the first N records to OUT
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Counts {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t tcp = 0;
  uint64_t rsts = 0;
  uint64_t skipped = 0;  // not TCP, fragments, truncated or malformed
};

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

uint32_t load32(const uint8_t* p, bool swapped) {
  uint32_t value;
  std::memcpy(&value, p, 4);
  return swapped ? __builtin_bswap32(value) : value;
}

// Returns the TCP flags byte, or -1 when the packet holds no (first-fragment) TCP header.
int tcp_flags_ip(const uint8_t* data, size_t length) {
  if (length < 1) return -1;
  const int version = data[0] >> 4;
  if (version == 4) {
    if (length < 20) return -1;
    const size_t header = static_cast<size_t>(data[0] & 0x0f) * 4;
    if (header < 20 || header > length) return -1;
    if (data[9] != 6) return -1;
    if ((be16(data + 6) & 0x1fff) != 0) return -1;  // not the first fragment
    if (length < header + 14) return -1;
    return data[header + 13];
  }
  if (version == 6) {
    if (length < 40) return -1;
    uint8_t next = data[6];
    size_t offset = 40;
    for (int depth = 0; depth < 8; ++depth) {
      if (next == 6) {
        if (length < offset + 14) return -1;
        return data[offset + 13];
      }
      if (next == 0 || next == 43 || next == 60) {  // hop-by-hop, routing, destination options
        if (length < offset + 8) return -1;
        next = data[offset];
        offset += (static_cast<size_t>(data[offset + 1]) + 1) * 8;
      } else if (next == 44) {  // fragment header
        if (length < offset + 8) return -1;
        if ((be16(data + offset + 2) & 0xfff8) != 0) return -1;
        next = data[offset];
        offset += 8;
      } else if (next == 51) {  // authentication header
        if (length < offset + 8) return -1;
        next = data[offset];
        offset += (static_cast<size_t>(data[offset + 1]) + 2) * 4;
      } else {
        return -1;
      }
    }
    return -1;
  }
  return -1;
}

int tcp_flags_ethertype(uint16_t type, const uint8_t* data, size_t length) {
  if (type == 0x0800 || type == 0x86dd) return tcp_flags_ip(data, length);
  return -1;
}

int tcp_flags(uint32_t link_type, const uint8_t* data, size_t length) {
  switch (link_type) {
    case 1: {  // Ethernet
      if (length < 14) return -1;
      uint16_t type = be16(data + 12);
      size_t offset = 14;
      while (type == 0x8100 || type == 0x88a8 || type == 0x9100) {
        if (length < offset + 4) return -1;
        type = be16(data + offset + 2);
        offset += 4;
      }
      return tcp_flags_ethertype(type, data + offset, length - offset);
    }
    case 101:  // raw IP
    case 228:  // IPv4
    case 229:  // IPv6
      return tcp_flags_ip(data, length);
    case 113:  // Linux cooked v1
      if (length < 16) return -1;
      return tcp_flags_ethertype(be16(data + 14), data + 16, length - 16);
    case 276:  // Linux cooked v2
      if (length < 20) return -1;
      return tcp_flags_ethertype(be16(data), data + 20, length - 20);
    default:
      return -1;
  }
}

class Reader {
 public:
  Reader(int fd, size_t size) : fd_(fd), buffer_(size) {}

  // Makes at least `want` bytes available at data(); false at end of file or on error.
  bool fill(size_t want) {
    if (end_ - start_ >= want) return true;
    if (want > buffer_.size()) buffer_.resize(want);
    std::memmove(buffer_.data(), buffer_.data() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
    while (end_ < want) {
      const ssize_t got = ::read(fd_, buffer_.data() + end_, buffer_.size() - end_);
      if (got < 0) {
        std::perror("read");
        error_ = true;
        return false;
      }
      if (got == 0) return false;
      end_ += static_cast<size_t>(got);
    }
    return true;
  }
  const uint8_t* data() const { return buffer_.data() + start_; }
  void consume(size_t bytes) { start_ += bytes; }
  size_t available() const { return end_ - start_; }
  bool error() const { return error_; }

 private:
  int fd_;
  std::vector<uint8_t> buffer_;
  size_t start_ = 0, end_ = 0;
  bool error_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 5) {
    std::fputs("usage: rstscope-readlimit FILE [--head N OUT]\n", stderr);
    return 2;
  }
  uint64_t head = UINT64_MAX;
  std::FILE* out = nullptr;
  if (argc == 5) {
    if (std::strcmp(argv[2], "--head") != 0) {
      std::fputs("usage: rstscope-readlimit FILE [--head N OUT]\n", stderr);
      return 2;
    }
    head = std::strtoull(argv[3], nullptr, 10);
    out = std::fopen(argv[4], "wb");
    if (out == nullptr) {
      std::perror(argv[4]);
      return 1;
    }
    std::setvbuf(out, nullptr, _IOFBF, 4u << 20);
  }
  const auto started = std::chrono::steady_clock::now();
  const int fd = ::open(argv[1], O_RDONLY);
  if (fd < 0) {
    std::perror(argv[1]);
    return 1;
  }
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  Reader reader(fd, 8u << 20);
  if (!reader.fill(24)) {
    std::fprintf(stderr, "%s: too short for a pcap header\n", argv[1]);
    return 1;
  }
  const uint8_t* header = reader.data();
  uint32_t magic;
  std::memcpy(&magic, header, 4);
  bool swapped = false;
  if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d) {
    swapped = false;
  } else if (magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1) {
    swapped = true;
  } else {
    std::fprintf(stderr, "%s: not a classic pcap file (pcapng is not read here)\n", argv[1]);
    return 1;
  }
  const uint32_t link_type = load32(header + 20, swapped) & 0x0fffffff;
  if (out != nullptr) std::fwrite(header, 1, 24, out);
  reader.consume(24);

  Counts counts;
  int status = 0;
  while (counts.packets < head && reader.fill(16)) {
    const uint8_t* record = reader.data();
    const uint32_t caplen = load32(record + 8, swapped);
    if (caplen > (256u << 20)) {
      std::fprintf(stderr, "%s: record %" PRIu64 " claims %u bytes; stopping\n", argv[1],
                   counts.packets + 1, caplen);
      status = 1;
      break;
    }
    if (!reader.fill(16 + static_cast<size_t>(caplen))) {
      std::fprintf(stderr, "%s: record %" PRIu64 " is cut short\n", argv[1], counts.packets + 1);
      status = 1;
      break;
    }
    record = reader.data();
    ++counts.packets;
    counts.bytes += caplen;
    const int flags = tcp_flags(link_type, record + 16, caplen);
    if (flags < 0) {
      ++counts.skipped;
    } else {
      ++counts.tcp;
      if ((flags & 0x04) != 0) ++counts.rsts;
    }
    if (out != nullptr) std::fwrite(record, 1, 16 + static_cast<size_t>(caplen), out);
    reader.consume(16 + static_cast<size_t>(caplen));
  }
  if (reader.error()) status = 1;
  ::close(fd);
  if (out != nullptr && std::fclose(out) != 0) {
    std::perror(argv[4]);
    status = 1;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("packets %" PRIu64 "\ntcp %" PRIu64 "\nrsts %" PRIu64 "\nskipped %" PRIu64
              "\nbytes %" PRIu64 "\nseconds %.3f\npackets_per_second %.0f\n",
              counts.packets, counts.tcp, counts.rsts, counts.skipped, counts.bytes, seconds,
              seconds > 0 ? static_cast<double>(counts.packets) / seconds : 0.0);
  return status;
}
