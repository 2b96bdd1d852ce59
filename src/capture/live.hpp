#pragma once
// Live capture from a network interface, and a pcap writer that rotates by size (tcpdump -w -C).
#include <cstdint>
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
};

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

  // Opens the interface in immediate mode; on failure returns false and error() says why.
  bool open(const LiveOptions& options);
  // Waits at most `timeout_ms` for a packet; on timeout the caller can advance its clock.
  // `packet.data` stays valid until the next call.
  Next next(Packet& packet, int timeout_ms);
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

  bool open(const std::string& path, uint32_t link_type, uint32_t snaplen = 262144,
            uint64_t rotate_bytes = 0);
  bool write(const Packet& packet);
  bool flush();
  void close();
  uint64_t files_written() const { return file_index_ + (dumper_ != nullptr ? 1 : 0); }
  std::string current_path() const;
  const std::string& error() const { return error_; }

 private:
  bool open_current();

  std::string path_;
  uint64_t rotate_bytes_ = 0;
  uint64_t file_index_ = 0;  // files finished before the current one
  pcap_t* dead_ = nullptr;
  pcap_dumper_t* dumper_ = nullptr;
  std::string error_;
};

}  // namespace rstscope
