// meshcoord's STUN binding responder (RFC 8489, Binding requests only): answers each Binding
// Request with the source address it came from (XOR-MAPPED-ADDRESS), so one server gives nodes
// discovery and their public address. Anything else is counted and dropped, never answered.
//
// Threads: the io_context's thread only.
#pragma once

#include <utility> // before Boost 1.74's asio/awaitable.hpp, which uses std::exchange without it
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

#include <array>
#include <cstdint>
#include <string>

#include "lib/result.h"
#include "lib/stun.h"

namespace meshfwd::coord {

class stun_responder {
public:
    explicit stun_responder(boost::asio::io_context& io);

    result<void> start(const std::string& listen); // ADDR:PORT
    uint16_t port() const noexcept { return _port; }

    uint64_t answered() const noexcept { return _answered; }
    uint64_t not_binding_request() const noexcept { return _not_binding_request; }
    uint64_t malformed(stun::parse_result reason) const noexcept {
        return _malformed[static_cast<std::size_t>(reason)];
    }

private:
    boost::asio::awaitable<void> serve();

    boost::asio::io_context& _io;
    boost::asio::ip::udp::socket _socket;
    uint16_t _port = 0;
    uint64_t _answered = 0;
    uint64_t _not_binding_request = 0;
    std::array<uint64_t, stun::n_parse_results> _malformed{};
};

} // namespace meshfwd::coord
