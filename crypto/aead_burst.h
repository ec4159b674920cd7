// Batched ChaCha20-Poly1305 for the data plane: encrypts or decrypts a burst of WireGuard transport
// payloads in place. Threads: one aead_burst instance per worker thread (not thread-safe); the free
// functions below may be called from any thread. crypto_init() must have run first.
//
// Pipeline position: worker tx path  ... → peer → keypair → encrypt_burst → UDP tx burst
//                    worker rx path  ... → receiver index → decrypt_burst → replay window → ...
// Backends (files chosen by meson, picked at run time):
//   libsodium  aead_burst_sodium.cc    portable, one message at a time
//   ipsec-mb   aead_burst_ipsec_mb.cc  intel-ipsec-mb multi-buffer jobs (AVX2 and up), burst API
// Both are cross-checked byte for byte by tests/unit/aead_burst_test.cc. Nothing on the burst path
// allocates, locks, logs or throws; an instance preallocates its scratch at construction.
#pragma once

#include "crypto/secret.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

namespace meshfwd::crypto {

// One packet of a burst.
struct aead_op {
    uint8_t* data;          // payload; encrypt: plaintext with room for +16 tag after it; decrypt: ciphertext||tag
    uint32_t length;        // encrypt: plaintext length; decrypt: ciphertext length including the 16-byte tag
    uint64_t counter;       // WireGuard nonce counter (nonce = 4 zero bytes || LE64 counter)
    const secret32* key;    // may differ per op (bursts mix peers)
    void* owner = nullptr;  // the caller's (e.g. its packet); never read, moved with the op by decrypt_burst
};

class aead_burst {
public:
    virtual ~aead_burst();

    // Encrypts every op in place and appends the 16-byte tag. Returns ops.size().
    virtual std::size_t encrypt_burst(std::span<aead_op> ops) noexcept = 0;
    // Decrypts and authenticates in place (no associated data: WireGuard uses none). Stable-partitions
    // ops so the authentic ones are [0, n) and the failures [n, size), each side in its original
    // order; returns n. Ops move whole, so `owner` says which of the caller's objects each one is.
    // An op shorter than the tag fails. The payload of a failed op is unspecified.
    virtual std::size_t decrypt_burst(std::span<aead_op> ops) noexcept = 0;
    // "libsodium" or "ipsec-mb".
    virtual std::string_view name() const noexcept = 0;

protected:
    aead_burst() = default;
    aead_burst(const aead_burst&) = delete;
    aead_burst& operator=(const aead_burst&) = delete;
};

enum class aead_backend { automatic, libsodium, ipsec_mb };

// A new instance for one worker thread; nullptr if the backend is unavailable (ipsec-mb not built,
// or the CPU lacks AVX2). Allocates: call at worker setup, not per burst.
[[nodiscard]] std::unique_ptr<aead_burst> make_aead_burst(aead_backend backend);
// automatic -> ipsec_mb where built and the CPU has AVX2, else libsodium; other values unchanged.
[[nodiscard]] aead_backend resolve_backend(aead_backend backend) noexcept;
// Whether make_aead_burst(backend) can succeed on this build and CPU.
[[nodiscard]] bool aead_backend_available(aead_backend backend) noexcept;
// "auto" | "libsodium" | "ipsec-mb" (the `dataplane.crypto` config values).
[[nodiscard]] std::optional<aead_backend> parse_aead_backend(std::string_view text) noexcept;
[[nodiscard]] std::string_view to_string(aead_backend backend) noexcept;

} // namespace meshfwd::crypto
