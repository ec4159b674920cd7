// X25519 and key encoding. Any thread.
#include "crypto/x25519.h"

#include <sodium.h>

namespace meshfwd::crypto {

bool crypto_init() noexcept { return sodium_init() >= 0; }

void clamp_private_key(secret32& key) noexcept {
    key.data()[0] &= 248;
    key.data()[31] = static_cast<uint8_t>((key.data()[31] & 127) | 64);
}

secret32 generate_private_key() noexcept {
    secret32 key;
    randombytes_buf(key.data(), key.size());
    clamp_private_key(key);
    return key;
}

public_key derive_public_key(const secret32& private_key) noexcept {
    public_key pub{};
    crypto_scalarmult_base(pub.data(), private_key.data());
    return pub;
}

bool x25519(secret32& out, const secret32& scalar, const public_key& point) noexcept {
    // libsodium returns -1 when the shared point is all zeros.
    return crypto_scalarmult(out.data(), scalar.data(), point.data()) == 0;
}

std::string key_to_base64(std::span<const uint8_t, 32> key) {
    char text[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(text, sizeof text, key.data(), key.size(), sodium_base64_VARIANT_ORIGINAL);
    return std::string(text);
}

std::optional<std::array<uint8_t, 32>> key_from_base64(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\n' || text.front() == '\r')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\n' || text.back() == '\r')) {
        text.remove_suffix(1);
    }
    if (text.size() != 44 || text[43] != '=') {
        return std::nullopt;
    }
    // libsodium 1.0.18's decoder takes any byte >= 0x80 as a base64 digit: check the alphabet here.
    for (std::size_t i = 0; i < 43; ++i) {
        const char c = text[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/')) {
            return std::nullopt;
        }
    }
    std::array<uint8_t, 32> key{};
    size_t len = 0;
    const char* end = nullptr;
    if (sodium_base642bin(key.data(), key.size(), text.data(), text.size(), nullptr, &len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        len != 32 || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return key;
}

} // namespace meshfwd::crypto
