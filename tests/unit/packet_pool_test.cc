// Packet pool (dataplane/packet_pool.h): packets with buffers, and views into provided buffers
// that keep their buffer referenced until freed (the buffer goes back to its ring with the last).
#include "dataplane/packet_pool.h"

#include "crypto/messages.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <vector>

namespace meshfwd::dataplane {
namespace {

TEST(PacketPool, BufferPacketsHaveHeadroomAndComeBack) {
    packet_pool pool(4);
    std::vector<packet*> got;
    while (packet* p = pool.alloc()) {
        EXPECT_EQ(p->data, p->buffer_start() + packet_headroom);
        EXPECT_EQ(p->ring, nullptr);
        got.push_back(p);
    }
    EXPECT_EQ(got.size(), 4u);
    EXPECT_EQ(pool.available(), 0u);
    for (packet* p : got) {
        pool.free(p);
    }
    EXPECT_EQ(pool.available(), 4u);
    EXPECT_EQ(pool.view_count(), 0u);
    EXPECT_EQ(pool.views_available(), 0u);
}

// Buffers follow the MTU: the usual MTUs keep 2 KiB (and the pool its 8192 packets, 16 MiB);
// larger ones get whole KiB with room for headroom, the packet, padding and tag, and the pool
// keeps its memory (not below 512 packets).
TEST(PacketPool, BufferSizeFollowsTheMtu) {
    EXPECT_EQ(packet_buffer_size_for(576), 2048u);
    EXPECT_EQ(packet_buffer_size_for(1420), 2048u);
    EXPECT_EQ(packet_buffer_size_for(1952), 2048u);  // 64 + 1952 + 32: the old fixed limit
    EXPECT_EQ(packet_buffer_size_for(1953), 3072u);
    EXPECT_EQ(packet_buffer_size_for(9000), 9216u);
    EXPECT_EQ(packet_buffer_size_for(crypto::limits::max_mtu), 66560u);
    for (const uint32_t mtu : {576u, 1420u, 1500u, 1952u, 1953u, 4000u, 9000u, 16384u, 65475u}) {
        const uint32_t size = packet_buffer_size_for(mtu);
        EXPECT_GE(size, packet_headroom + mtu + packet_tailroom) << mtu;
        EXPECT_EQ(size % 1024, 0u) << mtu;
    }
    EXPECT_EQ(pool_packets_for(2048), 8192u);
    EXPECT_EQ(pool_packets_for(9216), 1820u);
    EXPECT_EQ(pool_packets_for(66560), 512u);
}

TEST(PacketPool, JumboBuffersDoNotOverlap) {
    const uint32_t size = packet_buffer_size_for(9000);
    packet_pool pool(3, 0, size);
    EXPECT_EQ(pool.buffer_size(), size);
    EXPECT_EQ(pool.data_capacity(), size - packet_headroom);
    std::vector<packet*> got;
    while (packet* p = pool.alloc()) {
        EXPECT_EQ(p->buffer_end() - p->buffer_start(), static_cast<std::ptrdiff_t>(size));
        std::memset(p->data, static_cast<int>(got.size() + 1), pool.data_capacity());  // ASan: inside
        got.push_back(p);
    }
    ASSERT_EQ(got.size(), 3u);
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i]->data[pool.data_capacity() - 1], static_cast<uint8_t>(i + 1));
        for (std::size_t j = i + 1; j < got.size(); ++j) {
            EXPECT_TRUE(got[i]->buffer_end() <= got[j]->buffer_start() || got[j]->buffer_end() <= got[i]->buffer_start());
        }
    }
    for (packet* p : got) {
        pool.free(p);
    }
}

TEST(PacketPool, ViewsHoldTheirBufferUntilTheLastIsFreed) {
    buffer_ring ring(4, 65536 + 128, 64, 65536);
    ring.provide_all();
    // What a UDP_GRO receive into buffer 2 does: the reader holds it, one view per datagram.
    ASSERT_TRUE(ring.take(2));
    packet_pool pool(2, 8);
    uint8_t* base = ring.kernel_data(2);
    std::vector<packet*> views;
    for (uint32_t i = 0; i < 3; ++i) {
        packet* p = pool.alloc_view(ring, 2, base + i * 1000, 1000);
        ASSERT_NE(p, nullptr);
        EXPECT_EQ(p->data, base + i * 1000);
        EXPECT_EQ(p->length, 1000u);
        EXPECT_EQ(p->ring, &ring);
        EXPECT_EQ(p->ring_buffer, 2);
        views.push_back(p);
    }
    EXPECT_EQ(ring.references(2), 4u);
    EXPECT_EQ(pool.views_available(), 5u);
    EXPECT_EQ(pool.available(), 2u) << "views take no buffer packet";
    ring.release(2);  // the reader is done
    pool.free(views[1]);
    pool.free(views[0]);
    EXPECT_EQ(ring.held(), 1u);
    const uint64_t published = ring.published();
    pool.free(views[2]);
    EXPECT_EQ(ring.held(), 0u) << "the last view gave the buffer back";
    ring.publish();
    EXPECT_EQ(ring.published(), published + 1);
    EXPECT_EQ(pool.views_available(), 8u);
}

TEST(PacketPool, ViewsRunOut) {
    buffer_ring ring(2, 65536 + 128, 64, 65536);
    ring.provide_all();
    ASSERT_TRUE(ring.take(0));
    packet_pool pool(1, 2);
    packet* a = pool.alloc_view(ring, 0, ring.kernel_data(0), 10);
    packet* b = pool.alloc_view(ring, 0, ring.kernel_data(0) + 10, 10);
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(pool.alloc_view(ring, 0, ring.kernel_data(0) + 20, 10), nullptr);
    EXPECT_EQ(ring.references(0), 3u) << "a refused view takes no reference";
    packet* own = pool.alloc();
    ASSERT_NE(own, nullptr);
    pool.free(own);
    pool.free(a);
    pool.free(b);
    ring.release(0);
    EXPECT_EQ(ring.held(), 0u);
    EXPECT_EQ(pool.views_available(), 2u);
    EXPECT_EQ(pool.available(), 1u);
    // A recycled view points into whatever buffer it is given next.
    ASSERT_TRUE(ring.take(1));
    packet* again = pool.alloc_view(ring, 1, ring.kernel_data(1), 5);
    ASSERT_NE(again, nullptr);
    EXPECT_EQ(again->ring_buffer, 1);
    EXPECT_EQ(ring.references(1), 2u);
    ring.release(1);
    pool.free(again);
    EXPECT_EQ(ring.held(), 0u);
}

}  // namespace
}  // namespace meshfwd::dataplane
