// meshcoord's HTTP and WebSocket transport (see http_server.h). io_context thread only.
#include "coord/http_server.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <spdlog/spdlog.h>

#include <charconv>
#include <deque>

#include "coord/protocol.h"

namespace meshfwd::coord {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

result<tcp::endpoint> parse_listen_address(const std::string& text) {
    std::string host;
    std::string port;
    if (text.starts_with('[')) {
        const auto close = text.find(']');
        if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return error{"'" + text + "': expected [IPv6]:PORT"};
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string::npos) return error{"'" + text + "': expected ADDR:PORT"};
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(host, ec);
    if (ec) return error{"'" + text + "': '" + host + "' is not an IP address"};
    unsigned value = 0;
    auto [end, perr] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (perr != std::errc{} || end != port.data() + port.size() || value > 65535)
        return error{"'" + text + "': '" + port + "' is not a port number"};
    return tcp::endpoint(address, static_cast<uint16_t>(value));
}

namespace {

std::string_view view(beast::string_view text) { return {text.data(), text.size()}; }

template <class Stream>
tcp::socket& socket_of(Stream& stream) {
    return beast::get_lowest_layer(stream).socket();
}

http::response<http::string_body> make_response(const http::request<http::string_body>& request,
                                                 const api_response& answer) {
    http::response<http::string_body> response{static_cast<http::status>(answer.status), request.version()};
    response.set(http::field::server, "meshcoord/" MESHFWD_VERSION);
    response.set(http::field::content_type, "application/json");
    response.keep_alive(request.keep_alive());
    response.body() = answer.body;
    response.prepare_payload();
    return response;
}

// One WebSocket subscriber: a queue of shared event texts drained by a writer coroutine.
template <class Stream>
class ws_subscriber final : public event_subscriber {
public:
    ws_subscriber(websocket::stream<Stream>& ws, asio::io_context& io, std::size_t max_queue)
        : _ws(ws), _signal(io), _max_queue(max_queue) {
        _signal.expires_at(asio::steady_timer::time_point::max());
    }

    void deliver(const shared_text& message) override {
        if (_closed) return;
        if (_queue.size() >= _max_queue) {
            close("too slow: more than " + std::to_string(_max_queue) + " events queued");
            return;
        }
        _queue.push_back(message);
        _signal.cancel_one();
    }

    void close(std::string_view reason) override {
        if (_closed) return;
        _closed = true;
        _reason = std::string(reason);
        _signal.cancel();
    }

    bool closed() const noexcept { return _closed; }

    asio::awaitable<void> write_loop() {
        boost::system::error_code ec;
        while (!_closed) {
            if (_queue.empty()) {
                co_await _signal.async_wait(asio::redirect_error(asio::use_awaitable, ec));
                continue;
            }
            shared_text next = std::move(_queue.front());
            _queue.pop_front();
            _ws.text(true);
            co_await _ws.async_write(asio::buffer(*next), asio::redirect_error(asio::use_awaitable, ec));
            if (ec) {
                _closed = true;
                break;
            }
        }
        if (!_reason.empty()) {
            websocket::close_reason why(websocket::close_code::policy_error, _reason.substr(0, 120));
            co_await _ws.async_close(why, asio::redirect_error(asio::use_awaitable, ec));
        }
        _writer_done = true;
        _signal.cancel();
    }

    asio::awaitable<void> wait_writer() {
        boost::system::error_code ec;
        while (!_writer_done) co_await _signal.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }

private:
    websocket::stream<Stream>& _ws;
    asio::steady_timer _signal;
    std::size_t _max_queue;
    std::deque<shared_text> _queue;
    bool _closed = false;
    bool _writer_done = false;
    std::string _reason;
};

template <class Stream>
asio::awaitable<void> shutdown(Stream& stream) {
    boost::system::error_code ec;
    if constexpr (std::is_same_v<Stream, tls_stream>) {
        beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
        co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
    }
    socket_of(stream).shutdown(tcp::socket::shutdown_send, ec);
}

} // namespace

http_server::http_server(asio::io_context& io, api& handler, event_hub& hub, http_server_options options)
    : _io(io), _api(handler), _hub(hub), _options(std::move(options)), _acceptor(io) {}

http_server::~http_server() = default;

result<void> http_server::start() {
    auto endpoint = parse_listen_address(_options.listen);
    if (!endpoint) return error{"--listen " + endpoint.error_message()};
    if (_options.tls_cert_file.empty() != _options.tls_key_file.empty())
        return error{"--tls-cert and --tls-key go together"};
    if (!_options.tls_cert_file.empty()) {
        _tls.emplace(asio::ssl::context::tls_server);
        _tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                          asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                          asio::ssl::context::no_tlsv1_1);
        boost::system::error_code ec;
        _tls->use_certificate_chain_file(_options.tls_cert_file, ec);
        if (ec) return error{"--tls-cert " + _options.tls_cert_file + ": " + ec.message()};
        _tls->use_private_key_file(_options.tls_key_file, asio::ssl::context::pem, ec);
        if (ec) return error{"--tls-key " + _options.tls_key_file + ": " + ec.message()};
    }
    boost::system::error_code ec;
    _acceptor.open(endpoint->protocol(), ec);
    if (!ec) _acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) _acceptor.bind(*endpoint, ec);
    if (!ec) _acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return error{"cannot listen on " + _options.listen + ": " + ec.message()};
    _port = _acceptor.local_endpoint().port();
    asio::co_spawn(_io, accept_loop(), asio::detached);
    return {};
}

asio::awaitable<void> http_server::accept_loop() {
    for (;;) {
        boost::system::error_code ec;
        tcp::socket socket = co_await _acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            if (ec == asio::error::operation_aborted) co_return;
            spdlog::warn("accept: {}", ec.message());
            continue;
        }
        if (_connections >= _options.max_connections) {
            socket.close(ec); // over the limit: refuse by closing, never queue without bound
            continue;
        }
        std::string remote;
        auto peer = socket.remote_endpoint(ec);
        if (!ec) remote = peer.address().to_string() + ":" + std::to_string(peer.port());
        socket.set_option(tcp::no_delay(true), ec);
        if (_tls) {
            asio::co_spawn(_io, serve(tls_stream(std::move(socket), *_tls), std::move(remote)), asio::detached);
        } else {
            asio::co_spawn(_io, serve(plain_stream(std::move(socket)), std::move(remote)), asio::detached);
        }
    }
}

template <class Stream>
asio::awaitable<void> http_server::serve(Stream stream, std::string remote) {
    ++_connections;
    struct counted {
        std::size_t& n;
        ~counted() { --n; }
    } count{_connections};
    boost::system::error_code ec;
    if constexpr (std::is_same_v<Stream, tls_stream>) {
        beast::get_lowest_layer(stream).expires_after(_options.request_timeout);
        co_await stream.async_handshake(asio::ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
    }
    beast::flat_buffer buffer;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(8 * 1024);
        parser.body_limit(max_request_body);
        beast::get_lowest_layer(stream).expires_after(_options.request_timeout);
        co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            std::optional<api_response> answer;
            if (ec == http::error::body_limit)
                answer = json_error(413, "body_too_large",
                                    "request bodies are limited to " + std::to_string(max_request_body) + " bytes");
            else if (ec == http::error::header_limit)
                answer = json_error(431, "headers_too_large", "request headers are limited to 8192 bytes");
            else if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
                     ec != asio::error::eof && ec != asio::error::connection_reset &&
                     ec != asio::error::operation_aborted)
                answer = json_error(400, "bad_request", "malformed HTTP request: " + ec.message());
            if (answer) {
                http::request<http::string_body> stub;
                auto response = make_response(stub, *answer);
                response.keep_alive(false);
                beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
                co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
            }
            break;
        }
        http::request<http::string_body> request = parser.release();
        api_request in;
        in.method = std::string(view(request.method_string()));
        in.target = std::string(view(request.target()));
        in.header = [&request](std::string_view name) -> std::string_view {
            auto it = request.find(beast::string_view(name.data(), name.size()));
            return it == request.end() ? std::string_view{} : view(it->value());
        };
        in.body = request.body();
        in.remote = remote;

        if (websocket::is_upgrade(request) && _api.is_events_path(in.target)) {
            auto access = _api.authorize_events(in);
            if (access.refusal) {
                auto response = make_response(request, *access.refusal);
                response.keep_alive(false);
                co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
                break;
            }
            beast::get_lowest_layer(stream).expires_never();
            websocket::stream<Stream> ws(std::move(stream));
            ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
            ws.read_message_max(4096);
            co_await ws.async_accept(request, asio::redirect_error(asio::use_awaitable, ec));
            if (ec) co_return;

            // The first message says which version the node has; it must come promptly.
            beast::flat_buffer incoming;
            asio::steady_timer deadline(_io);
            deadline.expires_after(_options.request_timeout);
            bool subscribed = false;
            deadline.async_wait([&](boost::system::error_code timer_ec) {
                if (!timer_ec && !subscribed) {
                    boost::system::error_code ignored;
                    socket_of(ws).cancel(ignored);
                }
            });
            co_await ws.async_read(incoming, asio::redirect_error(asio::use_awaitable, ec));
            subscribed = true;
            deadline.cancel();
            if (ec) co_return;
            auto subscribe = parse_subscribe(beast::buffers_to_string(incoming.data()));
            incoming.consume(incoming.size());
            if (!subscribe) {
                websocket::close_reason why(websocket::close_code::policy_error,
                                            ("subscribe: " + subscribe.error_message()).substr(0, 120));
                co_await ws.async_close(why, asio::redirect_error(asio::use_awaitable, ec));
                co_return;
            }
            ws_subscriber<Stream> subscriber(ws, _io, _options.max_queued_events);
            auto first = _hub.subscribe(&subscriber, access.network_id, access.node, subscribe->since_version);
            if (!first) {
                websocket::close_reason why(websocket::close_code::internal_error, "store error");
                spdlog::warn("events {}: {}", access.network_id, first.error_message());
                co_await ws.async_close(why, asio::redirect_error(asio::use_awaitable, ec));
                co_return;
            }
            for (const auto& message : *first) subscriber.deliver(message);
            asio::co_spawn(_io, subscriber.write_loop(), asio::detached);
            // Read until the node goes away; it sends nothing more we need (pings are automatic).
            while (!subscriber.closed()) {
                co_await ws.async_read(incoming, asio::redirect_error(asio::use_awaitable, ec));
                incoming.consume(incoming.size());
                if (ec) break;
            }
            _hub.unsubscribe(&subscriber);
            subscriber.close("");
            co_await subscriber.wait_writer();
            co_return;
        }

        api_response answer = co_await _api.handle(in);
        auto response = make_response(request, answer);
        const bool keep_alive = response.keep_alive();
        co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
        if (ec || !keep_alive) break;
    }
    co_await shutdown(stream);
}

} // namespace meshfwd::coord
