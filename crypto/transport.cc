// Single-message transport encapsulation/decapsulation (see transport.h). Any worker thread.
#include "crypto/transport.h"

#include "crypto/aead.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace meshfwd::crypto {

namespace {

constexpr std::size_t header_size = sizeof(message_transport_header);

// The kernel's calculate_skb_padding: pad to 16, but not past the MTU (and a packet larger
// than the MTU is padded as its remainder modulo the MTU would be).
std::size_t padded_len(std::size_t plain_len, std::size_t mtu) noexcept {
    if (mtu == 0) {
        return transport_padded_len(plain_len);
    }
    const std::size_t last_unit = plain_len > mtu ? plain_len % mtu : plain_len;
    const std::size_t padded_unit = std::min(mtu, transport_padded_len(last_unit));
    return plain_len + (padded_unit - last_unit);
}

}  // namespace

std::size_t transport_message_size(std::size_t plain_len, std::size_t mtu) noexcept {
    return header_size + padded_len(plain_len, mtu) + spec::tag_size;
}

transport_result encapsulate_with_counter(const keypair& kp, uint64_t counter, std::span<const uint8_t> plaintext,
                                          std::span<uint8_t> out, std::size_t mtu) noexcept {
    if (plaintext.size() > limits::max_transport_payload) {
        return {transport_reason::oversized, 0, counter};
    }
    if (counter >= spec::reject_after_messages) {
        return {transport_reason::counter_exhausted, 0, counter};
    }
    const std::size_t padded = padded_len(plaintext.size(), mtu);
    const std::size_t total = header_size + padded + spec::tag_size;
    if (out.size() < total) {
        return {transport_reason::buffer_too_small, 0, counter};
    }
    uint8_t* body = out.data() + header_size;
    if (plaintext.data() != body && !plaintext.empty()) {
        std::memmove(body, plaintext.data(), plaintext.size());
    }
    std::memset(body + plaintext.size(), 0, padded - plaintext.size());

    store_le32(out.data(), spec::message_transport_type);
    store_le32(out.data() + 4, kp.remote_index);
    store_le64(out.data() + 8, counter);
    aead_encrypt(out.subspan(header_size, padded + spec::tag_size), std::span<const uint8_t>(body, padded), counter,
                 {}, kp.send_key);
    return {transport_reason::ok, total, counter};
}

transport_result encapsulate(keypair& kp, std::span<const uint8_t> plaintext, std::span<uint8_t> out, mono_time now,
                             std::size_t mtu) noexcept {
    if (kp.expired(now)) {
        return {transport_reason::expired, 0, 0};
    }
    if (plaintext.size() > limits::max_transport_payload) {
        return {transport_reason::oversized, 0, 0};
    }
    if (out.size() < transport_message_size(plaintext.size(), mtu)) {
        return {transport_reason::buffer_too_small, 0, 0};
    }
    const counter_range r = kp.reserve(1);
    if (r.count == 0) {
        return {transport_reason::counter_exhausted, 0, r.first};
    }
    return encapsulate_with_counter(kp, r.first, plaintext, out, mtu);
}

transport_result decapsulate(keypair& kp, std::span<const uint8_t> message, std::span<uint8_t> out,
                             mono_time now) noexcept {
    message_transport_header header;
    switch (parse_transport_header(message, header)) {
    case message_reason::ok:
        break;
    case message_reason::wrong_type:
        return {transport_reason::wrong_type, 0, 0};
    case message_reason::oversized:
        return {transport_reason::oversized, 0, 0};
    default:
        return {transport_reason::truncated, 0, 0};
    }
    const uint64_t counter = header.counter.get();
    if (header.receiver_index.get() != kp.local_index) {
        return {transport_reason::wrong_index, 0, counter};
    }
    if (kp.expired(now)) {
        return {transport_reason::expired, 0, counter};
    }
    if (counter >= spec::reject_after_messages) {
        return {transport_reason::counter_limit, 0, counter};
    }
    const std::size_t plain_len = message.size() - message_transport_min_size;
    if (out.size() < plain_len) {
        return {transport_reason::buffer_too_small, 0, counter};
    }
    // Authenticate first: an unauthenticated counter must never move the replay window.
    if (!aead_decrypt(out.first(plain_len), message.subspan(header_size), counter, {}, kp.recv_key)) {
        return {transport_reason::auth_failed, 0, counter};
    }
    switch (kp.replay.check_and_set(counter)) {
    case replay_reason::ok:
        return {transport_reason::ok, plain_len, counter};
    case replay_reason::duplicate:
        return {transport_reason::replay_duplicate, 0, counter};
    case replay_reason::limit:
        return {transport_reason::counter_limit, 0, counter};
    case replay_reason::too_old:
        break;
    }
    return {transport_reason::replay_too_old, 0, counter};
}

}  // namespace meshfwd::crypto
