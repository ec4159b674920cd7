// Lock-free RFC 6479 replay window (see replay.h). Any thread, concurrently.
//
// State: _max = the greatest counter that passed the window test (0 initially), and 256 slots;
// slot s holds (generation g, bitmap) for the one block b = c >> 5 with b & 255 == s that it
// currently describes, where g = c >> 13 = b >> 8 (low 32 bits kept).
//
// check_and_set(c):
//   1. c >= REJECT_AFTER_MESSAGES               → limit
//   2. c + 8128 < _max                          → too_old
//   3. _max = max(_max, c)                      (BEFORE touching the slot)
//   4. load slot s (acquire); loop:
//        re-read _max; c + 8128 < _max          → too_old
//        slot generation == g: bit set          → duplicate, else CAS in the bit
//        otherwise (older block):                 CAS in (g, only our bit)
//
// Why this is the sequential window (accept iff c not seen and c + 8128 >= highest accepted):
//  * In the window, the live counters span blocks (M >> 5) - 254 .. (M >> 5) (8128 = 254 * 32),
//    i.e. 255 consecutive blocks, so no two live blocks share one of the 256 slots: a slot only
//    ever has to remember one live block, and its bitmap is exact for it.
//  * A slot whose block differs from ours is either older (stale: its counters are all out of
//    the window, so dropping its bits loses nothing) or newer (b' >= b + 256, so some counter
//    c' >= 32b + 8192 > c + 8128 was accepted, making c too old). Step 3 happens before the
//    writer's slot CAS (release) and our slot load is acquire, so when we see a newer block our
//    re-read of _max already holds c' and step 4 answers too_old. Hence "different generation and
//    window test passed" proves the slot is stale, with no signed/wrapping comparison at all.
//  * Raising _max before knowing the verdict is harmless: c is then refused only as duplicate
//    (an earlier acceptor of c raised _max to >= c) or too_old (an accepted counter > c + 8128
//    exists), so _max never exceeds the greatest counter that is or will be accepted.
//  * Every decision is one CAS on one 64-bit word, so two workers can never both set the same
//    bit: exactly one of them wins and the other sees it set (duplicate).
// The one approximation: the generation keeps 32 bits (counter bits 13..44). A stale slot whose
// full generation differs from ours by a multiple of 2^32 looks current; then a fresh counter may
// be refused as duplicate (never the reverse: no replay is ever accepted). That needs the highest
// counter to advance by 2^45 while the slot sees no packet: ~3.5e13 authenticated packets inside
// one keypair's 180 s life, which no sender can produce.
#include "crypto/replay.h"

namespace meshfwd::crypto {

namespace {

constexpr uint64_t pack(uint32_t generation, uint32_t bits) noexcept {
    return (static_cast<uint64_t>(generation) << 32) | bits;
}
constexpr uint32_t generation_of(uint64_t slot) noexcept { return static_cast<uint32_t>(slot >> 32); }
constexpr uint32_t bits_of(uint64_t slot) noexcept { return static_cast<uint32_t>(slot); }

struct position {
    std::size_t slot;
    uint32_t generation;
    uint32_t bit;
};
constexpr position locate(uint64_t counter) noexcept {
    return {static_cast<std::size_t>((counter >> 5) & 255), static_cast<uint32_t>(counter >> 13),
            uint32_t{1} << (counter & 31)};
}
static_assert(replay_window::n_slots == 256 && replay_window::window_size == 254 * 32);

// c + 8128 < max, without overflow (c < REJECT_AFTER_MESSAGES leaves 8192 of headroom).
constexpr bool below_window(uint64_t counter, uint64_t max) noexcept {
    return counter + replay_window::window_size < max;
}

}  // namespace

void replay_window::reset() noexcept {
    _max.store(0, std::memory_order_relaxed);
    for (auto& slot : _slots) {
        slot.store(0, std::memory_order_relaxed);
    }
}

replay_reason replay_window::peek(uint64_t counter) const noexcept {
    if (counter >= spec::reject_after_messages) {
        return replay_reason::limit;
    }
    if (below_window(counter, _max.load(std::memory_order_acquire))) {
        return replay_reason::too_old;
    }
    const position p = locate(counter);
    const uint64_t v = _slots[p.slot].load(std::memory_order_acquire);
    if (generation_of(v) == p.generation && (bits_of(v) & p.bit) != 0) {
        return replay_reason::duplicate;
    }
    if (below_window(counter, _max.load(std::memory_order_acquire))) {
        return replay_reason::too_old;
    }
    return replay_reason::ok;
}

replay_reason replay_window::check_and_set(uint64_t counter) noexcept {
    if (counter >= spec::reject_after_messages) {
        return replay_reason::limit;
    }
    uint64_t max = _max.load(std::memory_order_acquire);
    if (below_window(counter, max)) {
        return replay_reason::too_old;
    }
    // Step 3: publish the new high-water mark before the slot write (see the proof above).
    while (counter > max &&
           !_max.compare_exchange_weak(max, counter, std::memory_order_acq_rel, std::memory_order_acquire)) {
    }

    const position p = locate(counter);
    std::atomic<uint64_t>& slot = _slots[p.slot];
    uint64_t v = slot.load(std::memory_order_acquire);
    for (;;) {
        if (below_window(counter, _max.load(std::memory_order_acquire))) {
            return replay_reason::too_old;
        }
        uint64_t next = 0;
        if (generation_of(v) == p.generation) {
            if ((bits_of(v) & p.bit) != 0) {
                return replay_reason::duplicate;
            }
            next = v | p.bit;
        } else {
            next = pack(p.generation, p.bit);
        }
        if (slot.compare_exchange_weak(v, next, std::memory_order_acq_rel, std::memory_order_acquire)) {
            return replay_reason::ok;
        }
    }
}

}  // namespace meshfwd::crypto
