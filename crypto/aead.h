// Single-message AEADs over libsodium. Any thread.
//
// ChaCha20-Poly1305 (RFC 8439) with WireGuard's nonce: 4 zero bytes then the 64-bit counter,
// little-endian. XChaCha20-Poly1305 (24-byte nonce) for the cookie reply. The batched
// data-plane API lives in aead_burst.h; this one serves handshakes, cookies and tests.
#pragma once

#include "crypto/secret.h"

#include <cstdint>
#include <span>

namespace meshfwd::crypto {

constexpr std::size_t aead_tag_size = 16;
constexpr std::size_t xaead_nonce_size = 24;

// dst.size() must be src.size() + 16; dst may equal src (in place).
void aead_encrypt(std::span<uint8_t> dst, std::span<const uint8_t> src, uint64_t counter,
                  std::span<const uint8_t> ad, const secret32& key) noexcept;
// src holds ciphertext||tag; dst.size() must be src.size() - 16. False on a bad tag (dst is
// then zeroed) or a short src.
[[nodiscard]] bool aead_decrypt(std::span<uint8_t> dst, std::span<const uint8_t> src, uint64_t counter,
                                std::span<const uint8_t> ad, const secret32& key) noexcept;

// The same with an explicit 12-byte nonce (RFC 8439 / Wycheproof form).
void aead_encrypt_nonce(std::span<uint8_t> dst, std::span<const uint8_t> src, std::span<const uint8_t, 12> nonce,
                        std::span<const uint8_t> ad, std::span<const uint8_t, 32> key) noexcept;
[[nodiscard]] bool aead_decrypt_nonce(std::span<uint8_t> dst, std::span<const uint8_t> src,
                                      std::span<const uint8_t, 12> nonce, std::span<const uint8_t> ad,
                                      std::span<const uint8_t, 32> key) noexcept;

void xaead_encrypt(std::span<uint8_t> dst, std::span<const uint8_t> src, std::span<const uint8_t, 24> nonce,
                   std::span<const uint8_t> ad, std::span<const uint8_t, 32> key) noexcept;
[[nodiscard]] bool xaead_decrypt(std::span<uint8_t> dst, std::span<const uint8_t> src,
                                 std::span<const uint8_t, 24> nonce, std::span<const uint8_t> ad,
                                 std::span<const uint8_t, 32> key) noexcept;

// WireGuard's 12-byte nonce for a counter.
void wg_nonce(std::span<uint8_t, 12> out, uint64_t counter) noexcept;

} // namespace meshfwd::crypto
