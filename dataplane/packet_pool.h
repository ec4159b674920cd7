// Packet buffers for one worker: a fixed pool of equal buffers, each with headroom in front of
// the data so the WireGuard header (and a virtio-net header) can be written without moving the
// payload, and room behind it for padding and the Poly1305 tag.
//
// Threads: one pool per worker, used only by that worker (no synchronisation). Allocated once at
// worker set-up; alloc/free are O(1) and never allocate.
#pragma once
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
    uint32_t index = 0;       // in the pool
    // Pipeline state.
    socket_address remote;    // UDP: source on receive, destination on send
    peer_runtime* peer = nullptr;
    session* sess = nullptr;
    uint64_t counter = 0;
    uint32_t flow_hash = 0;
    socket_role role = socket_role::listen;  // receive: which socket; send: which to use

    [[nodiscard]] uint8_t* buffer_start() noexcept { return base; }
    [[nodiscard]] uint8_t* buffer_end() noexcept { return base + packet_buffer_size; }
    void reset() noexcept {
        data = base + packet_headroom;
        length = 0;
        peer = nullptr;
        sess = nullptr;
        role = socket_role::listen;
    }
    uint8_t* base = nullptr;
};

class packet_pool {
public:
    explicit packet_pool(uint32_t count);
    packet_pool(const packet_pool&) = delete;
    packet_pool& operator=(const packet_pool&) = delete;

    // nullptr when exhausted.
    [[nodiscard]] packet* alloc() noexcept {
        if (_free_count == 0) {
            return nullptr;
        }
        packet* p = &_packets[_free[--_free_count]];
        p->reset();
        return p;
    }
    void free(packet* p) noexcept { _free[_free_count++] = p->index; }
    // The packet whose buffer contains `address` (for mapping AEAD ops back to packets).
    [[nodiscard]] packet* owner_of(const uint8_t* address) noexcept {
        return &_packets[static_cast<std::size_t>(address - _slab.get()) / packet_buffer_size];
    }
    [[nodiscard]] uint32_t available() const noexcept { return _free_count; }
    [[nodiscard]] uint32_t size() const noexcept { return static_cast<uint32_t>(_packets.size()); }

private:
    struct slab_free {
        void operator()(uint8_t* p) const noexcept;
    };
    std::unique_ptr<uint8_t, slab_free> _slab;
    std::vector<packet> _packets;
    std::vector<uint32_t> _free;
    uint32_t _free_count = 0;
};

}  // namespace meshfwd::dataplane
