// TAI64N timestamps (see tai64n.h). Any thread.
#include "crypto/tai64n.h"

#include <cstring>
#include <ctime>

namespace meshfwd::crypto {

tai64n tai64n::now() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return from_unix(static_cast<int64_t>(ts.tv_sec), static_cast<uint32_t>(ts.tv_nsec));
}

tai64n tai64n::from_unix(int64_t seconds, uint32_t nanoseconds) noexcept {
    tai64n t;
    const uint64_t label = base + static_cast<uint64_t>(seconds);
    const uint32_t nanos = nanoseconds & ~whitener_mask;
    for (int i = 0; i < 8; ++i) {
        t.bytes[static_cast<std::size_t>(i)] = static_cast<uint8_t>(label >> (56 - 8 * i));
    }
    for (int i = 0; i < 4; ++i) {
        t.bytes[static_cast<std::size_t>(8 + i)] = static_cast<uint8_t>(nanos >> (24 - 8 * i));
    }
    return t;
}

tai64n tai64n::from_bytes(std::span<const uint8_t, 12> raw) noexcept {
    tai64n t;
    std::memcpy(t.bytes.data(), raw.data(), 12);
    return t;
}

uint64_t tai64n::seconds_label() const noexcept {
    uint64_t v = 0;
    for (std::size_t i = 0; i < 8; ++i) {
        v = (v << 8) | bytes[i];
    }
    return v;
}

uint32_t tai64n::nanoseconds() const noexcept {
    uint32_t v = 0;
    for (std::size_t i = 8; i < 12; ++i) {
        v = (v << 8) | bytes[i];
    }
    return v;
}

bool tai64n::after(const tai64n& other) const noexcept {
    return std::memcmp(bytes.data(), other.bytes.data(), bytes.size()) > 0;
}

}  // namespace meshfwd::crypto
