// Receiver index -> session table. WireGuard transport messages carry the 32-bit receiver index
// that WE chose for the session; workers map it back to the session per packet.
//
// Threads: insert() and erase() belong to the control thread (one writer). lookup() may run on
// any number of workers at once, lock-free and wait-free (three loads, no retry loop).
//
// An index is (random high bits << capacity_log2) | slot. The slot gives O(1) lookup; the random
// high bits make indexes hard to guess and let a lookup refuse a stale or forged index whose slot
// is now used by another session.
//
// Each slot is two atomics: `tag` = generation (31 bits) | live (1 bit) | index (32 bits), and
// `value`. Every insert and erase of a slot bumps the generation, so a tag value is never seen
// twice. The writer orders its stores as
//     insert: value.store(p, release); tag.store({gen+1, live, index}, release)
//     erase:  tag.store({gen+1, dead, index}, relaxed); value.store(nullptr, release)
// and lookup(i) reads tag (acquire) -> value (acquire) -> tag again, and returns the value only
// if both tag reads are the same live tag for exactly i. Why that never returns a value under an
// index it was not inserted with:
//   * The first tag read t1 comes from the insert that stored i; acquire makes that insert's
//     value store visible, so the value read is that value or a later one.
//   * A later value can only come from a later erase (nullptr) or from a later insert, which
//     follows an erase whose tag store precedes its value store (release) in program order. Having
//     read that later value with acquire, the second tag read must see that erase's tag or a
//     later one, whose generation differs from t1's: lookup answers nullptr.
//   * So t1 == t2 proves the value is the one stored together with t1. (The generation would have
//     to wrap 2^31 changes of one slot between a reader's loads for this to fail.)
// A lookup racing with erase may still return the value being erased: the caller frees a value
// only after an RCU grace period that follows its erase(), so such a reader never sees it freed.
#pragma once

#include <sodium.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

namespace meshfwd::dataplane {

// Test seam: lookup() calls these between its loads, so a unit test can run an erase/insert
// exactly there on one thread. The default does nothing and compiles away.
struct index_table_no_hooks {
    static void after_tag_read() noexcept {}
    static void after_value_read() noexcept {}
};

template <typename T, typename Hooks = index_table_no_hooks>
class index_table {
public:
    // capacity_log2 in [1, 24]: at least 8 random bits per index. Allocates all slots now.
    explicit index_table(uint32_t capacity_log2 = 16)
        : _log2(capacity_log2), _mask((uint32_t{1} << (capacity_log2 & 31)) - 1) {
        if (capacity_log2 < 1 || capacity_log2 > 24) {
            throw std::invalid_argument("index_table: capacity_log2 must be in [1, 24]");
        }
        if (sodium_init() < 0) {
            throw std::runtime_error("index_table: libsodium initialisation failed");
        }
        const std::size_t capacity = std::size_t{1} << capacity_log2;
        _slots = std::make_unique<slot[]>(capacity);
        // Pop order 0, 1, 2, ...: the free list is a stack.
        _free.reserve(capacity);
        for (std::size_t s = capacity; s-- > 0;) {
            _free.push_back(static_cast<uint32_t>(s));
        }
    }

    index_table(const index_table&) = delete;
    index_table& operator=(const index_table&) = delete;

    // Control thread. Stores `value` under a fresh index; nullopt when every slot is taken.
    std::optional<uint32_t> insert(T* value) {
        if (_free.empty()) {
            return std::nullopt;
        }
        const uint32_t s = _free.back();
        _free.pop_back();
        slot& sl = _slots[s];
        const uint64_t old = sl.tag.load(std::memory_order_relaxed);
        // Random high bits, different from this slot's previous index so that a late packet for
        // the old session never reaches the new one.
        uint32_t index;
        do {
            index = (randombytes_uniform(uint32_t{1} << (32 - _log2)) << _log2) | s;
        } while (index == index_of(old));
        sl.value.store(value, std::memory_order_release);
        sl.tag.store(make_tag(generation_of(old) + 1, true, index), std::memory_order_release);
        ++_size;
        return index;
    }

    // Control thread. No-op unless `index` is live.
    void erase(uint32_t index) {
        slot& sl = _slots[index & _mask];
        const uint64_t old = sl.tag.load(std::memory_order_relaxed);
        if (!is_live(old) || index_of(old) != index) {
            return;
        }
        sl.tag.store(make_tag(generation_of(old) + 1, false, index), std::memory_order_relaxed);
        sl.value.store(nullptr, std::memory_order_release);
        _free.push_back(index & _mask);
        --_size;
    }

    // Any thread. The value inserted under exactly `index` (and not yet erased), else nullptr.
    // The result stays valid until the reader's next RCU quiescent state (see the file comment).
    // Control thread: replaces the value under a live index (an index reserved with
    // insert(nullptr) gets its value once the object behind it is complete). A reader sees the
    // old or the new value, never another index's: the tag is unchanged and value is released.
    bool assign(uint32_t index, T* value) {
        slot& sl = _slots[index & _mask];
        const uint64_t t = sl.tag.load(std::memory_order_relaxed);
        if (!is_live(t) || index_of(t) != index) {
            return false;
        }
        sl.value.store(value, std::memory_order_release);
        return true;
    }

    [[nodiscard]] T* lookup(uint32_t index) const noexcept {
        const slot& sl = _slots[index & _mask];
        const uint64_t t1 = sl.tag.load(std::memory_order_acquire);
        Hooks::after_tag_read();
        T* const value = sl.value.load(std::memory_order_acquire);
        Hooks::after_value_read();
        const uint64_t t2 = sl.tag.load(std::memory_order_relaxed);
        const uint64_t want = make_tag(0, true, index);
        return (t1 & live_and_index) == want && t1 == t2 ? value : nullptr;
    }

    // Control thread: live entries.
    [[nodiscard]] std::size_t size() const noexcept { return _size; }
    [[nodiscard]] std::size_t capacity() const noexcept { return std::size_t{_mask} + 1; }

private:
    static constexpr uint64_t live_bit = uint64_t{1} << 32;
    static constexpr uint64_t live_and_index = live_bit | 0xffffffffu;

    static constexpr uint64_t make_tag(uint32_t generation, bool live, uint32_t index) noexcept {
        return (uint64_t{generation & 0x7fffffffu} << 33) | (live ? live_bit : 0) | index;
    }
    static constexpr uint32_t generation_of(uint64_t tag) noexcept { return static_cast<uint32_t>(tag >> 33); }
    static constexpr bool is_live(uint64_t tag) noexcept { return (tag & live_bit) != 0; }
    static constexpr uint32_t index_of(uint64_t tag) noexcept { return static_cast<uint32_t>(tag); }

    struct slot {
        std::atomic<uint64_t> tag{0};  // starts dead, generation 0
        std::atomic<T*> value{nullptr};
    };

    uint32_t _log2;
    uint32_t _mask;
    std::unique_ptr<slot[]> _slots;
    std::vector<uint32_t> _free;  // control thread only
    std::size_t _size = 0;        // control thread only
};

} // namespace meshfwd::dataplane
