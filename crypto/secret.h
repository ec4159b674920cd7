// Key material that wipes itself. Any thread; a secret is owned by one thread at a time.
//
// secret<N> is non-copyable (use clone() where a copy is really meant), wiped with
// sodium_memzero on destruction and on move-from, and compared in constant time. It has no
// stream or format operator on purpose: secrets never reach a log.
#pragma once

#include <sodium.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace meshfwd::crypto {

template <std::size_t N>
class secret {
public:
    static constexpr std::size_t size_bytes = N;

    secret() noexcept { _bytes.fill(0); }
    explicit secret(std::span<const uint8_t, N> from) noexcept { std::memcpy(_bytes.data(), from.data(), N); }
    ~secret() { wipe(); }

    secret(const secret&) = delete;
    secret& operator=(const secret&) = delete;
    secret(secret&& other) noexcept {
        _bytes = other._bytes;
        other.wipe();
    }
    secret& operator=(secret&& other) noexcept {
        if (this != &other) {
            _bytes = other._bytes;
            other.wipe();
        }
        return *this;
    }

    [[nodiscard]] secret clone() const noexcept { return secret(std::span<const uint8_t, N>(_bytes)); }

    uint8_t* data() noexcept { return _bytes.data(); }
    const uint8_t* data() const noexcept { return _bytes.data(); }
    static constexpr std::size_t size() noexcept { return N; }
    std::span<uint8_t, N> span() noexcept { return std::span<uint8_t, N>(_bytes); }
    std::span<const uint8_t, N> span() const noexcept { return std::span<const uint8_t, N>(_bytes); }

    void wipe() noexcept { sodium_memzero(_bytes.data(), N); }
    [[nodiscard]] bool is_zero() const noexcept { return sodium_is_zero(_bytes.data(), N) == 1; }

    // Constant time.
    friend bool operator==(const secret& a, const secret& b) noexcept {
        return sodium_memcmp(a._bytes.data(), b._bytes.data(), N) == 0;
    }

private:
    std::array<uint8_t, N> _bytes;
};

using secret32 = secret<32>;

// Wipes a stack temporary on every exit path.
template <typename T>
class wipe_on_exit {
public:
    explicit wipe_on_exit(T& target) noexcept : _target(target) {}
    ~wipe_on_exit() { sodium_memzero(&_target, sizeof(T)); }
    wipe_on_exit(const wipe_on_exit&) = delete;
    wipe_on_exit& operator=(const wipe_on_exit&) = delete;

private:
    T& _target;
};

} // namespace meshfwd::crypto
