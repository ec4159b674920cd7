// spsc_ring: a bounded lock-free ring between exactly ONE producer thread and ONE consumer
// thread (e.g. a worker handing handshake messages to the control thread, or the control thread
// posting to one worker's mailbox). Only the producer may call try_push/push_burst; only the
// consumer may call try_pop/pop_burst; size_approx/empty may be called from either. Two
// producers or two consumers corrupt it: use one ring per producer-consumer pair.
//
// Free-running 64-bit indices (no wrap in practice), masked into a power-of-two slot array.
// The producer publishes slots with a release store of _head, which the consumer reads with
// acquire; the consumer frees slots with a release store of _tail, which the producer reads with
// acquire. Each side keeps a private copy of the other's index and rereads the shared one only
// when its copy says the ring is full (producer) or empty (consumer), so in steady state the two
// cores do not pull each other's cache line on every operation.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <span>
#include <type_traits>

namespace meshfwd {

/// Cache line size on the x86-64 and arm64 servers meshfwd targets. Not
/// std::hardware_destructive_interference_size: GCC warns that it may differ between builds.
inline constexpr std::size_t cache_line_size = 64;

template <typename T, std::size_t Capacity>
class spsc_ring {
    static_assert(Capacity >= 2 && (Capacity & (Capacity - 1)) == 0, "Capacity must be a power of two");
    static_assert(std::is_default_constructible_v<T>, "slots are default-constructed up front");
    static_assert(std::is_nothrow_copy_assignable_v<T>, "push and pop copy-assign and are noexcept");

public:
    spsc_ring() = default;
    spsc_ring(const spsc_ring&) = delete;
    spsc_ring& operator=(const spsc_ring&) = delete;

    static constexpr std::size_t capacity() noexcept { return Capacity; }

    /// Producer only. False when the ring is full.
    bool try_push(const T& item) noexcept {
        const std::size_t head = _head.load(std::memory_order_relaxed);
        if (head - _tail_cache == Capacity) {
            _tail_cache = _tail.load(std::memory_order_acquire);
            if (head - _tail_cache == Capacity) {
                return false;
            }
        }
        _slots[head & mask] = item;
        _head.store(head + 1, std::memory_order_release);
        return true;
    }

    /// Producer only. Pushes a prefix of items, as many as fit; returns how many.
    std::size_t push_burst(std::span<const T> items) noexcept {
        const std::size_t head = _head.load(std::memory_order_relaxed);
        std::size_t room = Capacity - (head - _tail_cache);
        if (room < items.size()) {
            _tail_cache = _tail.load(std::memory_order_acquire);
            room = Capacity - (head - _tail_cache);
        }
        const std::size_t n = std::min(room, items.size());
        for (std::size_t i = 0; i < n; ++i) {
            _slots[(head + i) & mask] = items[i];
        }
        if (n != 0) {
            _head.store(head + n, std::memory_order_release);
        }
        return n;
    }

    /// Consumer only. False when the ring is empty.
    bool try_pop(T& out) noexcept {
        const std::size_t tail = _tail.load(std::memory_order_relaxed);
        if (tail == _head_cache) {
            _head_cache = _head.load(std::memory_order_acquire);
            if (tail == _head_cache) {
                return false;
            }
        }
        out = _slots[tail & mask];
        _tail.store(tail + 1, std::memory_order_release);
        return true;
    }

    /// Consumer only. Pops into a prefix of out, as many as are queued; returns how many.
    std::size_t pop_burst(std::span<T> out) noexcept {
        const std::size_t tail = _tail.load(std::memory_order_relaxed);
        std::size_t avail = _head_cache - tail;
        if (avail < out.size()) {
            _head_cache = _head.load(std::memory_order_acquire);
            avail = _head_cache - tail;
        }
        const std::size_t n = std::min(avail, out.size());
        for (std::size_t i = 0; i < n; ++i) {
            out[i] = _slots[(tail + i) & mask];
        }
        if (n != 0) {
            _tail.store(tail + n, std::memory_order_release);
        }
        return n;
    }

    /// Either side. Exact when called by one side with the other idle; otherwise a snapshot
    /// that may be stale by the time it returns.
    std::size_t size_approx() const noexcept {
        // Tail first: head only grows, so head read later is never below this tail.
        const std::size_t tail = _tail.load(std::memory_order_acquire);
        const std::size_t head = _head.load(std::memory_order_acquire);
        return std::min(head - tail, Capacity);
    }

    bool empty() const noexcept { return size_approx() == 0; }

private:
    static constexpr std::size_t mask = Capacity - 1;

    // Producer's line: its index, and its copy of the consumer's.
    alignas(cache_line_size) std::atomic<std::size_t> _head{0};
    std::size_t _tail_cache = 0;
    // Consumer's line: its index, and its copy of the producer's.
    alignas(cache_line_size) std::atomic<std::size_t> _tail{0};
    std::size_t _head_cache = 0;
    alignas(cache_line_size) std::array<T, Capacity> _slots{};
};

} // namespace meshfwd
