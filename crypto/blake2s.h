// BLAKE2s (RFC 7693) over libb2, HMAC-BLAKE2s, and WireGuard's HKDF. Any thread.
//
// WireGuard uses BLAKE2s in four ways: HASH (unkeyed, 32 bytes), MAC (keyed, 16 bytes; mac1
// and mac2), HMAC (RFC 2104 over BLAKE2s with a 64-byte block) and KDF1/2/3 (HKDF built on
// HMAC with the chaining key as salt).
#pragma once

#include "crypto/secret.h"

#include <blake2.h>

#include <array>
#include <cstdint>
#include <span>

namespace meshfwd::crypto {

constexpr std::size_t blake2s_hash_size = 32;
constexpr std::size_t blake2s_block_size = 64;

using hash32 = std::array<uint8_t, 32>;
using mac16 = std::array<uint8_t, 16>;

// Incremental BLAKE2s; key may be empty (unkeyed) or up to 32 bytes; out_len 1..32.
class blake2s_hasher {
public:
    explicit blake2s_hasher(std::size_t out_len = blake2s_hash_size,
                            std::span<const uint8_t> key = {}) noexcept;
    ~blake2s_hasher();
    blake2s_hasher(const blake2s_hasher&) = delete;
    blake2s_hasher& operator=(const blake2s_hasher&) = delete;

    blake2s_hasher& update(std::span<const uint8_t> data) noexcept;
    // Writes out_len bytes to out (out.size() must be >= out_len).
    void final(std::span<uint8_t> out) noexcept;

private:
    blake2s_state _state;
    std::size_t _out_len;
};

// One-shot BLAKE2s: out.size() bytes (1..32), optional key (0..32 bytes).
void blake2s(std::span<uint8_t> out, std::span<const uint8_t> in, std::span<const uint8_t> key = {}) noexcept;

// HMAC-BLAKE2s (32-byte output).
void hmac_blake2s(std::span<uint8_t, 32> out, std::span<const uint8_t> key, std::span<const uint8_t> in) noexcept;

// WireGuard KDF_n(key, input): writes n = outs.size() (1..3) 32-byte outputs.
//   t0 = HMAC(key, input); t1 = HMAC(t0, 0x1); t_i = HMAC(t0, t_{i-1} || i)
void kdf(std::span<secret32* const> outs, std::span<const uint8_t> key, std::span<const uint8_t> input) noexcept;

} // namespace meshfwd::crypto
