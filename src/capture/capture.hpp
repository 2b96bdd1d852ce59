#pragma once
// capture/: reads packets from files (pcap, pcapng, gzip or zstd compressed), standard input or
// memory, as one capture in time order. Bad input becomes an InputError, never a crash.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/fetch_ahead.hpp"
#include "core/stats.hpp"
#include "core/types.hpp"

namespace rstscope {

// How classic pcap files are read. Both give the same packets and errors; libpcap is the
// reference, the own reader is faster (it walks records in place in one reused buffer).
enum class PcapReaderChoice : uint8_t { fast, libpcap };

struct CaptureOptions {
  std::string filter;                   // tcpdump/BPF expression, empty for none
  size_t read_buffer_bytes = 1u << 20;  // read buffer per input (fits in L2), shared out when there are many
  PcapReaderChoice pcap_reader = PcapReaderChoice::fast;
  // A single compressed classic pcap input is read and decompressed ahead on a thread of its
  // own, so the thread that walks its records does not pay for the decompression. For runs that
  // have cores to spare (--threads 2 and more). A plain file is read on the walking thread: the
  // copy out of the page cache then lands in that core's cache, and handed over from another
  // core it cost more than it saved (two threads on the benchmark capture: 0.84 s against 0.87 s
  // median wall over 21 interleaved runs, 1.43 s against 1.52 s of CPU time).
  bool read_ahead = false;
  // A single plain classic pcap file is mapped and its records walked where they lie, which
  // skips the copy out of the page cache that read() makes (the benchmark capture: about 0.9 s
  // against 1.0 s with one thread). Several inputs are read instead, since each mapping keeps
  // a few megabytes resident while the merge has them all open.
  bool map_file = true;
  // How many bytes of a mapping's pages behind the reader gather before they are handed back;
  // 0 for the mapping's own default (512 KiB). Each hand-back interrupts the process's other
  // running threads to flush their TLBs, so a caller with threads busy beside the reader sets
  // a larger step.
  size_t mapped_release_step = 0;
};

class CaptureSet {
 public:
  explicit CaptureSet(CaptureOptions options = {});
  ~CaptureSet();
  CaptureSet(const CaptureSet&) = delete;
  CaptureSet& operator=(const CaptureSet&) = delete;

  // Adds a file, "-" for standard input, or a directory (its capture files, by name).
  // Failures are recorded in stats().errors; returns false if nothing could be opened.
  // Detects pcap, pcapng, gzip and zstd by magic number, never by name.
  bool add_path(const std::string& path);
  // Adds a capture held in memory (tests, generators). `name` appears in errors.
  bool add_memory(std::string name, std::vector<uint8_t> bytes);

  // The next packet in time order across all inputs (a k-way merge, as mergecap does).
  // `packet.data` stays valid until the next call. Returns false when every input is done.
  bool next(Packet& packet);

  const CaptureStats& stats() const;

  // A step of fetching ahead for a loop to take while it is busy (see FetchAhead): for one mapped
  // classic pcap file, unfiltered; empty otherwise. Valid while this set lives.
  FetchAhead fetch_ahead();

  // Checks a BPF expression for `link_type`; returns an empty string if it compiles, else why not.
  static std::string check_filter(const std::string& expression, uint32_t link_type = 1);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rstscope
