// Kernel reset tracer: parsing the real trace format, reasons in words, joining with findings.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fmt/format.h>

#include "host/join.hpp"
#include "host/tracer.hpp"
#include "lab/netns.hpp"

namespace rstscope::host {
namespace {

// Lines as tcp:tcp_send_reset and tcp:tcp_receive_reset print them (Linux 6.x trace_pipe).
constexpr const char* send_v4 =
    "            bash-5012    [001] .Ns1.   944.704420: tcp_send_reset: skbaddr=00000000aa794b7d "
    "skaddr=0000000000000000 src=198.51.100.2:2106 dest=192.0.2.2:52112 state=UNKNOWN reason=NO_SOCKET";
constexpr const char* send_v6 =
    "          <idle>-0       [000] ..s1.   944.711549: tcp_send_reset: skbaddr=00000000aa794b7d "
    "skaddr=0000000000000000 src=[2001:db8::1]:2107 dest=[2001:db8::2]:55262 state=UNKNOWN reason=NO_SOCKET";
constexpr const char* send_listener =
    "          <idle>-0       [000] ..s2.  1001.500000: tcp_send_reset: skbaddr=00000000aa794b7d "
    "skaddr=00000000deadbeef src=198.51.100.2:33807 dest=0.0.0.0:0 state=TCP_LISTEN reason=TCP_FLAGS";
constexpr const char* receive_v4 =
    "            bash-5012    [001] .N...   944.704448: tcp_receive_reset: family=AF_INET sport=52112 "
    "dport=2106 saddr=192.0.2.2 daddr=198.51.100.2 saddrv6=::ffff:192.0.2.2 daddrv6=::ffff:198.51.100.2 "
    "sock_cookie=1";
constexpr const char* receive_v6 =
    "            bash-5013    [001] .....   944.711561: tcp_receive_reset: family=AF_INET6 sport=55262 "
    "dport=2107 saddr=0.0.0.0 daddr=0.0.0.0 saddrv6=2001:db8::2 daddrv6=2001:db8::1 sock_cookie=2";

Address ip(const char* text) {
  Address address;
  EXPECT_TRUE(parse_address(text, address)) << text;
  return address;
}

TEST(TraceParse, SendResetIpv4) {
  const auto record = parse_trace_line(send_v4);
  ASSERT_TRUE(record);
  EXPECT_EQ(record->event, KernelReset::Event::send);
  EXPECT_DOUBLE_EQ(record->trace_seconds, 944.704420);
  EXPECT_EQ(record->src, ip("198.51.100.2"));
  EXPECT_EQ(record->sport, 2106);
  EXPECT_EQ(record->dst, ip("192.0.2.2"));
  EXPECT_EQ(record->dport, 52112);
  EXPECT_EQ(record->state, "UNKNOWN");
  EXPECT_EQ(record->reason, "NO_SOCKET");
}

TEST(TraceParse, SendResetIpv6AndTaskWithSpaces) {
  const auto record = parse_trace_line(send_v6);
  ASSERT_TRUE(record);
  EXPECT_TRUE(record->src.is_v6());
  EXPECT_EQ(record->src, ip("2001:db8::1"));
  EXPECT_EQ(record->sport, 2107);
  EXPECT_EQ(record->dst, ip("2001:db8::2"));
  EXPECT_EQ(record->dport, 55262);
}

TEST(TraceParse, ListenerResetHasNoPeer) {
  const auto record = parse_trace_line(send_listener);
  ASSERT_TRUE(record);
  EXPECT_EQ(record->state, "TCP_LISTEN");
  EXPECT_EQ(record->reason, "TCP_FLAGS");
  EXPECT_EQ(record->dport, 0);
}

TEST(TraceParse, ReceiveResetIsOrientedAsTheRstTravelled) {
  const auto v4 = parse_trace_line(receive_v4);
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->event, KernelReset::Event::receive);
  // The socket 192.0.2.2:52112 accepted a RST sent by 198.51.100.2:2106.
  EXPECT_EQ(v4->src, ip("198.51.100.2"));
  EXPECT_EQ(v4->sport, 2106);
  EXPECT_EQ(v4->dst, ip("192.0.2.2"));
  EXPECT_EQ(v4->dport, 52112);
  const auto v6 = parse_trace_line(receive_v6);
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->src, ip("2001:db8::1"));
  EXPECT_EQ(v6->dst, ip("2001:db8::2"));
}

TEST(TraceParse, RejectsOtherLines) {
  EXPECT_FALSE(parse_trace_line(""));
  EXPECT_FALSE(parse_trace_line("# tracer: nop"));
  EXPECT_FALSE(parse_trace_line("  bash-1 [000] ..... 1.0: tcp_retransmit_skb: skbaddr=0"));
  EXPECT_FALSE(parse_trace_line("  bash-1 [000] ..... 1.0: tcp_send_reset: src=garbage dest=1.2.3.4:5"));
  EXPECT_FALSE(parse_trace_line("  bash-1 [000] ..... 1.0: tcp_send_reset: src=1.2.3.4:99999 dest=1.2.3.4:5"));
}

TEST(TraceParse, MappedIpv4IsIpv4) {
  Address address;
  ASSERT_TRUE(parse_address("::ffff:192.0.2.7", address));
  EXPECT_FALSE(address.is_v6());
  EXPECT_EQ(address, ip("192.0.2.7"));
}

TEST(ReasonWords, PlainSentences) {
  auto record = *parse_trace_line(send_v4);
  EXPECT_EQ(reason_words(record),
            "no socket: nothing listens on 198.51.100.2:2106 and no connection matches the segment");
  record.reason = "TCP_ABORT_ON_CLOSE";
  EXPECT_EQ(reason_words(record), "closed with unread data in the receive queue");
  record.reason = "TCP_KEEPALIVE_TIMEOUT";
  EXPECT_EQ(reason_words(record), "keep-alive probes went unanswered");
  record.reason = "SOMETHING_NEW";
  EXPECT_EQ(reason_words(record), "kernel reason SOMETHING_NEW");
  auto v6 = *parse_trace_line(send_v6);
  EXPECT_NE(reason_words(v6).find("[2001:db8::1]:2107"), std::string::npos);
  EXPECT_NE(reason_words(*parse_trace_line(send_listener)).find("listening socket"), std::string::npos);
}

TEST(Join, ReasonToCauses) {
  EXPECT_EQ(compare("NO_SOCKET", Cause::refused), Verdict::agree);
  EXPECT_EQ(compare("NO_SOCKET", Cause::half_open), Verdict::agree);
  EXPECT_EQ(compare("NO_SOCKET", Cause::abort), Verdict::disagree);
  EXPECT_EQ(compare("TCP_STATE", Cause::abort), Verdict::agree);
  EXPECT_EQ(compare("TCP_ABORT_ON_CLOSE", Cause::abort_unread_data), Verdict::agree);
  EXPECT_EQ(compare("TCP_ABORT_ON_DATA", Cause::data_after_close), Verdict::agree);
  EXPECT_EQ(compare("INVALID_SYN", Cause::listen_overflow), Verdict::agree);
  EXPECT_EQ(compare("TCP_KEEPALIVE_TIMEOUT", Cause::keepalive_timeout), Verdict::agree);
  EXPECT_EQ(compare("TCP_ABORT_ON_MEMORY", Cause::buffer_overflow), Verdict::agree);
  EXPECT_EQ(compare("NOT_SPECIFIED", Cause::forged), Verdict::no_opinion);
}

Finding finding_for(const char* src, uint16_t sport, const char* dst, uint16_t dport, int64_t ts_ns,
                    Cause cause) {
  Finding finding;
  finding.src = ip(src);
  finding.sport = sport;
  finding.dst = ip(dst);
  finding.dport = dport;
  finding.ts_ns = ts_ns;
  finding.cause = cause;
  return finding;
}

TEST(Join, ByTupleDirectionAndTime) {
  auto refused = *parse_trace_line(send_v4);
  refused.ts_ns = 10'000'000'000;
  auto listener = *parse_trace_line(send_listener);
  listener.ts_ns = 20'000'000'000;
  auto accepted = *parse_trace_line(receive_v4);
  accepted.ts_ns = 10'000'000'000;
  const std::vector<KernelReset> records{refused, listener, accepted};

  std::vector<Finding> findings{
      finding_for("198.51.100.2", 2106, "192.0.2.2", 52112, 10'000'300'000, Cause::refused),
      // The listener's record has no peer: the sender's side decides.
      finding_for("198.51.100.2", 33807, "192.0.2.2", 40000, 20'000'100'000, Cause::abort),
      // Reverse direction: never the kernel's send record.
      finding_for("192.0.2.2", 52112, "198.51.100.2", 2106, 10'000'000'000, Cause::abort),
      // Right tuple, too far in time.
      finding_for("198.51.100.2", 2106, "192.0.2.2", 52112, 30'000'000'000, Cause::refused),
  };
  const JoinSummary summary = join_kernel_resets(findings, records, 2'000'000'000);
  ASSERT_EQ(summary.pairs.size(), 2u);
  EXPECT_EQ(findings[0].kernel_reason, "NO_SOCKET");
  EXPECT_EQ(findings[1].kernel_reason, "TCP_FLAGS");
  EXPECT_EQ(findings[2].kernel_reason, "");
  EXPECT_EQ(findings[3].kernel_reason, "");
  EXPECT_EQ(summary.agreements, 1u);
  EXPECT_EQ(summary.disagreements, 1u);  // TCP_FLAGS from a listener is not an abort
  EXPECT_EQ(summary.unmatched_findings.size(), 2u);
  EXPECT_TRUE(summary.unmatched_records.empty());
}

TEST(Join, RepeatedResetsPairInOrder) {
  auto first = *parse_trace_line(send_v4);
  first.ts_ns = 1'000'000'000;
  auto second = first;
  second.ts_ns = 1'200'000'000;
  std::vector<Finding> findings{
      finding_for("198.51.100.2", 2106, "192.0.2.2", 52112, 1'210'000'000, Cause::refused),
      finding_for("198.51.100.2", 2106, "192.0.2.2", 52112, 1'010'000'000, Cause::refused)};
  const JoinSummary summary = join_kernel_resets(findings, {first, second});
  ASSERT_EQ(summary.pairs.size(), 2u);
  for (const auto& pair : summary.pairs) EXPECT_EQ(pair.finding == 1 ? 0u : 1u, pair.record);
}

// A real reset: connect to a closed port on the loopback of a fresh namespace.
TEST(TracerLive, SeesNoSocketResetInNamespace) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces and tracefs)";
  std::string error;
  ResetTracer tracer;
  if (!tracer.open(error)) GTEST_SKIP() << "kernel reset tracing unavailable: " << error;
  lab::Namespace ns;
  if (!ns.create(fmt::format("rsl-{}-hosttest", ::getpid()), error))
    GTEST_SKIP() << "network namespaces unavailable: " << error;
  ASSERT_EQ(ns.exec({"ip", "addr", "add", "192.0.2.250/32", "dev", "lo"}), 0);
  const uint16_t port = static_cast<uint16_t>(40000 + ::getpid() % 20000);
  const int fd = ns.socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  ASSERT_EQ(::inet_pton(AF_INET, "192.0.2.250", &to.sin_addr), 1);
  EXPECT_NE(::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to), 0);
  EXPECT_EQ(errno, ECONNREFUSED);
  ::close(fd);
  bool seen = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (!seen && std::chrono::steady_clock::now() < deadline) {
    for (const KernelReset& record : tracer.poll(100)) {
      if (record.event == KernelReset::Event::send && record.sport == port &&
          record.src == ip("192.0.2.250")) {
        EXPECT_EQ(record.reason, "NO_SOCKET");
        EXPECT_GT(record.ts_ns, 1'000'000'000'000'000'000);  // wall-clock time
        seen = true;
      }
    }
  }
  EXPECT_TRUE(seen) << "no tcp_send_reset record for 192.0.2.250:" << port;
  const std::string instance = tracer.instance_path();
  tracer.close();
  EXPECT_NE(::access(instance.c_str(), F_OK), 0) << "instance not removed";
}

}  // namespace
}  // namespace rstscope::host
