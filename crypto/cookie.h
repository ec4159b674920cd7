// WireGuard's DoS protection: mac1/mac2 on handshake messages and the cookie reply (type 3).
//
//   mac1 = MAC(HASH("mac1----" || receiver's static public), msg[0 .. size-32])      always
//   mac2 = MAC(cookie, msg[0 .. size-16])                       when holding a fresh cookie
//   cookie = MAC(R, source IP bytes || source UDP port)         R: random, rotated every 120 s
//   cookie reply = {3, receiver = the message's sender_index, nonce[24] random,
//                   XAEAD(HASH("cookie--" || responder's static public), nonce, cookie, AD = mac1)}
// (MAC = keyed BLAKE2s-128.) The port is hashed in network byte order, as the kernel hashes
// udp_hdr->source; the cookie is opaque to the initiator, so only the responder's own encoding
// matters for interoperability.
//
// cookie_checker: the responder side, one per interface, owned by the control thread.
// check_mac1() is const and only reads keys fixed at construction, so a worker may call it to
// drop garbage before queueing a handshake to the control thread. check_mac2() and
// create_cookie_reply() may rotate the secret: control thread only. Deciding "under load" is the
// caller's job (kernel: handshake queue fill level).
//
// cookie_maker: the initiator side, one per peer, owned by the control thread.
#pragma once

#include "lib/reasons.h"

#include "crypto/blake2s.h"
#include "crypto/messages.h"
#include "crypto/noise.h"
#include "crypto/secret.h"

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

namespace meshfwd::crypto {

#define MESHFWD_COOKIE_REASONS(X)                                                        \
    X(ok, "ok")                                                                          \
    X(bad_mac1, "mac1 does not match (not for us, or corrupted)")                        \
    X(no_cookie, "mac1 valid, mac2 missing or not from a current cookie")                \
    X(truncated, "message shorter than its macs")                                        \
    X(unexpected_reply, "cookie reply without an outstanding mac1 (or already consumed)") \
    X(bad_reply, "cookie reply did not decrypt with our last mac1")

MESHFWD_DEFINE_REASONS(cookie_reason, MESHFWD_COOKIE_REASONS)

// The source of a datagram as the cookie hashes it: 4 or 16 address bytes, then the port in
// network byte order.
struct cookie_source {
    std::array<uint8_t, 18> bytes{};
    uint8_t size = 0;

    // ip: 4 (IPv4) or 16 (IPv6) bytes in network order; port in host order. Other sizes give
    // an empty source (still hashed consistently).
    [[nodiscard]] static cookie_source from(std::span<const uint8_t> ip, uint16_t port) noexcept;
    [[nodiscard]] std::span<const uint8_t> span() const noexcept { return {bytes.data(), size}; }
};

class cookie_checker {
public:
    // Keys come from our identity; `now` starts the first secret's lifetime.
    cookie_checker(const static_identity& local, mono_time now) noexcept;
    ~cookie_checker() { _secret.wipe(); }
    cookie_checker(const cookie_checker&) = delete;
    cookie_checker& operator=(const cookie_checker&) = delete;

    // Re-derive keys after the identity changed.
    void set_identity(const static_identity& local) noexcept;

    // `message` is a whole handshake message (initiation or response, macs included).
    // Any thread (const, keys immutable after construction / set_identity).
    [[nodiscard]] cookie_reason check_mac1(std::span<const uint8_t> message) const noexcept;
    // mac1 and mac2 (ok, bad_mac1, no_cookie). Control thread.
    [[nodiscard]] cookie_reason check_macs(std::span<const uint8_t> message, const cookie_source& source,
                                           mono_time now) noexcept;
    // Fills a cookie reply to `message` (whose mac1 the caller checked) addressed to
    // `receiver_index` (the message's sender_index). Control thread.
    [[nodiscard]] bool create_cookie_reply(message_cookie_reply& out, std::span<const uint8_t> message,
                                           uint32_t receiver_index, const cookie_source& source,
                                           mono_time now) noexcept;

    // Test hooks.
    [[nodiscard]] mono_time secret_birth() const noexcept { return _secret_birth; }

private:
    void rotate_if_old(mono_time now) noexcept;
    void make_cookie(std::span<uint8_t, spec::cookie_size> out, const cookie_source& source, mono_time now) noexcept;

    hash32 _mac1_key{};
    hash32 _cookie_key{};
    secret32 _secret;
    mono_time _secret_birth{};
};

class cookie_maker {
public:
    explicit cookie_maker(const peer_config& peer) noexcept;
    ~cookie_maker();
    cookie_maker(const cookie_maker&) = delete;
    cookie_maker& operator=(const cookie_maker&) = delete;

    void set_peer(const peer_config& peer) noexcept;

    // Writes mac1 (always) and mac2 (a fresh cookie: younger than 120 - 5 s, else zeros) into the
    // last 32 bytes of `message`, and remembers mac1 for a cookie reply. message.size() >= 32.
    void add_macs(std::span<uint8_t> message, mono_time now) noexcept;
    template <typename Message>
    void add_macs(Message& m, mono_time now) noexcept {
        add_macs(std::span<uint8_t>(as_writable_bytes(m)), now);
    }

    // Consumes a cookie reply the caller routed to this peer by reply.receiver_index. Accepts
    // one reply per mac1 sent (the kernel's have_sent_mac1).
    [[nodiscard]] cookie_reason consume_cookie_reply(const message_cookie_reply& reply, mono_time now) noexcept;

    [[nodiscard]] bool has_fresh_cookie(mono_time now) const noexcept;

private:
    hash32 _mac1_key{};
    hash32 _cookie_key{};
    std::array<uint8_t, spec::cookie_size> _cookie{};
    mono_time _cookie_birth{};
    bool _cookie_valid = false;
    std::array<uint8_t, spec::mac_size> _last_mac1_sent{};
    bool _have_sent_mac1 = false;
};

}  // namespace meshfwd::crypto
