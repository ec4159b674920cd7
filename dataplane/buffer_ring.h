// One io_uring provided-buffer ring and the buffers behind it: reads name a buffer group instead
// of a buffer (IOSQE_BUFFER_SELECT), the kernel picks the next buffer from the ring and says in
// the completion which one it filled, and the worker processes the data in place there.
//
// The bookkeeping lives here, apart from the kernel: a buffer is either in the ring (the
// kernel's) or held by us with a reference count. A completion takes it (one reference: the
// reader's), every packet that points into it adds one, and the last release puts it back
// into the ring. Returned buffers become visible to the kernel in batches, at publish().
// Registration with a ring (io_uring_register_buf_ring on shared()) is the worker's business;
// the unit test plays the kernel by reading the ring entries itself.
//
// Layout of a buffer (stride bytes): [headroom][what the kernel writes: kernel_length][tail].
// The kernel gets (start + kernel_offset, kernel_length), so the headroom in front of the data
// takes the WireGuard header and the tail behind it the padding and tag: encryption in place.
//
// Threads: one worker (no synchronisation). Constructed at worker set-up: allocates and faults
// in all of its memory (the packet path then never takes a page fault in it); throws
// std::bad_alloc, or std::invalid_argument for a bad layout. The rest never allocates.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace meshfwd::dataplane {

class buffer_ring {
public:
    // count: a power of two, at most 32768. The kernel writes into [kernel_offset,
    // kernel_offset + kernel_length) of each stride-byte buffer.
    buffer_ring(uint32_t count, uint32_t stride, uint32_t kernel_offset, uint32_t kernel_length);
    buffer_ring(const buffer_ring&) = delete;
    buffer_ring& operator=(const buffer_ring&) = delete;

    // The ring the kernel reads (page-aligned; io_uring_buf_reg.ring_addr) and its size.
    [[nodiscard]] io_uring_buf_ring* shared() noexcept { return _ring.get(); }
    [[nodiscard]] uint32_t count() const noexcept { return _count; }
    [[nodiscard]] uint32_t kernel_length() const noexcept { return _kernel_length; }

    // Puts every buffer into the ring and publishes them (once, at set-up).
    void provide_all() noexcept;

    // A completion says the kernel filled buffer `id`: it is ours now, with one reference.
    // False (nothing changes) for an id out of range or one we already hold.
    [[nodiscard]] bool take(uint32_t id) noexcept {
        if (id >= _count || _refs[id] != 0) {
            return false;
        }
        _refs[id] = 1;
        ++_held;
        return true;
    }
    // Start of buffer `id` (its headroom), and where the kernel's data begins.
    [[nodiscard]] uint8_t* start(uint16_t id) noexcept { return _slab.get() + std::size_t{id} * _stride; }
    [[nodiscard]] uint8_t* kernel_data(uint16_t id) noexcept { return start(id) + _kernel_offset; }

    // Another reference to a held buffer (a packet pointing into it).
    void ref(uint16_t id) noexcept { ++_refs[id]; }
    // Drops one reference; the last one hands the buffer back (visible at the next publish()).
    void release(uint16_t id) noexcept {
        if (--_refs[id] == 0) {
            give_back(id);
        }
    }
    // Makes the buffers handed back since the last call visible to the kernel.
    void publish() noexcept {
        if (_pending != 0) {
            io_uring_buf_ring_advance(_ring.get(), static_cast<int>(_pending));
            _published += _pending;
            _pending = 0;
        }
    }

    // Buffers we hold (taken and not yet handed back).
    [[nodiscard]] uint32_t held() const noexcept { return _held; }
    // Buffers ever published (grows by one per buffer; tells a reader that found the ring empty
    // whether trying again can succeed).
    [[nodiscard]] uint64_t published() const noexcept { return _published; }
    [[nodiscard]] uint32_t references(uint16_t id) const noexcept { return _refs[id]; }

private:
    void give_back(uint16_t id) noexcept {
        io_uring_buf_ring_add(_ring.get(), kernel_data(id), _kernel_length, id, _mask, static_cast<int>(_pending));
        ++_pending;
        --_held;
    }

    struct aligned_free {
        void operator()(void* p) const noexcept;
    };
    uint32_t _count;
    uint32_t _stride;
    uint32_t _kernel_offset;
    uint32_t _kernel_length;
    int _mask;
    std::unique_ptr<uint8_t, aligned_free> _slab;
    std::unique_ptr<io_uring_buf_ring, aligned_free> _ring;
    std::vector<uint32_t> _refs;  // 0: in the ring (the kernel's)
    uint32_t _held = 0;
    uint32_t _pending = 0;        // handed back, not yet published
    uint64_t _published = 0;
};

}  // namespace meshfwd::dataplane
