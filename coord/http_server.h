// meshcoord's HTTP/1.1 and WebSocket transport (Boost.Beast on Asio, TLS by OpenSSL): accepts
// connections, reads requests with a deadline and size limits, hands them to coord::api and
// writes the answers; upgrades GET .../events to a WebSocket subscribed to the event hub.
//
// Limits (documented in coord/README.md): a whole request (headers and body) must arrive within
// request_timeout (slow clients are closed); headers over 8 KiB get 431, bodies over
// max_request_body 413; at most max_connections at once (more are closed on accept); a WebSocket
// must send its subscribe message within request_timeout, and one whose queue of unsent events
// grows past max_queued_events is closed (it reconnects with the version it saw).
//
// Threads: the io_context's thread only.
#pragma once

#include <utility> // before Boost 1.74's asio/awaitable.hpp, which uses std::exchange without it
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "coord/api.h"
#include "coord/event_hub.h"
#include "lib/result.h"

namespace meshfwd::coord {

struct http_server_options {
    std::string listen = "127.0.0.1:7080";  // ADDR:PORT; [v6]:PORT
    std::string tls_cert_file;               // both set: HTTPS and WSS only
    std::string tls_key_file;
    std::chrono::seconds request_timeout{10};
    std::size_t max_connections = 20000;
    std::size_t max_queued_events = 4096;
};

class http_server {
public:
    http_server(boost::asio::io_context& io, api& handler, event_hub& hub, http_server_options options);
    ~http_server();

    // Binds and starts accepting. Errors name the address and the reason.
    result<void> start();
    uint16_t port() const noexcept { return _port; }
    std::size_t connections() const noexcept { return _connections; }

private:
    boost::asio::awaitable<void> accept_loop();
    template <class Stream>
    boost::asio::awaitable<void> serve(Stream stream, std::string remote);

    boost::asio::io_context& _io;
    api& _api;
    event_hub& _hub;
    http_server_options _options;
    std::optional<boost::asio::ssl::context> _tls;
    boost::asio::ip::tcp::acceptor _acceptor;
    uint16_t _port = 0;
    std::size_t _connections = 0;
};

// "ADDR:PORT" or "[ADDR6]:PORT" with a literal address.
result<boost::asio::ip::tcp::endpoint> parse_listen_address(const std::string& text);

} // namespace meshfwd::coord
