// Message classification and parsing (see messages.h). Any thread; no state.
#include "crypto/messages.h"

#include <array>

namespace meshfwd::crypto {

namespace {

template <typename Message>
message_reason parse_fixed(std::span<const uint8_t> datagram, uint32_t type, Message& out) noexcept {
    if (datagram.size() < 4) {
        return datagram.empty() ? message_reason::empty : message_reason::truncated;
    }
    if (load_le32(datagram.data()) != type) {
        return message_reason::wrong_type;
    }
    if (datagram.size() < sizeof(Message)) {
        return message_reason::truncated;
    }
    if (datagram.size() > sizeof(Message)) {
        return message_reason::oversized;
    }
    std::memcpy(&out, datagram.data(), sizeof(Message));
    return message_reason::ok;
}

}  // namespace

classified classify_message(std::span<const uint8_t> datagram) noexcept {
    if (datagram.empty()) {
        return {message_kind::invalid, message_reason::empty};
    }
    if (datagram.size() < 4) {
        return {message_kind::invalid, message_reason::truncated};
    }
    std::size_t want = 0;
    message_kind kind = message_kind::invalid;
    switch (load_le32(datagram.data())) {
    case spec::message_initiation_type:
        kind = message_kind::initiation;
        want = sizeof(message_initiation);
        break;
    case spec::message_response_type:
        kind = message_kind::response;
        want = sizeof(message_response);
        break;
    case spec::message_cookie_reply_type:
        kind = message_kind::cookie_reply;
        want = sizeof(message_cookie_reply);
        break;
    case spec::message_transport_type:
        if (datagram.size() < message_transport_min_size) {
            return {message_kind::transport, message_reason::truncated};
        }
        return {message_kind::transport, message_reason::ok};
    default:
        return {message_kind::invalid, message_reason::unknown_type};
    }
    if (datagram.size() < want) {
        return {kind, message_reason::truncated};
    }
    if (datagram.size() > want) {
        return {kind, message_reason::oversized};
    }
    return {kind, message_reason::ok};
}

message_reason parse_initiation(std::span<const uint8_t> datagram, message_initiation& out) noexcept {
    return parse_fixed(datagram, spec::message_initiation_type, out);
}

message_reason parse_response(std::span<const uint8_t> datagram, message_response& out) noexcept {
    return parse_fixed(datagram, spec::message_response_type, out);
}

message_reason parse_cookie_reply(std::span<const uint8_t> datagram, message_cookie_reply& out) noexcept {
    return parse_fixed(datagram, spec::message_cookie_reply_type, out);
}

message_reason parse_transport_header(std::span<const uint8_t> datagram, message_transport_header& out) noexcept {
    if (datagram.size() < 4) {
        return datagram.empty() ? message_reason::empty : message_reason::truncated;
    }
    if (load_le32(datagram.data()) != spec::message_transport_type) {
        return message_reason::wrong_type;
    }
    if (datagram.size() < message_transport_min_size) {
        return message_reason::truncated;
    }
    if (datagram.size() > message_transport_min_size + limits::max_transport_payload) {
        return message_reason::oversized;
    }
    std::memcpy(&out, datagram.data(), sizeof(out));
    return message_reason::ok;
}

}  // namespace meshfwd::crypto
