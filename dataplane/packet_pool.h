// Packet descriptors for one worker. Most own a buffer from a fixed pool, with headroom in front
// of the data so the WireGuard header (and a virtio-net header) can be written without moving
// the payload, and room behind it for padding and the Poly1305 tag. Views own no buffer: their
// data lies in a provided receive buffer (buffer_ring.h), which they keep referenced until they
// are freed; the worker lays those buffers out with the same headroom and tail room.
//
// Threads: one pool per worker, used only by that worker (no synchronisation). Allocated once at
// worker set-up; alloc/free are O(1) and never allocate.
#pragma once
#include "dataplane/buffer_ring.h"
#include "dataplane/peer.h"
#include "dataplane/mailbox.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace meshfwd::dataplane {

// virtio-net header (10) + WireGuard transport header (16), rounded up to a cache line.
inline constexpr uint32_t packet_headroom = 64;
// Room a packet needs behind its data: padding (at most 15) and the Poly1305 tag (16).
inline constexpr uint32_t packet_tailroom = 32;
// The smallest (and default) buffer: MTUs up to 1952 (2048 - 64 - 32), the usual ones, fit.
inline constexpr uint32_t packet_buffer_size = 2048;
// Bytes behind the headroom of such a buffer: an IP packet up to the MTU, padding and the tag.
inline constexpr uint32_t packet_data_capacity = packet_buffer_size - packet_headroom;

// Buffer bytes for packets up to `mtu`: headroom, the packet, padding and tag, in whole KiB, and
// never below packet_buffer_size (so default MTUs keep their 2 KiB buffers). 9000 -> 9 KiB.
[[nodiscard]] constexpr uint32_t packet_buffer_size_for(uint32_t mtu) noexcept {
    const uint64_t need = uint64_t{packet_headroom} + mtu + packet_tailroom;
    const uint64_t rounded = (need + 1023) / 1024 * 1024;
    return static_cast<uint32_t>(rounded < packet_buffer_size ? packet_buffer_size : rounded);
}

// Packets with buffers in one worker's pool: as many as the default pool's memory holds (8192 x
// 2 KiB = 16 MiB), so a jumbo MTU does not multiply it, but at least 512 (a full burst of 256 in
// the pipeline plus as many in send slots). 2 KiB -> 8192, 9 KiB -> 1820, 64 KiB -> 512 (33 MiB).
inline constexpr uint32_t default_pool_packets = 8192;
inline constexpr uint32_t min_pool_packets = 512;
[[nodiscard]] constexpr uint32_t pool_packets_for(uint32_t buffer_size) noexcept {
    const uint64_t budget = uint64_t{default_pool_packets} * packet_buffer_size;
    const uint64_t n = budget / (buffer_size == 0 ? 1 : buffer_size);
    return static_cast<uint32_t>(n < min_pool_packets ? min_pool_packets : n > default_pool_packets ? default_pool_packets : n);
}

struct packet {
    uint8_t* data = nullptr;  // current contents (IP packet, or WireGuard message)
    uint32_t length = 0;
    uint32_t index = 0;       // in the pool (views after the buffer packets)
    // Pipeline state.
    socket_address remote;    // UDP: source on receive, destination on send
    local_address local;      // UDP: our address it arrived on; on send, the source (empty: route's)
    peer_runtime* peer = nullptr;
    session* sess = nullptr;
    uint64_t counter = 0;
    uint32_t flow_hash = 0;
    socket_role role = socket_role::listen;  // receive: which socket; send: which to use
    // A view: the provided buffer its data lies in (nullptr: the packet's own buffer, `base`).
    buffer_ring* ring = nullptr;
    uint16_t ring_buffer = 0;

    // The packet's own buffer (not for views).
    [[nodiscard]] uint8_t* buffer_start() noexcept { return base; }
    [[nodiscard]] uint8_t* buffer_end() noexcept { return base + buffer_size; }
    // Fresh pipeline state; data at the end of the headroom (a view sets its own).
    void reset() noexcept {
        data = base != nullptr ? base + packet_headroom : nullptr;
        length = 0;
        peer = nullptr;
        sess = nullptr;
        role = socket_role::listen;
    }
    uint8_t* base = nullptr;
    uint32_t buffer_size = 0;  // bytes at base (the pool's buffer size; 0 for views)
};

class packet_pool {
public:
    // `count` packets with buffers of `buffer_size` bytes (> packet_headroom + packet_tailroom;
    // packet_buffer_size_for(mtu)) and `view_count` views.
    explicit packet_pool(uint32_t count, uint32_t view_count = 0, uint32_t buffer_size = packet_buffer_size);
    packet_pool(const packet_pool&) = delete;
    packet_pool& operator=(const packet_pool&) = delete;

    // A packet with its own buffer; nullptr when exhausted.
    [[nodiscard]] packet* alloc() noexcept {
        if (_free_count == 0) {
            return nullptr;
        }
        packet* p = &_packets[_free[--_free_count]];
        p->reset();
        return p;
    }
    // A view of `length` bytes at `data` in `ring`'s held buffer `id`: takes a reference to the
    // buffer, which free() drops. nullptr when every view is in use. What the stages write
    // around the data must be the view's own: a device read (one packet per buffer) has the
    // buffer's headroom in front and room behind for encapsulation; a datagram of a UDP_GRO
    // receive shares the buffer, and decapsulation writes only inside its own bytes.
    [[nodiscard]] packet* alloc_view(buffer_ring& ring, uint16_t id, uint8_t* data, uint32_t length) noexcept {
        if (_free_view_count == 0) {
            return nullptr;
        }
        packet* p = &_packets[_size + _free_views[--_free_view_count]];
        p->reset();
        p->data = data;
        p->length = length;
        p->ring = &ring;
        p->ring_buffer = id;
        ring.ref(id);
        return p;
    }
    // Any packet, view or not, wherever it has been.
    void free(packet* p) noexcept {
        if (p->ring == nullptr) {
            _free[_free_count++] = p->index;
            return;
        }
        p->ring->release(p->ring_buffer);
        p->ring = nullptr;
        _free_views[_free_view_count++] = p->index - _size;
    }
    // Bytes of each packet's buffer, and how many of them lie behind the headroom.
    [[nodiscard]] uint32_t buffer_size() const noexcept { return _buffer_size; }
    [[nodiscard]] uint32_t data_capacity() const noexcept { return _buffer_size - packet_headroom; }
    // Packets with buffers: free and all.
    [[nodiscard]] uint32_t available() const noexcept { return _free_count; }
    [[nodiscard]] uint32_t size() const noexcept { return _size; }
    // Views: free and all.
    [[nodiscard]] uint32_t views_available() const noexcept { return _free_view_count; }
    [[nodiscard]] uint32_t view_count() const noexcept { return static_cast<uint32_t>(_free_views.size()); }

private:
    struct slab_free {
        void operator()(uint8_t* p) const noexcept;
    };
    std::unique_ptr<uint8_t, slab_free> _slab;
    std::vector<packet> _packets;
    uint32_t _size;  // packets with buffers: _packets[0, _size); views after them
    uint32_t _buffer_size;
    std::vector<uint32_t> _free;
    uint32_t _free_count = 0;
    std::vector<uint32_t> _free_views;
    uint32_t _free_view_count = 0;
};

}  // namespace meshfwd::dataplane
