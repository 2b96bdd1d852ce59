#include "capture/live.hpp"

#include <pcap/pcap.h>
#include <poll.h>

#include <cerrno>
#include <ctime>
#include <cstring>

namespace rstscope {

LiveCapture::~LiveCapture() { close(); }

void LiveCapture::close() {
  if (handle_ != nullptr) pcap_close(handle_);
  handle_ = nullptr;
  selectable_fd_ = -1;
}

bool LiveCapture::open(const LiveOptions& options) {
  close();
  error_.clear();
  char message[PCAP_ERRBUF_SIZE] = {};
  handle_ = pcap_create(options.interface.empty() ? nullptr : options.interface.c_str(), message);
  if (handle_ == nullptr) {
    error_ = "cannot open interface " + options.interface + ": " + message;
    return false;
  }
  pcap_set_snaplen(handle_, options.snaplen);
  pcap_set_promisc(handle_, options.promiscuous ? 1 : 0);
  pcap_set_immediate_mode(handle_, 0);
  pcap_set_buffer_size(handle_, options.buffer_bytes);
  pcap_set_timeout(handle_, options.block_timeout_ms);
  block_timeout_ms_ = options.block_timeout_ms;
  // Nanosecond stamps where the platform has them; microseconds are fine otherwise.
  pcap_set_tstamp_precision(handle_, PCAP_TSTAMP_PRECISION_NANO);
  const int status = pcap_activate(handle_);
  if (status < 0) {
    const std::string detail = status == PCAP_ERROR ? pcap_geterr(handle_) : pcap_statustostr(status);
    error_ = "cannot capture on " + (options.interface.empty() ? std::string("the default interface")
                                                              : options.interface) +
             ": " + detail;
    if (status == PCAP_ERROR_PERM_DENIED) error_ += " (needs CAP_NET_RAW or root)";
    close();
    return false;
  }
  if (!options.filter.empty()) {
    bpf_program program{};
    if (pcap_compile(handle_, &program, options.filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
      error_ = "cannot compile filter \"" + options.filter + "\": " + pcap_geterr(handle_);
      close();
      return false;
    }
    const int set = pcap_setfilter(handle_, &program);
    pcap_freecode(&program);
    if (set != 0) {
      error_ = std::string("cannot set filter: ") + pcap_geterr(handle_);
      close();
      return false;
    }
  }
  const int dlt = pcap_datalink(handle_);
  link_type_ = dlt == DLT_RAW ? 101u : static_cast<uint32_t>(dlt);
  selectable_fd_ = pcap_get_selectable_fd(handle_);
  // Non-blocking reads plus poll() give the caller its timeout; without an fd, pcap's own applies.
  if (selectable_fd_ >= 0 && pcap_setnonblock(handle_, 1, message) != 0) selectable_fd_ = -1;
  return true;
}

LiveCapture::Next LiveCapture::next(Packet& packet, int timeout_ms) {
  if (handle_ == nullptr) {
    if (error_.empty()) error_ = "not open";
    return Next::error;
  }
  // Two tries at most: one read, and one more after poll() says data is ready.
  for (int attempt = 0; attempt < 2; ++attempt) {
    pcap_pkthdr* header = nullptr;
    const u_char* data = nullptr;
    const int rc = pcap_next_ex(handle_, &header, &data);
    if (rc == 1) {
      packet.ts_ns = static_cast<int64_t>(header->ts.tv_sec) * 1000000000 +
                     static_cast<int64_t>(header->ts.tv_usec) *
                         (pcap_get_tstamp_precision(handle_) == PCAP_TSTAMP_PRECISION_NANO ? 1 : 1000);
      packet.link_type = link_type_;
      packet.data = data;
      packet.caplen = header->caplen;
      packet.origlen = header->len;
      packet.frame = ++frames_;
      return Next::packet;
    }
    if (rc == PCAP_ERROR_BREAK) return Next::end;
    if (rc != 0) {
      error_ = pcap_geterr(handle_);
      return Next::error;
    }
    if (attempt == 1 || selectable_fd_ < 0) break;
    pollfd wait{selectable_fd_, POLLIN, 0};
    const int ready = ::poll(&wait, 1, timeout_ms);
    if (ready == 0) return Next::timeout;
    if (ready < 0 && errno != EINTR) {
      error_ = std::string("poll failed: ") + std::strerror(errno);
      return Next::error;
    }
  }
  return Next::timeout;
}

int64_t wall_clock_ns() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

bool LiveCapture::next_before(Packet& packet, int64_t stopped_ns) {
  for (;;) {
    const Next result = next(packet, 20);
    if (result == Next::packet) return packet.ts_ns <= stopped_ns;  // a later one: all were read
    if (result != Next::timeout || settled_ns(wall_clock_ns()) >= stopped_ns) return false;
  }
}

bool LiveCapture::drops(LiveDrops& drops) {
  if (handle_ == nullptr) return false;
  pcap_stat stats{};
  if (pcap_stats(handle_, &stats) != 0) {
    error_ = pcap_geterr(handle_);
    return false;
  }
  drops.kernel_dropped = stats.ps_drop;
  drops.interface_dropped = stats.ps_ifdrop;
  return true;
}

PcapDumper::~PcapDumper() { close(); }

bool PcapDumper::close_current() {
  if (dumper_ == nullptr) return true;
  const bool written = std::fflush(file_) == 0 && std::ferror(file_) == 0;
  if (!written && error_.empty()) error_ = "write to " + current_path() + " failed: " + std::strerror(errno);
  pcap_dump_close(dumper_);  // closes file_ too
  dumper_ = nullptr;
  file_ = nullptr;
  return written;
}

bool PcapDumper::close() {
  const bool written = close_current();
  if (dead_ != nullptr) pcap_close(dead_);
  dead_ = nullptr;
  return written;
}

std::string PcapDumper::current_path() const {
  return file_index_ == 0 ? path_ : path_ + std::to_string(file_index_);
}

bool PcapDumper::open(const std::string& path, uint32_t link_type, uint32_t snaplen,
                      uint64_t rotate_bytes, bool overwrite) {
  close();
  error_.clear();
  path_ = path;
  rotate_bytes_ = rotate_bytes;
  file_index_ = 0;
  overwrite_ = overwrite;
  const int dlt = link_type == 101 ? DLT_RAW : static_cast<int>(link_type);
  dead_ = pcap_open_dead_with_tstamp_precision(dlt, static_cast<int>(snaplen), PCAP_TSTAMP_PRECISION_NANO);
  if (dead_ == nullptr) {
    error_ = "cannot prepare a pcap writer";
    return false;
  }
  return open_current();
}

bool PcapDumper::open_current() {
  const std::string name = current_path();
  // "x" (C11) refuses an existing file: a capture is never silently replaced.
  std::FILE* file = std::fopen(name.c_str(), overwrite_ ? "wb" : "wbx");
  if (file == nullptr) {
    error_ = errno == EEXIST ? name + " already exists; add --force to overwrite it"
                             : "cannot write " + name + ": " + std::strerror(errno);
    return false;
  }
  if (!buffer_) buffer_ = std::make_unique<char[]>(buffer_bytes);
  std::setvbuf(file, buffer_.get(), _IOFBF, buffer_bytes);
  dumper_ = pcap_dump_fopen(dead_, file);
  if (dumper_ == nullptr) {
    error_ = "cannot write " + name + ": " + pcap_geterr(dead_);
    std::fclose(file);
    return false;
  }
  file_ = file;
  return true;
}

bool PcapDumper::write(const Packet& packet) {
  if (dumper_ == nullptr) {
    if (error_.empty()) error_ = "not open";
    return false;
  }
  // As tcpdump -C: the size is checked before each packet, so a file may end a little past it.
  if (rotate_bytes_ != 0) {
    const int64_t size = pcap_dump_ftell64(dumper_);
    if (size >= 0 && static_cast<uint64_t>(size) > rotate_bytes_) {
      if (!close_current()) return false;
      ++file_index_;
      if (!open_current()) return false;
    }
  }
  pcap_pkthdr header{};
  header.ts.tv_sec = static_cast<time_t>(packet.ts_ns / 1000000000);
  header.ts.tv_usec = static_cast<suseconds_t>(packet.ts_ns % 1000000000);
  header.caplen = packet.caplen;
  header.len = packet.origlen < packet.caplen ? packet.caplen : packet.origlen;
  pcap_dump(reinterpret_cast<u_char*>(dumper_), &header, packet.data);
  if (std::ferror(file_) != 0) {  // pcap_dump() says nothing of a failed write
    error_ = "write to " + current_path() + " failed: " + std::strerror(errno);
    return false;
  }
  return true;
}

bool PcapDumper::flush() {
  if (dumper_ == nullptr) return false;
  if (pcap_dump_flush(dumper_) != 0) {
    error_ = "write to " + current_path() + " failed";
    return false;
  }
  return true;
}

}  // namespace rstscope
