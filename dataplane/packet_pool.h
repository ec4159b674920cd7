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
inline constexpr uint32_t packet_buffer_size = 2048;
// Bytes behind the headroom: a whole IP packet up to the MTU, padding and the tag.
inline constexpr uint32_t packet_data_capacity = packet_buffer_size - packet_headroom;

struct packet {
    uint8_t* data = nullptr;  // current contents (IP packet, or WireGuard message)
    uint32_t length = 0;
    uint32_t index = 0;       // in the pool (views after the buffer packets)
    // Pipeline state.
    socket_address remote;    // UDP: source on receive, destination on send
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
    [[nodiscard]] uint8_t* buffer_end() noexcept { return base + packet_buffer_size; }
    // Fresh pipeline state; data at the end of the headroom (a view sets its own).
    void reset() noexcept {
        data = base != nullptr ? base + packet_headroom : nullptr;
        length = 0;
        peer = nullptr;
        sess = nullptr;
        role = socket_role::listen;
    }
    uint8_t* base = nullptr;
};

class packet_pool {
public:
    // `count` packets with buffers and `view_count` views.
    explicit packet_pool(uint32_t count, uint32_t view_count = 0);
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
    std::vector<uint32_t> _free;
    uint32_t _free_count = 0;
    std::vector<uint32_t> _free_views;
    uint32_t _free_view_count = 0;
};

}  // namespace meshfwd::dataplane
