// mac1/mac2 and cookie replies (see cookie.h for the formulas and the threading).
#include "crypto/cookie.h"

#include "crypto/aead.h"

#include <sodium.h>

#include <cstring>

namespace meshfwd::crypto {

namespace {

// MAC(key, data) = keyed BLAKE2s with 16 bytes of output.
void mac16_of(std::span<uint8_t, spec::mac_size> out, std::span<const uint8_t> key,
              std::span<const uint8_t> data) noexcept {
    blake2s(out, data, key);
}

// mac1 covers everything before it; mac2 everything before it (message = whole message).
void compute_mac1(std::span<uint8_t, spec::mac_size> out, std::span<const uint8_t> message,
                  const hash32& key) noexcept {
    mac16_of(out, key, message.first(message.size() - macs_size));
}
void compute_mac2(std::span<uint8_t, spec::mac_size> out, std::span<const uint8_t> message,
                  std::span<const uint8_t> cookie) noexcept {
    mac16_of(out, cookie, message.first(message.size() - spec::mac_size));
}

bool equal16(const uint8_t* a, const uint8_t* b) noexcept { return sodium_memcmp(a, b, spec::mac_size) == 0; }

}  // namespace

cookie_source cookie_source::from(std::span<const uint8_t> ip, uint16_t port) noexcept {
    cookie_source s;
    std::size_t n = 0;
    if (ip.size() == 4 || ip.size() == 16) {
        std::memcpy(s.bytes.data(), ip.data(), ip.size());
        n = ip.size();
    }
    s.bytes[n] = static_cast<uint8_t>(port >> 8);  // network byte order, as the kernel hashes it
    s.bytes[n + 1] = static_cast<uint8_t>(port);
    s.size = static_cast<uint8_t>(n + 2);
    return s;
}

// ---------------------------------------------------------------------------------------------
// Responder.

cookie_checker::cookie_checker(const static_identity& local, mono_time now) noexcept {
    set_identity(local);
    randombytes_buf(_secret.data(), _secret.size());
    _secret_birth = now;
}

void cookie_checker::set_identity(const static_identity& local) noexcept {
    _mac1_key = local.mac1_key;
    _cookie_key = local.cookie_key;
}

void cookie_checker::rotate_if_old(mono_time now) noexcept {
    // Kernel: wg_birthdate_has_expired(secret_birthdate, COOKIE_SECRET_MAX_AGE) → new secret.
    if (now >= _secret_birth + spec::cookie_secret_max_age) {
        randombytes_buf(_secret.data(), _secret.size());
        _secret_birth = now;
    }
}

void cookie_checker::make_cookie(std::span<uint8_t, spec::cookie_size> out, const cookie_source& source,
                                 mono_time now) noexcept {
    rotate_if_old(now);
    mac16_of(out, _secret.span(), source.span());
}

cookie_reason cookie_checker::check_mac1(std::span<const uint8_t> message) const noexcept {
    if (message.size() < macs_size) {
        return cookie_reason::truncated;
    }
    std::array<uint8_t, spec::mac_size> computed{};
    compute_mac1(computed, message, _mac1_key);
    const uint8_t* mac1 = message.data() + message.size() - macs_size;
    return equal16(computed.data(), mac1) ? cookie_reason::ok : cookie_reason::bad_mac1;
}

cookie_reason cookie_checker::check_macs(std::span<const uint8_t> message, const cookie_source& source,
                                         mono_time now) noexcept {
    if (const auto r = check_mac1(message); r != cookie_reason::ok) {
        return r;
    }
    std::array<uint8_t, spec::cookie_size> cookie{};
    wipe_on_exit wipe_cookie(cookie);
    make_cookie(cookie, source, now);
    std::array<uint8_t, spec::mac_size> computed{};
    compute_mac2(computed, message, cookie);
    const uint8_t* mac2 = message.data() + message.size() - spec::mac_size;
    return equal16(computed.data(), mac2) ? cookie_reason::ok : cookie_reason::no_cookie;
}

bool cookie_checker::create_cookie_reply(message_cookie_reply& out, std::span<const uint8_t> message,
                                         uint32_t receiver_index, const cookie_source& source,
                                         mono_time now) noexcept {
    if (message.size() < macs_size) {
        return false;
    }
    out = message_cookie_reply{};
    out.type.set(spec::message_cookie_reply_type);
    out.receiver_index.set(receiver_index);
    randombytes_buf(out.nonce.data(), out.nonce.size());
    std::array<uint8_t, spec::cookie_size> cookie{};
    wipe_on_exit wipe_cookie(cookie);
    make_cookie(cookie, source, now);
    const auto mac1 = message.subspan(message.size() - macs_size, spec::mac_size);
    xaead_encrypt(out.encrypted_cookie, cookie, out.nonce, mac1, _cookie_key);
    return true;
}

// ---------------------------------------------------------------------------------------------
// Initiator.

cookie_maker::cookie_maker(const peer_config& peer) noexcept { set_peer(peer); }

cookie_maker::~cookie_maker() { sodium_memzero(_cookie.data(), _cookie.size()); }

void cookie_maker::set_peer(const peer_config& peer) noexcept {
    _mac1_key = peer.mac1_key;
    _cookie_key = peer.cookie_key;
    sodium_memzero(_cookie.data(), _cookie.size());
    _cookie_valid = false;
    _have_sent_mac1 = false;
}

bool cookie_maker::has_fresh_cookie(mono_time now) const noexcept {
    return _cookie_valid && now < _cookie_birth + (spec::cookie_secret_max_age - spec::cookie_secret_latency);
}

void cookie_maker::add_macs(std::span<uint8_t> message, mono_time now) noexcept {
    if (message.size() < macs_size) {
        return;
    }
    uint8_t* mac1 = message.data() + message.size() - macs_size;
    uint8_t* mac2 = mac1 + spec::mac_size;
    compute_mac1(std::span<uint8_t, spec::mac_size>(mac1, spec::mac_size), message, _mac1_key);
    std::memcpy(_last_mac1_sent.data(), mac1, spec::mac_size);
    _have_sent_mac1 = true;
    if (has_fresh_cookie(now)) {
        compute_mac2(std::span<uint8_t, spec::mac_size>(mac2, spec::mac_size), message, _cookie);
    } else {
        std::memset(mac2, 0, spec::mac_size);
    }
}

cookie_reason cookie_maker::consume_cookie_reply(const message_cookie_reply& reply, mono_time now) noexcept {
    if (!_have_sent_mac1) {
        return cookie_reason::unexpected_reply;
    }
    std::array<uint8_t, spec::cookie_size> cookie{};
    wipe_on_exit wipe_cookie(cookie);
    if (reply.type.get() != spec::message_cookie_reply_type ||
        !xaead_decrypt(cookie, reply.encrypted_cookie, reply.nonce, _last_mac1_sent, _cookie_key)) {
        return cookie_reason::bad_reply;
    }
    _cookie = cookie;
    _cookie_birth = now;
    _cookie_valid = true;
    _have_sent_mac1 = false;
    return cookie_reason::ok;
}

}  // namespace meshfwd::crypto
