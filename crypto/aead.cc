// Single-message AEADs over libsodium. Any thread.
#include "crypto/aead.h"

#include <sodium.h>

#include <cstring>

namespace meshfwd::crypto {

void wg_nonce(std::span<uint8_t, 12> out, uint64_t counter) noexcept {
    std::memset(out.data(), 0, 4);
    for (int i = 0; i < 8; ++i) {
        out[4 + i] = static_cast<uint8_t>(counter >> (8 * i));
    }
}

void aead_encrypt_nonce(std::span<uint8_t> dst, std::span<const uint8_t> src, std::span<const uint8_t, 12> nonce,
                        std::span<const uint8_t> ad, std::span<const uint8_t, 32> key) noexcept {
    unsigned long long out_len = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(dst.data(), &out_len, src.data(), src.size(), ad.data(), ad.size(),
                                              nullptr, nonce.data(), key.data());
}

bool aead_decrypt_nonce(std::span<uint8_t> dst, std::span<const uint8_t> src, std::span<const uint8_t, 12> nonce,
                        std::span<const uint8_t> ad, std::span<const uint8_t, 32> key) noexcept {
    if (src.size() < aead_tag_size || dst.size() < src.size() - aead_tag_size) {
        return false;
    }
    unsigned long long out_len = 0;
    if (crypto_aead_chacha20poly1305_ietf_decrypt(dst.data(), &out_len, nullptr, src.data(), src.size(), ad.data(),
                                                  ad.size(), nonce.data(), key.data()) != 0) {
        sodium_memzero(dst.data(), src.size() - aead_tag_size);
        return false;
    }
    return true;
}

void aead_encrypt(std::span<uint8_t> dst, std::span<const uint8_t> src, uint64_t counter,
                  std::span<const uint8_t> ad, const secret32& key) noexcept {
    uint8_t nonce[12];
    wg_nonce(nonce, counter);
    aead_encrypt_nonce(dst, src, nonce, ad, key.span());
}

bool aead_decrypt(std::span<uint8_t> dst, std::span<const uint8_t> src, uint64_t counter,
                  std::span<const uint8_t> ad, const secret32& key) noexcept {
    uint8_t nonce[12];
    wg_nonce(nonce, counter);
    return aead_decrypt_nonce(dst, src, nonce, ad, key.span());
}

void xaead_encrypt(std::span<uint8_t> dst, std::span<const uint8_t> src, std::span<const uint8_t, 24> nonce,
                   std::span<const uint8_t> ad, std::span<const uint8_t, 32> key) noexcept {
    unsigned long long out_len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(dst.data(), &out_len, src.data(), src.size(), ad.data(), ad.size(),
                                               nullptr, nonce.data(), key.data());
}

bool xaead_decrypt(std::span<uint8_t> dst, std::span<const uint8_t> src, std::span<const uint8_t, 24> nonce,
                   std::span<const uint8_t> ad, std::span<const uint8_t, 32> key) noexcept {
    if (src.size() < aead_tag_size || dst.size() < src.size() - aead_tag_size) {
        return false;
    }
    unsigned long long out_len = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(dst.data(), &out_len, nullptr, src.data(), src.size(), ad.data(),
                                                   ad.size(), nonce.data(), key.data()) != 0) {
        sodium_memzero(dst.data(), src.size() - aead_tag_size);
        return false;
    }
    return true;
}

} // namespace meshfwd::crypto
