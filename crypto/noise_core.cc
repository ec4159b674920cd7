// Generic Noise IKpsk2 core (see noise_core.h). Any thread; a state belongs to one caller.
//
// Every step that can fail returns bool and leaves the caller to discard the whole state: a
// failed handshake is never resumed. Temporaries holding secrets are secret32 (wiped on scope
// exit) or wiped explicitly.
#include "crypto/noise_core.h"

#include "crypto/aead.h"

#include <sodium.h>

#include <array>
#include <cstring>

namespace meshfwd::crypto::noise {

void symmetric_state::initialize(std::string_view protocol_name) noexcept {
    _h.fill(0);
    if (protocol_name.size() <= _h.size()) {
        std::memcpy(_h.data(), protocol_name.data(), protocol_name.size());
    } else {
        blake2s(_h, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(protocol_name.data()),
                                             protocol_name.size()));
    }
    std::memcpy(_ck.data(), _h.data(), _h.size());
    _k.wipe();
    _n = 0;
    _has_key = false;
}

void symmetric_state::restore(const secret32& chaining_key, const hash32& hash) noexcept {
    _ck = chaining_key.clone();
    _h = hash;
    _k.wipe();
    _n = 0;
    _has_key = false;
}

void symmetric_state::copy_from(const symmetric_state& other) noexcept {
    _ck = other._ck.clone();
    _h = other._h;
    _k = other._k.clone();
    _n = other._n;
    _has_key = other._has_key;
}

void symmetric_state::mix_hash(std::span<const uint8_t> data) noexcept {
    blake2s_hasher hasher;
    hasher.update(_h).update(data).final(_h);
}

void symmetric_state::mix_key(std::span<const uint8_t> ikm) noexcept {
    secret32* outs[2] = {&_ck, &_k};
    kdf(outs, _ck.span(), ikm);
    _n = 0;
    _has_key = true;
}

bool symmetric_state::mix_dh(const secret32& private_key, const public_key& public_key_in) noexcept {
    secret32 dh;
    if (!x25519(dh, private_key, public_key_in)) {
        return false;
    }
    mix_key(dh.span());
    return true;
}

bool symmetric_state::mix_precomputed_dh(const secret32& dh_result) noexcept {
    if (dh_result.is_zero()) {
        return false;
    }
    mix_key(dh_result.span());
    return true;
}

void symmetric_state::mix_key_and_hash(std::span<const uint8_t> ikm) noexcept {
    secret32 temp_h;
    secret32* outs[3] = {&_ck, &temp_h, &_k};
    kdf(outs, _ck.span(), ikm);
    mix_hash(temp_h.span());
    _n = 0;
    _has_key = true;
}

bool symmetric_state::encrypt_and_hash(std::span<uint8_t> out, std::span<const uint8_t> plaintext) noexcept {
    if (!_has_key) {
        // Noise allows an empty key (plaintext + MixHash); IKpsk2 never gets here.
        if (out.size() != plaintext.size()) {
            return false;
        }
        std::memmove(out.data(), plaintext.data(), plaintext.size());
        mix_hash(out);
        return true;
    }
    if (out.size() != plaintext.size() + aead_tag_size || _n == ~uint64_t{0}) {
        return false;
    }
    aead_encrypt(out, plaintext, _n, _h, _k);
    ++_n;
    mix_hash(out);
    return true;
}

bool symmetric_state::decrypt_and_hash(std::span<uint8_t> out, std::span<const uint8_t> ciphertext) noexcept {
    if (!_has_key) {
        if (out.size() != ciphertext.size()) {
            return false;
        }
        mix_hash(ciphertext);
        std::memmove(out.data(), ciphertext.data(), ciphertext.size());
        return true;
    }
    if (ciphertext.size() < aead_tag_size || out.size() != ciphertext.size() - aead_tag_size || _n == ~uint64_t{0}) {
        return false;
    }
    // The hash must absorb the ciphertext, which `out` may overwrite in place: hash first into
    // a copy of h, commit only after the tag verified.
    hash32 next_h;
    {
        blake2s_hasher hasher;
        hasher.update(_h).update(ciphertext).final(next_h);
    }
    if (!aead_decrypt(out, ciphertext, _n, _h, _k)) {
        return false;
    }
    ++_n;
    _h = next_h;
    return true;
}

void symmetric_state::split(secret32& initiator_to_responder, secret32& responder_to_initiator) const noexcept {
    secret32* outs[2] = {&initiator_to_responder, &responder_to_initiator};
    kdf(outs, _ck.span(), {});
}

void symmetric_state::wipe() noexcept {
    _ck.wipe();
    sodium_memzero(_h.data(), _h.size());
    _k.wipe();
    _n = 0;
    _has_key = false;
}

void initialize_ikpsk2(symmetric_state& st, std::string_view protocol_name, std::span<const uint8_t> prologue,
                       const public_key& responder_static) noexcept {
    st.initialize(protocol_name);
    st.mix_hash(prologue);
    st.mix_hash(responder_static);
}

bool write_message1(symmetric_state& st, const secret32& ephemeral_private, const public_key& ephemeral_public,
                    const public_key& responder_static, const public_key& initiator_static,
                    const secret32& static_static, std::span<const uint8_t> payload, std::span<uint8_t> out) noexcept {
    if (out.size() != message1_size(payload.size())) {
        return false;
    }
    // -> e (psk modifier: also MixKey(e.pub))
    std::memcpy(out.data(), ephemeral_public.data(), 32);
    st.mix_hash(ephemeral_public);
    st.mix_key(ephemeral_public);
    // es
    if (!st.mix_dh(ephemeral_private, responder_static)) {
        return false;
    }
    // s
    if (!st.encrypt_and_hash(out.subspan(32, 48), initiator_static)) {
        return false;
    }
    // ss
    if (!st.mix_precomputed_dh(static_static)) {
        return false;
    }
    // payload
    return st.encrypt_and_hash(out.subspan(80), payload);
}

bool read_message1_static(symmetric_state& st, const secret32& responder_private, std::span<const uint8_t> msg,
                          public_key& remote_ephemeral, public_key& initiator_static) noexcept {
    if (msg.size() < message1_size(0)) {
        return false;
    }
    std::memcpy(remote_ephemeral.data(), msg.data(), 32);
    st.mix_hash(remote_ephemeral);
    st.mix_key(remote_ephemeral);
    if (!st.mix_dh(responder_private, remote_ephemeral)) {
        return false;
    }
    return st.decrypt_and_hash(initiator_static, msg.subspan(32, 48));
}

bool read_message1_payload(symmetric_state& st, const secret32& static_static, std::span<const uint8_t> msg,
                           std::span<uint8_t> payload_out) noexcept {
    if (msg.size() < message1_size(0) || payload_out.size() != msg.size() - message1_size(0)) {
        return false;
    }
    if (!st.mix_precomputed_dh(static_static)) {
        return false;
    }
    return st.decrypt_and_hash(payload_out, msg.subspan(80));
}

bool write_message2(symmetric_state& st, const secret32& ephemeral_private, const public_key& ephemeral_public,
                    const public_key& remote_ephemeral, const public_key& initiator_static, const secret32& psk,
                    std::span<const uint8_t> payload, std::span<uint8_t> out) noexcept {
    if (out.size() != message2_size(payload.size())) {
        return false;
    }
    // <- e
    std::memcpy(out.data(), ephemeral_public.data(), 32);
    st.mix_hash(ephemeral_public);
    st.mix_key(ephemeral_public);
    // ee, se
    if (!st.mix_dh(ephemeral_private, remote_ephemeral)) {
        return false;
    }
    if (!st.mix_dh(ephemeral_private, initiator_static)) {
        return false;
    }
    // psk
    st.mix_key_and_hash(psk.span());
    return st.encrypt_and_hash(out.subspan(32), payload);
}

bool read_message2(symmetric_state& st, const secret32& ephemeral_private, const secret32& initiator_private,
                   const secret32& psk, std::span<const uint8_t> msg, public_key& remote_ephemeral,
                   std::span<uint8_t> payload_out) noexcept {
    if (msg.size() < message2_size(0) || payload_out.size() != msg.size() - message2_size(0)) {
        return false;
    }
    std::memcpy(remote_ephemeral.data(), msg.data(), 32);
    st.mix_hash(remote_ephemeral);
    st.mix_key(remote_ephemeral);
    if (!st.mix_dh(ephemeral_private, remote_ephemeral)) {
        return false;
    }
    if (!st.mix_dh(initiator_private, remote_ephemeral)) {
        return false;
    }
    st.mix_key_and_hash(psk.span());
    return st.decrypt_and_hash(payload_out, msg.subspan(32));
}

}  // namespace meshfwd::crypto::noise
