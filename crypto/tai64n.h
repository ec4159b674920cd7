// TAI64N timestamps, the payload of WireGuard's handshake initiation. Any thread.
//
// 12 bytes, big-endian: 8 bytes of seconds as TAI64 label (0x400000000000000a + Unix seconds,
// the "+10" being the TAI-UTC offset the reference implementations hard-code) and 4 bytes of
// nanoseconds. Like the kernel (tai64n_now) and wireguard-go (tai64n.stamp), the nanoseconds are
// rounded down to a multiple of 2^24 ns (~16.8 ms, the largest power of two below
// 1 s / INITIATIONS_PER_SECOND) so the timestamp leaks no precise clock. The responder only needs
// the order: a new initiation from a peer must carry a strictly greater timestamp.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <span>

namespace meshfwd::crypto {

struct tai64n {
    static constexpr uint64_t base = 0x400000000000000aULL;
    static constexpr uint32_t whitener_mask = (1u << 24) - 1;

    std::array<uint8_t, 12> bytes{};

    // Now, from the wall clock (CLOCK_REALTIME).
    [[nodiscard]] static tai64n now() noexcept;
    // From Unix seconds and nanoseconds (nanoseconds are whitened as above).
    [[nodiscard]] static tai64n from_unix(int64_t seconds, uint32_t nanoseconds) noexcept;
    [[nodiscard]] static tai64n from_bytes(std::span<const uint8_t, 12> raw) noexcept;

    [[nodiscard]] uint64_t seconds_label() const noexcept;
    [[nodiscard]] uint32_t nanoseconds() const noexcept;

    // Strictly later than other (lexicographic order of the big-endian bytes).
    [[nodiscard]] bool after(const tai64n& other) const noexcept;
    friend bool operator==(const tai64n&, const tai64n&) = default;
};
static_assert(sizeof(tai64n) == 12);

}  // namespace meshfwd::crypto
