// X25519 (RFC 7748) over libsodium, with WireGuard's key conventions. Any thread.
#pragma once

#include "crypto/secret.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace meshfwd::crypto {

using public_key = std::array<uint8_t, 32>;

// Must run once before any other crypto call (idempotent, thread-safe). Returns false if
// libsodium cannot initialise (no entropy source).
[[nodiscard]] bool crypto_init() noexcept;

// A new private key, clamped as `wg genkey` clamps it.
[[nodiscard]] secret32 generate_private_key() noexcept;
// Clamps in place (RFC 7748 decodeScalar25519).
void clamp_private_key(secret32& key) noexcept;
[[nodiscard]] public_key derive_public_key(const secret32& private_key) noexcept;

// out = X25519(scalar, point). False when the result is all zeros (a low-order point), which
// WireGuard treats as a failed handshake.
[[nodiscard]] bool x25519(secret32& out, const secret32& scalar, const public_key& point) noexcept;

// `wg`'s key text form: 44 characters of standard base64 with padding.
[[nodiscard]] std::string key_to_base64(std::span<const uint8_t, 32> key);
// Exactly 32 bytes of base64 or nothing; whitespace around the text is ignored.
[[nodiscard]] std::optional<std::array<uint8_t, 32>> key_from_base64(std::string_view text);

} // namespace meshfwd::crypto
