// BLAKE2s, HMAC-BLAKE2s and the WireGuard KDF. Any thread.
#include "crypto/blake2s.h"

#include <sodium.h>

#include <cstring>

namespace meshfwd::crypto {

blake2s_hasher::blake2s_hasher(std::size_t out_len, std::span<const uint8_t> key) noexcept : _out_len(out_len) {
    if (key.empty()) {
        blake2s_init(&_state, out_len);
    } else {
        blake2s_init_key(&_state, out_len, key.data(), key.size());
    }
}

blake2s_hasher::~blake2s_hasher() { sodium_memzero(&_state, sizeof _state); }

blake2s_hasher& blake2s_hasher::update(std::span<const uint8_t> data) noexcept {
    if (!data.empty()) {
        blake2s_update(&_state, data.data(), data.size());
    }
    return *this;
}

void blake2s_hasher::final(std::span<uint8_t> out) noexcept { blake2s_final(&_state, out.data(), _out_len); }

void blake2s(std::span<uint8_t> out, std::span<const uint8_t> in, std::span<const uint8_t> key) noexcept {
    blake2s_hasher hasher(out.size(), key);
    hasher.update(in);
    hasher.final(out);
}

void hmac_blake2s(std::span<uint8_t, 32> out, std::span<const uint8_t> key, std::span<const uint8_t> in) noexcept {
    uint8_t block[blake2s_block_size] = {};
    if (key.size() > blake2s_block_size) {
        blake2s(std::span<uint8_t>(block, blake2s_hash_size), key);
    } else if (!key.empty()) {
        std::memcpy(block, key.data(), key.size());
    }
    uint8_t pad[blake2s_block_size];
    for (std::size_t i = 0; i < sizeof pad; ++i) {
        pad[i] = block[i] ^ 0x36;
    }
    uint8_t inner[blake2s_hash_size];
    blake2s_hasher(blake2s_hash_size).update(pad).update(in).final(inner);
    for (std::size_t i = 0; i < sizeof pad; ++i) {
        pad[i] = block[i] ^ 0x5c;
    }
    blake2s_hasher(blake2s_hash_size).update(pad).update(inner).final(out);
    sodium_memzero(block, sizeof block);
    sodium_memzero(pad, sizeof pad);
    sodium_memzero(inner, sizeof inner);
}

void kdf(std::span<secret32* const> outs, std::span<const uint8_t> key, std::span<const uint8_t> input) noexcept {
    secret32 t0;
    hmac_blake2s(t0.span(), key, input);
    uint8_t buf[blake2s_hash_size + 1];
    std::size_t prev_len = 0;
    for (std::size_t i = 0; i < outs.size() && i < 3; ++i) {
        buf[prev_len] = static_cast<uint8_t>(i + 1);
        uint8_t t[blake2s_hash_size];
        hmac_blake2s(t, t0.span(), std::span<const uint8_t>(buf, prev_len + 1));
        std::memcpy(outs[i]->data(), t, sizeof t);
        std::memcpy(buf, t, sizeof t);
        prev_len = sizeof t;
        sodium_memzero(t, sizeof t);
    }
    sodium_memzero(buf, sizeof buf);
}

} // namespace meshfwd::crypto
