// The generic Noise IKpsk2 core (Noise spec rev 34, sections 5 and 9) over 25519, ChaChaPoly
// and BLAKE2s, with the prologue, the payloads and the ephemeral keys as parameters. WireGuard
// (noise.h) is this core with prologue = IDENTIFIER, payload 1 = TAI64N, payload 2 = empty,
// plus its own framing. Keeping the core generic lets tests replay the cacophony/snow vectors.
// Any thread; one state belongs to one handshake at a time.
//
//   IKpsk2:
//     <- s
//     ...
//     -> e, es, s, ss          payload 1
//     <- e, ee, se, psk        payload 2
//
// Message 1 = e.pub[32] || AEAD(s.pub)[48] || AEAD(payload1)[n+16]
// Message 2 = e.pub[32] || AEAD(payload2)[m+16]
// With the psk modifier, the `e` token also does MixKey(e.pub) (WireGuard's C = KDF1(C, E)).
#pragma once

#include "crypto/blake2s.h"
#include "crypto/secret.h"
#include "crypto/x25519.h"

#include <cstdint>
#include <span>
#include <string_view>

namespace meshfwd::crypto::noise {

// CipherState + SymmetricState. Wipes itself on destruction.
class symmetric_state {
public:
    symmetric_state() noexcept = default;
    ~symmetric_state() { wipe(); }
    symmetric_state(const symmetric_state&) = delete;
    symmetric_state& operator=(const symmetric_state&) = delete;

    // h = protocol_name padded to 32 bytes, or HASH(protocol_name) when longer; ck = h.
    void initialize(std::string_view protocol_name) noexcept;
    // Restores a precomputed (ck, h) pair (WireGuard's state after the prologue).
    void restore(const secret32& chaining_key, const hash32& hash) noexcept;
    void copy_from(const symmetric_state& other) noexcept;

    void mix_hash(std::span<const uint8_t> data) noexcept;
    // ck, k = KDF2(ck, ikm); n = 0.
    void mix_key(std::span<const uint8_t> ikm) noexcept;
    // mix_key(DH(priv, pub)); false (state unusable) when the DH result is all zeros.
    [[nodiscard]] bool mix_dh(const secret32& private_key, const public_key& public_key_in) noexcept;
    // mix_key with a DH result the caller precomputed (WireGuard's static-static).
    [[nodiscard]] bool mix_precomputed_dh(const secret32& dh_result) noexcept;
    // ck, t, k = KDF3(ck, ikm); mix_hash(t); n = 0.
    void mix_key_and_hash(std::span<const uint8_t> ikm) noexcept;
    // out.size() == plaintext.size() + 16. AD = h; then mix_hash(ciphertext).
    [[nodiscard]] bool encrypt_and_hash(std::span<uint8_t> out, std::span<const uint8_t> plaintext) noexcept;
    // out.size() == ciphertext.size() - 16. False on a bad tag (out zeroed, h unchanged).
    [[nodiscard]] bool decrypt_and_hash(std::span<uint8_t> out, std::span<const uint8_t> ciphertext) noexcept;
    // (k1, k2) = KDF2(ck, empty): k1 initiator->responder, k2 responder->initiator.
    void split(secret32& initiator_to_responder, secret32& responder_to_initiator) const noexcept;

    [[nodiscard]] const hash32& hash() const noexcept { return _h; }
    [[nodiscard]] const secret32& chaining_key() const noexcept { return _ck; }
    void wipe() noexcept;

private:
    secret32 _ck;
    hash32 _h{};
    secret32 _k;
    uint64_t _n = 0;
    bool _has_key = false;
};

// Sizes of the two messages for given payload sizes.
constexpr std::size_t message1_size(std::size_t payload) noexcept { return 32 + 48 + payload + 16; }
constexpr std::size_t message2_size(std::size_t payload) noexcept { return 32 + payload + 16; }

// Both sides start with initialize(name); mix_hash(prologue); mix_hash(responder static).
void initialize_ikpsk2(symmetric_state& st, std::string_view protocol_name, std::span<const uint8_t> prologue,
                       const public_key& responder_static) noexcept;

// Initiator, message 1: e, es, s, ss, payload. `static_static` = DH(s_i, s_r) (precomputed).
// out.size() == message1_size(payload.size()).
[[nodiscard]] bool write_message1(symmetric_state& st, const secret32& ephemeral_private,
                                  const public_key& ephemeral_public, const public_key& responder_static,
                                  const public_key& initiator_static, const secret32& static_static,
                                  std::span<const uint8_t> payload, std::span<uint8_t> out) noexcept;

// Responder, message 1, first half: e, es, s. Writes the initiator's static key (decrypted)
// so the caller can look the peer up. msg.size() >= message1_size(0).
[[nodiscard]] bool read_message1_static(symmetric_state& st, const secret32& responder_private,
                                        std::span<const uint8_t> msg, public_key& remote_ephemeral,
                                        public_key& initiator_static) noexcept;
// Responder, message 1, second half: ss, payload. payload_out.size() == msg.size() - 96.
[[nodiscard]] bool read_message1_payload(symmetric_state& st, const secret32& static_static,
                                         std::span<const uint8_t> msg, std::span<uint8_t> payload_out) noexcept;

// Responder, message 2: e, ee, se, psk, payload. out.size() == message2_size(payload.size()).
[[nodiscard]] bool write_message2(symmetric_state& st, const secret32& ephemeral_private,
                                  const public_key& ephemeral_public, const public_key& remote_ephemeral,
                                  const public_key& initiator_static, const secret32& psk,
                                  std::span<const uint8_t> payload, std::span<uint8_t> out) noexcept;

// Initiator, message 2. payload_out.size() == msg.size() - 48.
[[nodiscard]] bool read_message2(symmetric_state& st, const secret32& ephemeral_private,
                                 const secret32& initiator_private, const secret32& psk,
                                 std::span<const uint8_t> msg, public_key& remote_ephemeral,
                                 std::span<uint8_t> payload_out) noexcept;

}  // namespace meshfwd::crypto::noise
