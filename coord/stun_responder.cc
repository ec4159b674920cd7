// STUN binding responder (see stun_responder.h). io_context thread only.
#include "coord/stun_responder.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <span>

#include "coord/http_server.h"

namespace meshfwd::coord {

namespace asio = boost::asio;
using udp = asio::ip::udp;

stun_responder::stun_responder(asio::io_context& io) : _io(io), _socket(io) {}

result<void> stun_responder::start(const std::string& listen) {
    auto parsed = parse_listen_address(listen); // same ADDR:PORT form as --listen
    if (!parsed) return error{parsed.error_message()};
    const udp::endpoint local(parsed->address(), parsed->port());
    boost::system::error_code ec;
    _socket.open(local.protocol(), ec);
    if (!ec) _socket.bind(local, ec);
    if (ec) return error{"cannot bind UDP " + listen + ": " + ec.message()};
    _port = _socket.local_endpoint().port();
    asio::co_spawn(_io, serve(), asio::detached);
    return {};
}

asio::awaitable<void> stun_responder::serve() {
    std::array<uint8_t, 1500> in{};
    std::array<uint8_t, stun::max_binding_success_size> out{};
    udp::endpoint from;
    stun::message request;
    for (;;) {
        boost::system::error_code ec;
        const std::size_t n =
            co_await _socket.async_receive_from(asio::buffer(in), from, asio::redirect_error(asio::use_awaitable, ec));
        if (ec == asio::error::operation_aborted) co_return;
        if (ec) continue; // ICMP errors surface here on Linux; the next datagram is unaffected
        const auto result = stun::parse(std::span<const uint8_t>(in.data(), n), request);
        if (result != stun::parse_result::ok) {
            ++_malformed[static_cast<std::size_t>(result)];
            continue;
        }
        if (request.type != stun::binding_request) {
            ++_not_binding_request;
            continue;
        }
        const auto source = from.address();
        ip_address mapped;
        if (source.is_v4()) {
            mapped = ip_address::v4(source.to_v4().to_uint());
        } else {
            auto bytes = source.to_v6().to_bytes();
            std::array<uint8_t, 16> raw{};
            std::copy(bytes.begin(), bytes.end(), raw.begin());
            mapped = ip_address::v6(raw).unmapped();
        }
        const std::size_t length = stun::build_binding_success(out, request.transaction_id, endpoint(mapped, from.port()));
        if (length == 0) continue;
        co_await _socket.async_send_to(asio::buffer(out.data(), length), from, asio::redirect_error(asio::use_awaitable, ec));
        if (!ec) ++_answered;
    }
}

} // namespace meshfwd::coord
