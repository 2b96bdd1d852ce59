// The page warmer faults in the huge page after the one in use, on its own thread, and
// changes no byte of the block.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "track/page_warmer.hpp"

namespace rstscope {
namespace {

constexpr size_t step = PageWarmer::step;

// A block of `pages` huge pages starting on a huge-page boundary, unmapped when done.
class Block {
 public:
  explicit Block(size_t pages) : bytes_(pages * step) {
    raw_ = ::mmap(nullptr, bytes_ + step, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw_ == MAP_FAILED) raw_ = nullptr;
    if (raw_ != nullptr) {
      const uintptr_t aligned = (reinterpret_cast<uintptr_t>(raw_) + step - 1) & ~uintptr_t{step - 1};
      data_ = reinterpret_cast<char*>(aligned);
    }
  }
  ~Block() {
    if (raw_ != nullptr) ::munmap(raw_, bytes_ + step);
  }
  char* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  // Whether the page holding `offset` is in memory.
  bool resident(size_t offset) const {
    const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    unsigned char state = 0;
    if (::mincore(data_ + offset / page * page, page, &state) != 0) return false;
    return (state & 1) != 0;
  }

 private:
  size_t bytes_;
  void* raw_ = nullptr;
  char* data_ = nullptr;
};

bool eventually_resident(const Block& block, size_t offset) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < give_up) {
    if (block.resident(offset)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

TEST(PageWarmer, WarmsTheNextHugePageOnceThreeQuartersOfOneAreUsed) {
  Block block(6);
  ASSERT_NE(block.data(), nullptr);
  PageWarmer warmer(block.data(), block.bytes());
  std::memset(block.data(), 0x5a, 4096);  // the tracker's own writes stay as they are
  warmer.used(4096);
  warmer.used(step / 2);  // within the first huge page: nothing to warm yet
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(block.resident(step + step / 2));
  warmer.used(step * 3 / 4 + 1);
  EXPECT_TRUE(eventually_resident(block, step + step / 2));
  EXPECT_TRUE(eventually_resident(block, 2 * step - 1));
  // Into the third huge page: the fourth is warmed, the fifth and sixth are left alone.
  warmer.used(2 * step + step * 3 / 4 + 8);
  EXPECT_TRUE(eventually_resident(block, 3 * step + 100));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(block.resident(4 * step + 100));
  EXPECT_FALSE(block.resident(5 * step + 100));
  for (size_t i = 0; i < 4096; ++i) ASSERT_EQ(block.data()[i], 0x5a);
  for (size_t i = 4096; i < 4 * step; i += 4096) ASSERT_EQ(block.data()[i], 0);
}

TEST(PageWarmer, StopsAtTheEndOfTheBlockAndStartsNoThreadForSmallOnes) {
  Block block(2);
  ASSERT_NE(block.data(), nullptr);
  {
    PageWarmer small(block.data(), block.bytes());
    small.used(1000);  // under three quarters of a huge page: never asks
  }
  PageWarmer warmer(block.data(), block.bytes());
  warmer.used(step + step * 3 / 4 + 1);  // the next huge page is past the end: only the rest
  warmer.used(block.bytes());
  EXPECT_TRUE(eventually_resident(block, step + step - 1));
}

}  // namespace
}  // namespace rstscope
