#include "core/chunked_fifo.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <random>

namespace rstscope {
namespace {

// An element that owns memory, as a waiting RST's context does: a leak or a double free
// shows under the sanitizers.
struct Owned {
  std::unique_ptr<int> value;
};

TEST(ChunkedFifo, KeepsOrderAndPositionsAcrossChunks) {
  ChunkedFifo<Owned, 4> fifo;
  std::deque<int> model;
  std::mt19937 random(7);
  int next = 0;
  for (int step = 0; step < 5000; ++step) {
    // More pushes than pops at first, then more pops: the queue grows past many chunks, empties
    // now and then, and refills.
    const bool push = model.empty() || random() % 100 < (step < 2500 ? 60u : 40u);
    if (push) {
      fifo.push_back(Owned{std::make_unique<int>(next)});
      model.push_back(next++);
    } else {
      ASSERT_EQ(*fifo.front().value, model.front());
      fifo.pop_front();
      model.pop_front();
    }
    ASSERT_EQ(fifo.size(), model.size());
    ASSERT_EQ(fifo.empty(), model.empty());
    if (!model.empty()) {
      const size_t index = random() % model.size();
      ASSERT_EQ(*fifo[index].value, model[index]) << "step " << step << ", index " << index;
      ASSERT_EQ(*fifo[model.size() - 1].value, model.back());
    }
  }
}

TEST(ChunkedFifo, PopFreesWhatTheElementOwnedAtOnce) {
  ChunkedFifo<std::shared_ptr<int>, 8> fifo;
  auto shared = std::make_shared<int>(1);
  fifo.push_back(std::shared_ptr<int>(shared));
  fifo.push_back(std::shared_ptr<int>(shared));
  EXPECT_EQ(shared.use_count(), 3);
  fifo.pop_front();
  EXPECT_EQ(shared.use_count(), 2);
  fifo.pop_front();
  EXPECT_EQ(shared.use_count(), 1);
  EXPECT_TRUE(fifo.empty());
  // The emptied chunk is reused, and what a reused place held is gone.
  fifo.push_back(std::make_shared<int>(2));
  EXPECT_EQ(*fifo.front(), 2);
  EXPECT_EQ(shared.use_count(), 1);
}

}  // namespace
}  // namespace rstscope
