#pragma once
// Live capture from a network interface, and a pcap writer that rotates by size (tcpdump -w -C).
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "core/types.hpp"

typedef struct pcap pcap_t;
typedef struct pcap_dumper pcap_dumper_t;

namespace rstscope {

struct LiveOptions {
  std::string interface;
  std::string filter;                 // BPF expression, empty for none
  int snaplen = 262144;
  int buffer_bytes = 16 << 20;        // kernel ring buffer
  bool promiscuous = false;
  // The kernel hands packets over in blocks, when a block is full or this long after its first
  // packet (TPACKET_V3), rather than waking the reader for every packet (immediate mode). Frames
  // replayed into a veth at top speed (bench/live.sh, 1 M frames): immediate mode dropped 1-4 %
  // of them even with a 64 MiB buffer, and blocks dropped none, at 0.7-0.8 M frames/s against
  // 0.5 M, since the sender no longer paid a wake-up per frame. A packet reaches the analysis
  // at most this much later.
  int block_timeout_ms = 50;
};

// The wall clock (CLOCK_REALTIME) in nanoseconds, the clock a live capture stamps packets with.
int64_t wall_clock_ns();

struct LiveDrops {
  uint64_t kernel_dropped = 0;     // ps_drop: no room in the buffer
  uint64_t interface_dropped = 0;  // ps_ifdrop: dropped by the interface or driver
};

class LiveCapture {
 public:
  enum class Next : uint8_t { packet, timeout, end, error };

  LiveCapture() = default;
  ~LiveCapture();
  LiveCapture(const LiveCapture&) = delete;
  LiveCapture& operator=(const LiveCapture&) = delete;

  // Opens the interface; on failure returns false and error() says why.
  bool open(const LiveOptions& options);
  // Waits at most `timeout_ms` for a packet; on timeout the caller can advance its clock (to
  // settled_ns()). `packet.data` stays valid until the next call.
  Next next(Packet& packet, int timeout_ms);
  // A clock for the analysis at wall time `now_ns`: packets stamped before it have all been
  // handed over, while later ones may still sit in a block (twice its timeout, for the timer's
  // slack). Judging RSTs by `now_ns` itself could miss an answer still on its way.
  int64_t settled_ns(int64_t now_ns) const { return now_ns - int64_t{block_timeout_ms_} * 2'000'000; }
  // After a stop at wall time `stopped_ns`: the next packet captured before it, or false once
  // none is left, neither in the blocks not read yet nor in the last one, which the kernel
  // hands over only when its timeout runs out. Returns within twice that timeout of the stop
  // once the backlog is read.
  bool next_before(Packet& packet, int64_t stopped_ns);
  // The kernel's drop counters; false (and error()) if the platform cannot say.
  bool drops(LiveDrops& drops);
  uint32_t link_type() const { return link_type_; }
  const std::string& error() const { return error_; }
  void close();

 private:
  pcap_t* handle_ = nullptr;
  int selectable_fd_ = -1;
  uint32_t link_type_ = 0;
  uint64_t frames_ = 0;
  int block_timeout_ms_ = 0;
  std::string error_;
};

// Writes nanosecond pcap files: `path`, then `path`1, `path`2... once a file exceeds
// `rotate_bytes` (0 keeps one file), as tcpdump -w path -C does.
class PcapDumper {
 public:
  PcapDumper() = default;
  ~PcapDumper();
  PcapDumper(const PcapDumper&) = delete;
  PcapDumper& operator=(const PcapDumper&) = delete;

  // Refuses a file that exists (each rotated one too) unless `overwrite`.
  bool open(const std::string& path, uint32_t link_type, uint32_t snaplen = 262144,
            uint64_t rotate_bytes = 0, bool overwrite = false);
  // False once writing failed (a full disk, say); error() says why.
  bool write(const Packet& packet);
  bool flush();
  // False if the last bytes could not be written.
  bool close();
  uint64_t files_written() const { return file_index_ + (dumper_ != nullptr ? 1 : 0); }
  std::string current_path() const;
  const std::string& error() const { return error_; }

 private:
  bool open_current();

  // Writes what stdio still holds and closes the current file; false if that failed.
  bool close_current();

  std::string path_;
  uint64_t rotate_bytes_ = 0;
  uint64_t file_index_ = 0;  // files finished before the current one
  bool overwrite_ = false;
  pcap_t* dead_ = nullptr;
  pcap_dumper_t* dumper_ = nullptr;
  std::FILE* file_ = nullptr;  // the current file, owned by dumper_
  // stdio's buffer for the files: 1 MiB rather than 4 KiB, so a busy link is written in few calls.
  static constexpr size_t buffer_bytes = 1u << 20;
  std::unique_ptr<char[]> buffer_;
  std::string error_;
};

}  // namespace rstscope
