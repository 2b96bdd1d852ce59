// rstscope-replay: sends the frames of a classic pcap file (Ethernet) out of one interface, as
// fast as it can or at a set rate, for the live benchmark (bench/live.sh). It is meant for a
// veth inside a network namespace that the caller created: frames go out exactly as captured,
// addresses included, so the capture must hold only addresses that may be sent there (the
// generator's documentation ranges).
//
//   rstscope-replay --interface IF --pcap FILE [--count N] [--seconds S] [--rate PPS]
//
// It stops after N frames (default: the whole file), after S seconds (default 60), or at the
// file's end, whichever comes first, and prints what it sent:
//   sent FRAMES BYTES SECONDS
// Frames longer than the interface allows, and records the file cuts short, end it with an
// error (exit code 2).
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr size_t batch_frames = 64;
constexpr uint32_t max_frame = 65535;

struct Options {
  std::string interface;
  std::string pcap;
  uint64_t count = UINT64_MAX;
  double seconds = 60;
  double rate = 0;  // frames per second, 0 for as fast as it goes
};

int usage() {
  std::fputs("usage: rstscope-replay --interface IF --pcap FILE [--count N] [--seconds S] [--rate PPS]\n",
             stderr);
  return 2;
}

bool parse(int argc, char** argv, Options& options) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i];
    const char* value = argv[i + 1];
    char* end = nullptr;
    errno = 0;
    if (name == "--interface") {
      options.interface = value;
    } else if (name == "--pcap") {
      options.pcap = value;
    } else if (name == "--count") {
      options.count = std::strtoull(value, &end, 10);
    } else if (name == "--seconds") {
      options.seconds = std::strtod(value, &end);
    } else if (name == "--rate") {
      options.rate = std::strtod(value, &end);
    } else {
      return false;
    }
    if (end != nullptr && (*end != '\0' || errno != 0)) return false;
  }
  return argc % 2 == 1 && !options.interface.empty() && !options.pcap.empty() && options.seconds > 0 &&
         options.rate >= 0;
}

// Reads the records of a classic pcap file in order, through a large reused buffer.
class Records {
 public:
  explicit Records(std::FILE* file) : file_(file), buffer_(8u << 20) {}
  // The link type, or -1 (with `error`) when the header is not a classic pcap's.
  long open(std::string& error) {
    uint8_t header[24];
    if (std::fread(header, 1, sizeof header, file_) != sizeof header) {
      error = "too short for a pcap header";
      return -1;
    }
    uint32_t magic;
    std::memcpy(&magic, header, 4);
    if (magic == 0xa1b2c3d4u || magic == 0xa1b23c4du) {
      swapped_ = false;
    } else if (magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u) {
      swapped_ = true;
    } else {
      error = "not a classic pcap file (pcapng and compressed files are not replayed)";
      return -1;
    }
    return static_cast<long>(load32(header + 20));
  }
  // The next frame, or nullptr at the end (`error` set when the file is cut short).
  const uint8_t* next(uint32_t& length, std::string& error) {
    if (!have(16)) {
      if (end_ != position_) error = "the last record is cut short";
      return nullptr;
    }
    const uint32_t caplen = load32(buffer_.data() + position_ + 8);
    if (caplen > max_frame) {
      error = "a record claims " + std::to_string(caplen) + " bytes";
      return nullptr;
    }
    if (!have(16 + size_t{caplen})) {
      error = "the last record is cut short";
      return nullptr;
    }
    const uint8_t* frame = buffer_.data() + position_ + 16;
    position_ += 16 + size_t{caplen};
    length = caplen;
    return frame;
  }
  // Frames handed out stay valid until this is called.
  void release() {
    std::memmove(buffer_.data(), buffer_.data() + position_, end_ - position_);
    end_ -= position_;
    position_ = 0;
  }
  // Whether `bytes` more can be had without moving what was handed out.
  bool room(size_t bytes) const { return buffer_.size() - position_ >= bytes; }

 private:
  uint32_t load32(const uint8_t* at) const {
    uint32_t value;
    std::memcpy(&value, at, 4);
    return swapped_ ? __builtin_bswap32(value) : value;
  }
  bool have(size_t bytes) {
    while (end_ - position_ < bytes) {
      if (end_ == buffer_.size()) return false;  // the caller releases first (room())
      const size_t got = std::fread(buffer_.data() + end_, 1, buffer_.size() - end_, file_);
      if (got == 0) return false;
      end_ += got;
    }
    return true;
  }
  std::FILE* file_;
  std::vector<uint8_t> buffer_;
  size_t position_ = 0, end_ = 0;
  bool swapped_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!parse(argc, argv, options)) return usage();
  std::FILE* file = std::fopen(options.pcap.c_str(), "rb");
  if (file == nullptr) {
    std::fprintf(stderr, "rstscope-replay: %s: %s\n", options.pcap.c_str(), std::strerror(errno));
    return 2;
  }
  Records records(file);
  std::string error;
  const long link_type = records.open(error);
  if (link_type != 1) {
    std::fprintf(stderr, "rstscope-replay: %s: %s\n", options.pcap.c_str(),
                 link_type < 0 ? error.c_str() : "only Ethernet captures (link type 1) are replayed");
    std::fclose(file);
    return 2;
  }
  const unsigned index = if_nametoindex(options.interface.c_str());
  if (index == 0) {
    std::fprintf(stderr, "rstscope-replay: no interface %s\n", options.interface.c_str());
    std::fclose(file);
    return 2;
  }
  // Protocol 0: this socket only sends, it receives nothing.
  const int fd = ::socket(AF_PACKET, SOCK_RAW, 0);
  if (fd < 0) {
    std::fprintf(stderr, "rstscope-replay: packet socket: %s (needs CAP_NET_RAW)\n", std::strerror(errno));
    std::fclose(file);
    return 2;
  }
  sockaddr_ll address{};
  address.sll_family = AF_PACKET;
  address.sll_ifindex = static_cast<int>(index);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    std::fprintf(stderr, "rstscope-replay: bind to %s: %s\n", options.interface.c_str(), std::strerror(errno));
    ::close(fd);
    std::fclose(file);
    return 2;
  }
  const int bypass = 1;  // straight to the driver: the replay measures the receiver, not a qdisc
  ::setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &bypass, sizeof bypass);

  using Clock = std::chrono::steady_clock;
  const Clock::time_point started = Clock::now();
  const Clock::time_point deadline = started + std::chrono::duration_cast<Clock::duration>(
                                                   std::chrono::duration<double>(options.seconds));
  uint64_t sent = 0, bytes = 0;
  int status = 0;
  mmsghdr messages[batch_frames];
  iovec vectors[batch_frames];
  bool more = true;
  while (more && sent < options.count && Clock::now() < deadline) {
    if (!records.room(16 + max_frame)) records.release();
    size_t batch = 0;
    while (batch < batch_frames && sent + batch < options.count && records.room(16 + max_frame)) {
      uint32_t length = 0;
      const uint8_t* frame = records.next(length, error);
      if (frame == nullptr) {
        more = false;
        break;
      }
      vectors[batch] = {const_cast<uint8_t*>(frame), length};
      messages[batch] = {};
      messages[batch].msg_hdr.msg_iov = &vectors[batch];
      messages[batch].msg_hdr.msg_iovlen = 1;
      ++batch;
    }
    size_t done = 0;
    while (done < batch) {
      const int rc = ::sendmmsg(fd, messages + done, static_cast<unsigned>(batch - done), 0);
      if (rc < 0) {
        // Interrupted, or the device's queue is full: try again, but not past the time bound.
        if ((errno == EINTR || errno == ENOBUFS || errno == EAGAIN) && Clock::now() < deadline) {
          std::this_thread::yield();
          continue;
        }
        std::fprintf(stderr, "rstscope-replay: sending frame %" PRIu64 ": %s\n", sent + done + 1,
                     std::strerror(errno));
        more = false;
        status = 2;
        break;
      }
      for (int i = 0; i < rc; ++i) bytes += vectors[done + static_cast<size_t>(i)].iov_len;
      done += static_cast<size_t>(rc);
    }
    sent += done;
    if (options.rate > 0) {
      // Paced per batch: wait until the frames sent so far are due.
      const auto due = started + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(static_cast<double>(sent) / options.rate));
      std::this_thread::sleep_until(std::min(due, deadline));
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  if (!error.empty()) {
    std::fprintf(stderr, "rstscope-replay: %s: %s\n", options.pcap.c_str(), error.c_str());
    status = 2;
  }
  std::printf("sent %" PRIu64 " %" PRIu64 " %.6f\n", sent, bytes, seconds);
  ::close(fd);
  std::fclose(file);
  return status;
}
