#include "capture/capture.hpp"

#include <pcap/pcap.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "capture/pcap_reader.hpp"
#include "capture/pcapng.hpp"
#include "capture/stream.hpp"

namespace rstscope {

namespace {

using capture_detail::ByteStream;
using capture_detail::PcapReader;
using capture_detail::PcapRecord;
using capture_detail::PcapngReader;
using capture_detail::PcapngRecord;

constexpr uint32_t linktype_raw = 101;
constexpr size_t min_read_buffer_bytes = 64u << 10;

enum class Format : uint8_t { unknown, pcap, pcapng };

Format format_of(const uint8_t* magic, size_t length) {
  if (length < 4) return Format::unknown;
  const uint32_t big = static_cast<uint32_t>(magic[0]) << 24 | static_cast<uint32_t>(magic[1]) << 16 |
                       static_cast<uint32_t>(magic[2]) << 8 | magic[3];
  if (big == 0x0A0D0D0A) return Format::pcapng;
  // Classic pcap in either byte order: microsecond, nanosecond and the modified (Kuznetzov) form.
  for (const uint32_t known : {0xa1b2c3d4u, 0xa1b23c4du, 0xa1b2cd34u}) {
    if (big == known || big == __builtin_bswap32(known)) return Format::pcap;
  }
  return Format::unknown;
}

// libpcap reports DLT values; packets carry LINKTYPE values (they differ only for raw IP here).
uint32_t linktype_from_dlt(int dlt) {
  if (dlt == DLT_RAW) return linktype_raw;
  return static_cast<uint32_t>(dlt);
}

int dlt_from_linktype(uint32_t link_type) {
  if (link_type == linktype_raw) return DLT_RAW;
  return static_cast<int>(link_type);
}

std::string hex_bytes(const uint8_t* bytes, size_t length) {
  std::string text;
  char part[4];
  for (size_t i = 0; i < length; ++i) {
    std::snprintf(part, sizeof part, i == 0 ? "%02x" : " %02x", bytes[i]);
    text += part;
  }
  return text;
}

}  // namespace

struct CaptureSet::Impl {
  struct Input {
    std::string name;
    std::unique_ptr<ByteStream> stream;
    Format format = Format::unknown;
    std::vector<char> buffer;
    std::FILE* file = nullptr;
    pcap_t* handle = nullptr;
    uint32_t handle_link_type = 0;
    std::unique_ptr<PcapngReader> reader;
    std::unique_ptr<PcapReader> pcap_reader;
    bool done = false;
    bool has_head = false;
    int64_t ts_ns = 0;
    uint32_t link_type = 0, caplen = 0, origlen = 0;
    const uint8_t* data = nullptr;

    ~Input() { close(); }
    void close() {
      // pcap_close() also closes the FILE it was given.
      if (handle != nullptr) {
        pcap_close(handle);
        handle = nullptr;
        file = nullptr;
      }
      if (file != nullptr) {
        std::fclose(file);
        file = nullptr;
      }
      reader.reset();
      pcap_reader.reset();
      stream.reset();
      buffer = std::vector<char>();
    }
  };

  struct Filter {
    uint32_t link_type = 0;
    bpf_program program{};
    bool ok = false;
  };

  CaptureOptions options;
  std::vector<std::unique_ptr<Input>> inputs;
  std::vector<Filter> filters;
  CaptureStats stats;
  bool started = false;
  size_t pending = SIZE_MAX;  // input whose delivered packet must be replaced on the next call
  Input* single = nullptr;    // the one input, when next_single() can serve it
  uint64_t frames = 0;

  ~Impl() {
    for (Filter& filter : filters) {
      if (filter.ok) pcap_freecode(&filter.program);
    }
  }

  void record_error(const std::string& name, uint64_t offset, std::string message) {
    stats.errors.push_back(InputError{name, offset, std::move(message), true});
    ++stats.inputs_failed;
  }

  // Opens the stream's format; `quiet` skips non-captures without an error (directory scans).
  bool add_stream(const std::string& name, std::unique_ptr<ByteStream> stream, bool quiet) {
    uint8_t magic[4] = {};
    const size_t have = stream->peek(magic, sizeof magic);
    const Format format = format_of(magic, have);
    if (format == Format::unknown) {
      if (quiet) return false;
      ++stats.inputs;
      if (!stream->error().empty()) {
        record_error(name, stream->delivered(), stream->error());
      } else if (have == 0) {
        record_error(name, 0, "empty file, not a capture");
      } else if (have < 4) {
        record_error(name, 0, "too short to be a capture (" + std::to_string(have) + " bytes)");
      } else {
        record_error(name, 0,
                     "not a pcap or pcapng capture (starts with " + hex_bytes(magic, have) + ")");
      }
      return false;
    }
    ++stats.inputs;
    auto input = std::make_unique<Input>();
    input->name = name;
    input->stream = std::move(stream);
    input->format = format;
    inputs.push_back(std::move(input));
    return true;
  }

  bool add_directory(const std::string& path) {
    std::error_code error;
    std::vector<std::string> files;
    for (std::filesystem::directory_iterator it(path, error), end; !error && it != end;
         it.increment(error)) {
      std::error_code type_error;
      if (it->is_regular_file(type_error)) files.push_back(it->path().string());
    }
    if (error) {
      ++stats.inputs;
      record_error(path, 0, "cannot list directory: " + error.message());
      return false;
    }
    std::sort(files.begin(), files.end());
    bool any = false;
    for (const std::string& file : files) {
      std::string open_error;
      std::unique_ptr<ByteStream> stream = ByteStream::open_path(file, open_error);
      if (stream == nullptr) continue;
      any = add_stream(file, std::move(stream), true) || any;
    }
    if (!any) {
      ++stats.inputs;
      record_error(path, 0, "directory holds no capture files");
    }
    return any;
  }

  void start() {
    started = true;
    size_t buffer_bytes = options.read_buffer_bytes;
    // Many inputs are open at once during the merge: share the buffer budget between them.
    if (!inputs.empty() && buffer_bytes != 0) {
      buffer_bytes = std::max(min_read_buffer_bytes, buffer_bytes / inputs.size());
      buffer_bytes = std::min(buffer_bytes, options.read_buffer_bytes);
    }
    for (auto& input : inputs) {
      if (input->format == Format::pcap && options.pcap_reader == PcapReaderChoice::fast) {
        uint8_t header[PcapReader::file_header_bytes] = {};
        const size_t have = input->stream->peek(header, sizeof header);
        // Headers the own reader does not take (and damaged ones) get libpcap's verdict.
        if (PcapReader::supports(header, have)) {
          PcapReader::Fill fill = PcapReader::Fill::read;
          if (inputs.size() == 1 && input->stream->compression() != capture_detail::Compression::none) {
            if (options.read_ahead) fill = PcapReader::Fill::read_ahead;
          } else if (inputs.size() == 1 && options.map_file) {
            fill = PcapReader::Fill::map;
          }
          input->pcap_reader = std::make_unique<PcapReader>(
              *input->stream, buffer_bytes != 0 ? buffer_bytes : min_read_buffer_bytes, fill,
              options.mapped_release_step != 0 ? options.mapped_release_step
                                               : capture_detail::FileMapping::default_release_step);
          advance(*input);
          continue;
        }
      }
      if (input->format == Format::pcapng) {
        input->reader = std::make_unique<PcapngReader>(
            *input->stream, buffer_bytes != 0 ? buffer_bytes : min_read_buffer_bytes);
        advance(*input);
        continue;
      }
      input->buffer.resize(buffer_bytes);
      input->file = input->stream->open_file(input->buffer);
      if (input->file == nullptr) {
        fail(*input, 0, "cannot open stream");
        continue;
      }
      char message[PCAP_ERRBUF_SIZE] = {};
      input->handle =
          pcap_fopen_offline_with_tstamp_precision(input->file, PCAP_TSTAMP_PRECISION_NANO, message);
      if (input->handle == nullptr) {
        fail(*input, 0, message);
        continue;
      }
      input->handle_link_type = linktype_from_dlt(pcap_datalink(input->handle));
      advance(*input);
    }
    if (inputs.size() == 1 && inputs[0]->pcap_reader != nullptr && options.filter.empty()) {
      single = inputs[0].get();
    }
  }

  void fail(Input& input, uint64_t offset, const std::string& message) {
    // A decompression error explains more than the reader's view of it.
    if (input.stream != nullptr && !input.stream->error().empty()) {
      record_error(input.name, input.stream->delivered(), input.stream->error());
    } else {
      record_error(input.name, offset, message.empty() ? "read error" : message);
    }
    input.done = true;
    input.has_head = false;
    input.close();
  }

  void advance(Input& input) {
    input.has_head = false;
    if (input.done) return;
    if (input.reader != nullptr) {
      PcapngRecord record;
      switch (input.reader->next(record)) {
        case PcapngReader::Status::packet:
          input.ts_ns = record.ts_ns;
          input.link_type = record.link_type;
          input.caplen = record.caplen;
          input.origlen = record.origlen;
          input.data = record.data;
          input.has_head = true;
          return;
        case PcapngReader::Status::end:
          break;
        case PcapngReader::Status::error:
          fail(input, input.reader->error_offset(), input.reader->error());
          return;
      }
    } else if (input.pcap_reader != nullptr) {
      PcapRecord record;
      const PcapReader::Status status = input.pcap_reader->next(record);
      if (status == PcapReader::Status::packet) {
        input.ts_ns = record.ts_ns;
        input.link_type = input.pcap_reader->link_type();
        input.caplen = record.caplen;
        input.origlen = std::max(record.origlen, record.caplen);
        input.data = record.data;
        input.has_head = true;
      } else {
        stop_pcap(input, status);
      }
      return;
    } else if (input.handle != nullptr) {
      const off64_t record_offset = ftello64(input.file);
      pcap_pkthdr* header = nullptr;
      const u_char* data = nullptr;
      const int rc = pcap_next_ex(input.handle, &header, &data);
      if (rc == 1) {
        input.ts_ns = static_cast<int64_t>(header->ts.tv_sec) * 1000000000 +
                      static_cast<int64_t>(header->ts.tv_usec);
        input.link_type = input.handle_link_type;
        input.caplen = header->caplen;
        input.origlen = std::max(header->len, header->caplen);
        input.data = data;
        input.has_head = true;
        return;
      }
      if (rc != PCAP_ERROR_BREAK) {
        fail(input, record_offset >= 0 ? static_cast<uint64_t>(record_offset) : 0,
             pcap_geterr(input.handle));
        return;
      }
    }
    end_of(input);
  }

  // The own pcap reader gave no record: the end of the input, or an error.
  void stop_pcap(Input& input, PcapReader::Status status) {
    if (status == PcapReader::Status::error) {
      fail(input, input.pcap_reader->error_offset(), input.pcap_reader->error());
    } else {
      end_of(input);
    }
  }

  void end_of(Input& input) {
    if (input.stream != nullptr && !input.stream->error().empty()) {
      fail(input, 0, "");
      return;
    }
    input.done = true;
    input.close();
  }

  const Filter& filter_for(uint32_t link_type) {
    for (const Filter& filter : filters) {
      if (filter.link_type == link_type) return filter;
    }
    Filter filter;
    filter.link_type = link_type;
    pcap_t* dead = pcap_open_dead(dlt_from_linktype(link_type), 262144);
    if (dead != nullptr) {
      if (pcap_compile(dead, &filter.program, options.filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) == 0) {
        filter.ok = true;
      } else {
        stats.errors.push_back(InputError{"filter", 0,
                                          "cannot compile filter \"" + options.filter +
                                              "\" for link type " + std::to_string(link_type) +
                                              ": " + pcap_geterr(dead),
                                          true});
      }
      pcap_close(dead);
    }
    filters.push_back(filter);
    return filters.back();
  }

  // Counts a record that is about to be handed out and gives it its frame number.
  uint64_t count(int64_t ts_ns, uint32_t caplen, uint32_t origlen) {
    ++stats.packets;
    stats.bytes += caplen;
    if (caplen < origlen) ++stats.snapped;
    if (stats.packets == 1 || ts_ns < stats.first_ns) stats.first_ns = ts_ns;
    if (stats.packets == 1 || ts_ns > stats.last_ns) stats.last_ns = ts_ns;
    return ++frames;
  }

  // Hands out the input's head record as `packet`.
  static void hand_out(Input& input, Packet& packet, uint64_t frame) {
    packet.ts_ns = input.ts_ns;
    packet.link_type = input.link_type;
    packet.data = input.data;
    packet.caplen = input.caplen;
    packet.origlen = input.origlen;
    packet.frame = frame;
    input.has_head = false;
  }

  // One classic pcap file through the own reader, unfiltered: the usual case, and the whole
  // per-packet cost of this stage, so it skips the merge and goes to the reader directly.
  bool next_single(Packet& packet) {
    Input& input = *single;
    if (input.has_head) {  // the first record, read when the input started
      hand_out(input, packet, count(input.ts_ns, input.caplen, input.origlen));
      return true;
    }
    if (input.done) return false;
    PcapRecord record;
    const PcapReader::Status status = input.pcap_reader->next(record);
    if (status != PcapReader::Status::packet) {
      stop_pcap(input, status);
      return false;
    }
    packet.ts_ns = record.ts_ns;
    packet.link_type = input.pcap_reader->link_type();
    packet.data = record.data;
    packet.caplen = record.caplen;
    packet.origlen = std::max(record.origlen, record.caplen);
    packet.frame = count(packet.ts_ns, packet.caplen, packet.origlen);
    return true;
  }

  bool next(Packet& packet) {
    if (!started) start();
    if (single != nullptr) return next_single(packet);
    if (pending < inputs.size()) {
      advance(*inputs[pending]);
      pending = SIZE_MAX;
    }
    // Each pass takes one record from one input, so the loop ends with the inputs.
    while (true) {
      size_t best = SIZE_MAX;
      for (size_t i = 0; i < inputs.size(); ++i) {
        const Input& input = *inputs[i];
        if (input.has_head && (best == SIZE_MAX || input.ts_ns < inputs[best]->ts_ns)) best = i;
      }
      if (best == SIZE_MAX) return false;
      Input& input = *inputs[best];
      // Every record takes a frame number, filtered or not, so numbers match tshark's.
      const uint64_t frame = count(input.ts_ns, input.caplen, input.origlen);
      if (!options.filter.empty()) {
        const Filter& filter = filter_for(input.link_type);
        pcap_pkthdr header{};
        header.caplen = input.caplen;
        header.len = input.origlen;
        if (!filter.ok || pcap_offline_filter(&filter.program, &header, input.data) == 0) {
          ++stats.filtered_out;
          advance(input);
          continue;
        }
      }
      hand_out(input, packet, frame);
      pending = best;
      return true;
    }
  }
};

CaptureSet::CaptureSet(CaptureOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}

CaptureSet::~CaptureSet() = default;

bool CaptureSet::add_path(const std::string& path) {
  Impl& impl = *impl_;
  if (impl.started) return false;
  std::error_code error;
  if (path != "-" && std::filesystem::is_directory(path, error)) return impl.add_directory(path);
  const std::string name = path == "-" ? "<stdin>" : path;
  std::string open_error;
  std::unique_ptr<ByteStream> stream = ByteStream::open_path(path, open_error);
  if (stream == nullptr) {
    ++impl.stats.inputs;
    impl.record_error(name, 0, "cannot open: " + open_error);
    return false;
  }
  return impl.add_stream(name, std::move(stream), false);
}

bool CaptureSet::add_memory(std::string name, std::vector<uint8_t> bytes) {
  Impl& impl = *impl_;
  if (impl.started) return false;
  return impl.add_stream(name, ByteStream::open_memory(std::move(bytes)), false);
}

bool CaptureSet::next(Packet& packet) { return impl_->next(packet); }

FetchAhead CaptureSet::fetch_ahead() {
  if (!impl_->started) impl_->start();
  if (impl_->single == nullptr || !impl_->single->pcap_reader->mapped()) return {};
  // Through the set, not straight to the reader: an input is closed, and its reader freed, as
  // soon as it ends, while the loop may take steps to its own end.
  return {[](void* impl) {
            const Impl::Input* single = static_cast<Impl*>(impl)->single;
            if (single->pcap_reader != nullptr) single->pcap_reader->prefetch_ahead();
          },
          impl_.get()};
}

const CaptureStats& CaptureSet::stats() const { return impl_->stats; }

std::string CaptureSet::check_filter(const std::string& expression, uint32_t link_type) {
  pcap_t* dead = pcap_open_dead(dlt_from_linktype(link_type), 262144);
  if (dead == nullptr) return "cannot prepare a filter handle";
  bpf_program program{};
  std::string result;
  if (pcap_compile(dead, &program, expression.c_str(), 1, PCAP_NETMASK_UNKNOWN) == 0) {
    pcap_freecode(&program);
  } else {
    result = pcap_geterr(dead);
  }
  pcap_close(dead);
  return result;
}

}  // namespace rstscope
