// Tests for lib/spsc_ring: single-thread semantics and a two-thread order/no-loss run.
#include "lib/spsc_ring.h"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <numeric>
#include <thread>
#include <vector>

namespace meshfwd {
namespace {

TEST(spsc_ring, push_pop_and_full) {
    spsc_ring<int, 4> ring;
    EXPECT_TRUE(ring.empty());
    EXPECT_EQ(ring.size_approx(), 0u);
    int out = -1;
    EXPECT_FALSE(ring.try_pop(out));
    for (int i = 0; i < 4; ++i) {
        EXPECT_TRUE(ring.try_push(i));
    }
    EXPECT_FALSE(ring.try_push(99)); // full: all Capacity slots are usable
    EXPECT_EQ(ring.size_approx(), 4u);
    for (int i = 0; i < 4; ++i) {
        ASSERT_TRUE(ring.try_pop(out));
        EXPECT_EQ(out, i);
    }
    EXPECT_FALSE(ring.try_pop(out));
    EXPECT_TRUE(ring.empty());
}

TEST(spsc_ring, wraparound) {
    spsc_ring<uint32_t, 8> ring;
    uint32_t next_in = 0;
    uint32_t next_out = 0;
    // Interleave so the indices pass the slot count many times at every offset.
    for (int round = 0; round < 1000; ++round) {
        const int pushes = 1 + round % 8;
        for (int i = 0; i < pushes; ++i) {
            if (ring.try_push(next_in)) {
                ++next_in;
            }
        }
        const int pops = 1 + (round * 3) % 8;
        for (int i = 0; i < pops; ++i) {
            uint32_t v = 0;
            if (!ring.try_pop(v)) {
                break;
            }
            ASSERT_EQ(v, next_out);
            ++next_out;
        }
        ASSERT_EQ(ring.size_approx(), next_in - next_out);
    }
    EXPECT_GT(next_out, 1000u);
}

TEST(spsc_ring, burst_partial_fill) {
    spsc_ring<int, 8> ring;
    std::array<int, 5> in{};
    std::iota(in.begin(), in.end(), 0);
    EXPECT_EQ(ring.push_burst(in), 5u);
    std::iota(in.begin(), in.end(), 5);
    EXPECT_EQ(ring.push_burst(in), 3u); // only 3 slots left: 5, 6, 7 go in
    EXPECT_EQ(ring.push_burst(in), 0u);
    EXPECT_EQ(ring.size_approx(), 8u);

    std::array<int, 3> out{};
    EXPECT_EQ(ring.pop_burst(out), 3u);
    EXPECT_EQ(out, (std::array<int, 3>{0, 1, 2}));
    std::array<int, 16> big{};
    EXPECT_EQ(ring.pop_burst(big), 5u); // partial: only 5 queued
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(big[static_cast<size_t>(i)], 3 + i);
    }
    EXPECT_EQ(ring.pop_burst(big), 0u);
    EXPECT_EQ(ring.push_burst(std::span<const int>{}), 0u);

    // A burst across the wrap point.
    std::array<int, 7> wrap{};
    std::iota(wrap.begin(), wrap.end(), 100);
    EXPECT_EQ(ring.push_burst(wrap), 7u);
    std::array<int, 7> back{};
    EXPECT_EQ(ring.pop_burst(back), 7u);
    EXPECT_EQ(back, wrap);
}

TEST(spsc_ring, layout) {
    using ring_t = spsc_ring<uint64_t, 16>;
    static_assert(alignof(ring_t) >= cache_line_size);
    static_assert(ring_t::capacity() == 16);
    EXPECT_GE(sizeof(ring_t), 2 * cache_line_size + 16 * sizeof(uint64_t));
}

// One producer pushes 1M sequence numbers (single and burst pushes), one consumer checks they
// arrive in order with none lost or duplicated. A small ring forces many full/empty turns.
TEST(spsc_ring, two_threads_order_and_no_loss) {
    constexpr uint64_t total = 1'000'000;
    auto ring = std::make_unique<spsc_ring<uint64_t, 1024>>();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);

    std::thread producer([&] {
        uint64_t next = 0;
        std::array<uint64_t, 32> burst{};
        while (next < total && std::chrono::steady_clock::now() < deadline) {
            size_t pushed = 0;
            if (next % 3 == 0) {
                const size_t want = static_cast<size_t>(std::min<uint64_t>(burst.size(), total - next));
                for (size_t i = 0; i < want; ++i) {
                    burst[i] = next + i;
                }
                pushed = ring->push_burst(std::span<const uint64_t>(burst.data(), want));
            } else if (ring->try_push(next)) {
                pushed = 1;
            }
            next += pushed;
            if (pushed == 0) {
                std::this_thread::yield(); // full: on a busy 2-core machine, let the consumer run
            }
        }
    });

    uint64_t expected = 0;
    bool in_order = true;
    std::array<uint64_t, 64> out{};
    while (expected < total && std::chrono::steady_clock::now() < deadline) {
        size_t n = 0;
        if (expected % 2 == 0) {
            n = ring->pop_burst(out);
        } else {
            n = ring->try_pop(out[0]) ? 1 : 0;
        }
        for (size_t i = 0; i < n; ++i) {
            in_order = in_order && out[i] == expected;
            ++expected;
        }
        if (n == 0) {
            std::this_thread::yield();
        }
    }
    producer.join();
    EXPECT_TRUE(in_order);
    EXPECT_EQ(expected, total);
    EXPECT_TRUE(ring->empty());
}

} // namespace
} // namespace meshfwd
