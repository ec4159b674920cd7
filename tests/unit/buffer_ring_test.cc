// Provided-buffer ring bookkeeping (dataplane/buffer_ring.h), without a kernel: the test plays
// the kernel's part by reading the ring entries from its own head up to the published tail, as
// io_uring does when a read selects a buffer. Covers the layout, publishing, references, bad
// ids, and a long randomized run (past the 16-bit tail wrapping) against a simple model.
#include "dataplane/buffer_ring.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

namespace meshfwd::dataplane {
namespace {

// The kernel's side of one ring: entries from its head up to the tail we published.
struct fake_kernel {
    buffer_ring& ring;
    uint16_t head = 0;

    [[nodiscard]] uint16_t tail() const { return io_uring_smp_load_acquire(&ring.shared()->tail); }
    [[nodiscard]] uint32_t available() const { return static_cast<uint16_t>(tail() - head); }
    // The buffer the next read would fill, or nullopt (-ENOBUFS).
    std::optional<io_uring_buf> pick() {
        if (head == tail()) {
            return std::nullopt;
        }
        const io_uring_buf b = ring.shared()->bufs[head & (ring.count() - 1)];
        ++head;
        return b;
    }
};

constexpr uint32_t stride = 4096 + 128;
constexpr uint32_t offset = 54;
constexpr uint32_t length = 4096 + 10;

TEST(BufferRing, LayoutAndProvideAll) {
    buffer_ring r(8, stride, offset, length);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(r.shared()) % 4096, 0u) << "the kernel wants a page-aligned ring";
    EXPECT_EQ(r.count(), 8u);
    EXPECT_EQ(r.kernel_length(), length);
    for (uint16_t id = 0; id < 8; ++id) {
        EXPECT_EQ(r.kernel_data(id) - r.start(id), offset);
        if (id > 0) {
            EXPECT_EQ(r.start(id) - r.start(id - 1), stride);
        }
    }
    fake_kernel k{r};
    EXPECT_EQ(k.available(), 0u) << "nothing before provide_all";
    r.provide_all();
    EXPECT_EQ(r.held(), 0u);
    EXPECT_EQ(r.published(), 8u);
    EXPECT_EQ(k.available(), 8u);
    std::set<uint16_t> seen;
    for (int i = 0; i < 8; ++i) {
        const auto b = k.pick();
        ASSERT_TRUE(b);
        EXPECT_EQ(b->addr, reinterpret_cast<uintptr_t>(r.kernel_data(b->bid)));
        EXPECT_EQ(b->len, length);
        seen.insert(b->bid);
    }
    EXPECT_EQ(seen.size(), 8u);
    EXPECT_FALSE(k.pick()) << "every buffer is out: the next read gets -ENOBUFS";
}

TEST(BufferRing, ReleasedBuffersReturnAtPublish) {
    buffer_ring r(4, stride, offset, length);
    r.provide_all();
    fake_kernel k{r};
    std::vector<uint16_t> ids;
    while (const auto b = k.pick()) {
        ASSERT_TRUE(r.take(b->bid));
        ids.push_back(b->bid);
    }
    EXPECT_EQ(r.held(), 4u);
    const uint64_t before = r.published();
    r.release(ids[2]);
    EXPECT_EQ(r.held(), 3u);
    EXPECT_FALSE(k.pick()) << "handed back but not published yet";
    r.publish();
    EXPECT_EQ(r.published(), before + 1);
    const auto b = k.pick();
    ASSERT_TRUE(b);
    EXPECT_EQ(b->bid, ids[2]);
    EXPECT_EQ(b->addr, reinterpret_cast<uintptr_t>(r.kernel_data(ids[2])));
    r.publish();
    EXPECT_EQ(r.published(), before + 1) << "publishing nothing changes nothing";
}

TEST(BufferRing, LastReferenceReturnsTheBuffer) {
    buffer_ring r(2, stride, offset, length);
    r.provide_all();
    fake_kernel k{r};
    const auto b = k.pick();
    ASSERT_TRUE(b && r.take(b->bid));
    EXPECT_EQ(r.references(b->bid), 1u);
    r.ref(b->bid);  // three packets in one UDP_GRO receive
    r.ref(b->bid);
    r.ref(b->bid);
    r.release(b->bid);  // the reader is done with it
    r.release(b->bid);
    r.release(b->bid);
    r.publish();
    EXPECT_EQ(r.held(), 1u);
    EXPECT_EQ(k.available(), 1u) << "the other buffer only";
    r.release(b->bid);  // the last packet freed
    r.publish();
    EXPECT_EQ(r.held(), 0u);
    EXPECT_EQ(k.available(), 2u);
}

TEST(BufferRing, TakeRefusesBadIds) {
    buffer_ring r(4, stride, offset, length);
    r.provide_all();
    fake_kernel k{r};
    const auto b = k.pick();
    ASSERT_TRUE(b);
    EXPECT_FALSE(r.take(4)) << "out of range";
    EXPECT_FALSE(r.take(0xffff));
    EXPECT_TRUE(r.take(b->bid));
    EXPECT_FALSE(r.take(b->bid)) << "already held";
    EXPECT_EQ(r.held(), 1u);
}

TEST(BufferRing, BadLayoutThrows) {
    EXPECT_THROW(buffer_ring(3, stride, offset, length), std::invalid_argument);
    EXPECT_THROW(buffer_ring(0, stride, offset, length), std::invalid_argument);
    EXPECT_THROW(buffer_ring(65536, stride, offset, length), std::invalid_argument);
    EXPECT_THROW(buffer_ring(4, 100, 50, 51), std::invalid_argument);
}

// Random reads, references and releases against a model of who has which buffer, long enough
// for the ring's 16-bit tail to wrap several times: the kernel only ever gets buffers nobody
// holds, each once, and every buffer comes back.
TEST(BufferRing, RandomAgainstModel) {
    constexpr uint32_t count = 16;
    buffer_ring r(count, stride, offset, length);
    r.provide_all();
    fake_kernel k{r};
    std::mt19937 rng(7);
    std::vector<uint32_t> refs(count, 0);  // the model
    std::set<uint16_t> in_ring;
    for (uint16_t i = 0; i < count; ++i) {
        in_ring.insert(i);
    }
    std::set<uint16_t> pending;  // released, not yet published
    uint64_t picks = 0;
    for (int step = 0; step < 2500000; ++step) {
        const uint32_t what = rng() % 10;
        if (what < 4) {
            const auto b = k.pick();
            if (!b) {
                EXPECT_TRUE(in_ring.empty());
                continue;
            }
            ASSERT_EQ(in_ring.count(b->bid), 1u) << "kernel got a buffer that is not in the ring, step " << step;
            ASSERT_EQ(b->addr, reinterpret_cast<uintptr_t>(r.kernel_data(b->bid)));
            in_ring.erase(b->bid);
            ASSERT_TRUE(r.take(b->bid));
            refs[b->bid] = 1;
            ++picks;
        } else if (what < 6) {
            const uint16_t id = static_cast<uint16_t>(rng() % count);
            if (refs[id] > 0) {
                r.ref(id);
                ++refs[id];
            }
        } else if (what < 9) {
            const uint16_t id = static_cast<uint16_t>(rng() % count);
            if (refs[id] > 0) {
                r.release(id);
                if (--refs[id] == 0) {
                    pending.insert(id);
                }
            }
        } else {
            r.publish();
            in_ring.insert(pending.begin(), pending.end());
            pending.clear();
        }
        uint32_t held = 0;
        for (uint32_t id = 0; id < count; ++id) {
            held += refs[id] > 0 ? 1 : 0;
            ASSERT_EQ(r.references(static_cast<uint16_t>(id)), refs[id]);
        }
        ASSERT_EQ(r.held(), held);
        ASSERT_EQ(k.available(), in_ring.size());
    }
    EXPECT_GT(picks, 2u * 65536) << "the tail should have wrapped";
    for (uint16_t id = 0; id < count; ++id) {
        while (refs[id] > 0) {
            r.release(id);
            --refs[id];
        }
    }
    r.publish();
    EXPECT_EQ(r.held(), 0u);
    EXPECT_EQ(k.available(), count);
}

}  // namespace
}  // namespace meshfwd::dataplane
