// The meshcoord session (see coord_client.h): one thread running an Asio io_context with one
// coroutine that registers, then runs heartbeats and the event stream side by side; when either
// fails it backs off (exponential, with jitter, capped at 30 s) and moves to the next replica.
// HTTP/1.1 and WebSocket by Boost.Beast, TLS by OpenSSL for https:// servers (the system's CAs,
// the host name checked). Every request is signed (coord/request_auth.h) with a counter that is
// the Unix time in microseconds, made strictly increasing.
//
// Threads: start_coord_session and the deleter on the control thread; everything else on the
// session's thread, which talks to the node only through coord_client::post.
#include "control/coord_client.h"

#include "crypto/x25519.h"

#include "coord/protocol.h"
#include "coord/request_auth.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <nlohmann/json.hpp>

#include <ifaddrs.h>
#include <net/if.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <thread>

namespace meshfwd::control {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
using namespace std::chrono_literals;

constexpr auto request_timeout = 10s;       // connect + TLS + request + answer
constexpr auto event_idle_timeout = 40s;    // no frame (pings included) for this long: reconnect
constexpr auto backoff_first = 500ms;
constexpr auto backoff_cap = 30s;
constexpr size_t max_answer = 8 << 20;      // an HTTP answer (a full peer list) larger is refused
constexpr size_t max_event_message = 32 << 20;  // a snapshot of a 10,000-node network fits

// A failure worth telling the node about, as it will be shown in `meshctl status`.
struct session_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The Host header: the port too unless it is the scheme's own (RFC 9110 7.2).
std::string host_header(const coord_server& server) {
    const bool v6 = server.address.host.find(':') != std::string::npos;
    std::string host = v6 ? "[" + server.address.host + "]" : server.address.host;
    if (server.address.port != (server.tls ? 443 : 80)) {
        host += ":" + std::to_string(server.address.port);
    }
    return host;
}

std::string api_path(const std::string& network_id, std::string_view what) {
    return "/api/v1/mesh/networks/" + network_id + "/" + std::string(what);
}

// "403 invite_used: this invite was used already" from meshcoord's {"error":{code,message}}.
std::string describe_refusal(unsigned status, const std::string& body) {
    std::string out = "HTTP " + std::to_string(status);
    const auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_object()) {
        const auto& e = j["error"];
        if (e.contains("code") && e["code"].is_string()) {
            out += " " + e["code"].get<std::string>();
        }
        if (e.contains("message") && e["message"].is_string()) {
            out += ": " + e["message"].get<std::string>().substr(0, 300);
        }
    }
    return out;
}

struct http_answer {
    unsigned status = 0;
    std::string body;
};

template <class Stream>
awaitable<http_answer> exchange(Stream& stream, http::request<http::string_body>& req) {
    co_await http::async_write(stream, req, use_awaitable);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_answer);
    co_await http::async_read(stream, buffer, parser, use_awaitable);
    co_return http_answer{parser.get().result_int(), std::move(parser.get().body())};
}

}  // namespace

struct coord_session {
    coord_session(coord_settings s, coord_client& out) : settings(std::move(s)), sink(out) {}

    coord_settings settings;
    coord_client& sink;
    asio::io_context io{1};
    asio::ssl::context tls{asio::ssl::context::tls_client};
    std::thread thread;
    crypto::secret32 key;          // request_key(node secret, server public)
    uint64_t last_counter = 0;
    size_t server_index = 0;
    unsigned failures = 0;
    std::string peer_id;
    std::chrono::nanoseconds heartbeat = 30s;
    int64_t version = 0;
    std::minstd_rand rng{std::random_device{}()};

    // ---- helpers ---------------------------------------------------------------------------

    void report(const coord_server& server, bool connected, std::string error) {
        coord_update u;
        u.state_changed = true;
        u.server = server.url();
        u.connected = connected;
        u.error = std::move(error);
        sink.post(std::move(u));
    }

    void sign(http::request<http::string_body>& req) {
        const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
        last_counter = std::max<uint64_t>(static_cast<uint64_t>(now_us), last_counter + 1);
        const auto h = coord::sign_request(key, settings.node_public, std::string(req.method_string()),
                                           std::string(req.target()), last_counter, req.body());
        req.set(std::string(coord::header_node), h.node);
        req.set(std::string(coord::header_counter), h.counter);
        req.set(std::string(coord::header_mac), h.mac);
    }

    // What we tell meshcoord we are reachable at (see mesh.discovery.publish_endpoints).
    std::vector<std::string> endpoints() const {
        std::vector<std::string> out;
        for (const auto& e : settings.publish_endpoints) {
            out.push_back(e.to_string());
        }
        if (!out.empty()) {
            return out;
        }
        ifaddrs* list = nullptr;
        if (::getifaddrs(&list) != 0) {
            return out;
        }
        for (const ifaddrs* i = list; i != nullptr && out.size() < coord::max_endpoints; i = i->ifa_next) {
            if (i->ifa_addr == nullptr || (i->ifa_flags & IFF_UP) == 0 || (i->ifa_flags & IFF_LOOPBACK) != 0 ||
                settings.device_name == i->ifa_name) {
                continue;
            }
            const socklen_t len = i->ifa_addr->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
            if (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6) {
                continue;
            }
            auto ep = endpoint::from_sockaddr(i->ifa_addr, len);
            if (!ep) {
                continue;
            }
            const auto a = ep->address();
            if (a.is_v6() && a.to_string().starts_with("fe80:")) {
                continue;  // link-local: needs a scope no peer has
            }
            const std::string text = endpoint(a, settings.listen_port).to_string();
            if (std::find(out.begin(), out.end(), text) == out.end()) {
                out.push_back(text);
            }
        }
        ::freeifaddrs(list);
        return out;
    }

    std::chrono::nanoseconds backoff() {
        const auto exp = std::min<unsigned>(failures, 10);
        const auto ceiling = std::min<std::chrono::nanoseconds>(backoff_cap, backoff_first * (1u << exp));
        // Jitter over the upper half, so a restarted meshcoord is not hit by every node at once.
        std::uniform_int_distribution<int64_t> pick(ceiling.count() / 2, ceiling.count());
        return std::chrono::nanoseconds(pick(rng));
    }

    awaitable<void> sleep(std::chrono::nanoseconds d) {
        asio::steady_timer t(co_await asio::this_coro::executor);
        t.expires_after(d);
        co_await t.async_wait(use_awaitable);
    }

    // ---- one HTTP request ------------------------------------------------------------------

    awaitable<http_answer> request(const coord_server& server, http::verb verb, const std::string& target,
                                   std::string body) {
        auto ex = co_await asio::this_coro::executor;
        tcp::resolver resolver(ex);
        const auto hosts =
            co_await resolver.async_resolve(server.address.host, std::to_string(server.address.port), use_awaitable);
        http::request<http::string_body> req{verb, target, 11};
        req.set(http::field::host, host_header(server));
        req.set(http::field::user_agent, "meshfwd/" MESHFWD_VERSION);
        if (!body.empty()) {
            req.set(http::field::content_type, "application/json");
        }
        req.body() = std::move(body);
        req.prepare_payload();
        sign(req);
        if (!server.tls) {
            beast::tcp_stream stream(ex);
            stream.expires_after(request_timeout);
            co_await stream.async_connect(hosts, use_awaitable);
            auto answer = co_await exchange(stream, req);
            beast::error_code ec;
            stream.socket().shutdown(tcp::socket::shutdown_both, ec);
            co_return answer;
        }
        beast::ssl_stream<beast::tcp_stream> stream(ex, tls);
        if (!SSL_set_tlsext_host_name(stream.native_handle(), server.address.host.c_str())) {
            throw session_error("TLS: cannot set the server name");
        }
        stream.set_verify_callback(asio::ssl::host_name_verification(server.address.host));
        beast::get_lowest_layer(stream).expires_after(request_timeout);
        co_await beast::get_lowest_layer(stream).async_connect(hosts, use_awaitable);
        co_await stream.async_handshake(asio::ssl::stream_base::client, use_awaitable);
        co_return co_await exchange(stream, req);
    }

    // ---- registration ----------------------------------------------------------------------

    awaitable<void> register_node(const coord_server& server) {
        for (unsigned pending = 0;; ++pending) {
            coord::register_request r;
            r.public_key = crypto::key_to_base64(settings.node_public);
            r.hostname = settings.hostname;
            r.os = "linux";
            r.endpoints = endpoints();
            if (!settings.registered_before) {
                r.invite = settings.invite;
                r.token = settings.token;
            }
            const auto answer = co_await request(server, http::verb::post, api_path(settings.network_id, "peers"),
                                                 coord::to_json(r));
            if (answer.status != 200 && answer.status != 201 && answer.status != 202) {
                if (settings.registered_before && (!settings.invite.empty() || !settings.token.empty())) {
                    // meshcoord forgot us (a new database?): the credentials may still be good.
                    settings.registered_before = false;
                }
                throw session_error("registration refused: " + describe_refusal(answer.status, answer.body));
            }
            auto reg = coord::parse_register_response(answer.body);
            if (!reg) {
                throw session_error("registration: unreadable answer: " + reg.error_message());
            }
            settings.registered_before = true;
            peer_id = reg->peer_id;
            heartbeat = std::min<std::chrono::nanoseconds>(settings.heartbeat_interval,
                                                           std::chrono::seconds(std::max<uint32_t>(reg->heartbeat_interval_s, 1)));
            coord_update u;
            u.registration = *reg;
            sink.post(std::move(u));
            if (reg->approved) {
                co_return;
            }
            // Pending an administrator: ask again, less and less often.
            report(server, false, "registered, pending approval");
            failures = std::min(failures + 1, 16u);
            co_await sleep(backoff());
        }
    }

    // ---- heartbeats and the event stream ---------------------------------------------------

    // What the two halves of a connected session share: the first to fail stops the other.
    struct running {
        std::function<void()> close_stream;  // set by the event stream once connected
        std::unique_ptr<asio::steady_timer> heartbeat_timer;
        bool stopped = false;
        std::string error;
        void stop(std::string why) {
            if (stopped) {
                return;
            }
            stopped = true;
            error = std::move(why);
            if (close_stream) {
                close_stream();
            }
            if (heartbeat_timer) {
                heartbeat_timer->cancel();
            }
        }
    };

    awaitable<void> heartbeats(const coord_server& server, std::shared_ptr<running> run) {
        while (!run->stopped) {
            run->heartbeat_timer->expires_after(heartbeat);
            beast::error_code ec;
            co_await run->heartbeat_timer->async_wait(asio::redirect_error(use_awaitable, ec));
            if (run->stopped) {
                co_return;
            }
            coord::heartbeat_request h;
            h.peer_id = peer_id;
            h.endpoints = endpoints();
            const auto answer = co_await request(server, http::verb::post, api_path(settings.network_id, "heartbeat"),
                                                 coord::to_json(h));
            if (answer.status != 200) {
                throw session_error("heartbeat refused: " + describe_refusal(answer.status, answer.body));
            }
        }
    }

    template <class WS>
    awaitable<void> follow(WS& ws, const coord_server& server, const std::string& target, std::shared_ptr<running> run) {
        websocket::stream_base::timeout t{};
        t.handshake_timeout = request_timeout;
        t.idle_timeout = event_idle_timeout;
        t.keep_alive_pings = true;
        ws.set_option(t);
        ws.read_message_max(max_event_message);
        http::request<http::string_body> probe{http::verb::get, target, 11};
        sign(probe);  // the upgrade request is signed like any other (method GET, empty body)
        ws.set_option(websocket::stream_base::decorator([probe](websocket::request_type& req) {
            for (const auto name : {coord::header_node, coord::header_counter, coord::header_mac}) {
                req.set(std::string(name), std::string(probe[std::string(name)]));
            }
            req.set(http::field::user_agent, "meshfwd/" MESHFWD_VERSION);
        }));
        co_await ws.async_handshake(host_header(server), target, use_awaitable);
        ws.text(true);
        co_await ws.async_write(asio::buffer(coord::to_json(coord::subscribe_request{version})), use_awaitable);
        failures = 0;
        report(server, true, "");
        beast::flat_buffer buffer;
        while (!run->stopped) {
            buffer.clear();
            co_await ws.async_read(buffer, use_awaitable);
            auto m = coord::parse_event_message(beast::buffers_to_string(buffer.data()));
            if (!m) {
                throw session_error("event stream: unreadable message: " + m.error_message());
            }
            version = m->type == "snapshot" ? m->version : std::max(version, m->version);
            coord_update u;
            u.event = std::move(*m);
            sink.post(std::move(u));
        }
    }

    awaitable<void> events(const coord_server& server, std::shared_ptr<running> run) {
        auto ex = co_await asio::this_coro::executor;
        tcp::resolver resolver(ex);
        const auto hosts =
            co_await resolver.async_resolve(server.address.host, std::to_string(server.address.port), use_awaitable);
        const std::string target = api_path(settings.network_id, "events");
        if (!server.tls) {
            websocket::stream<beast::tcp_stream> ws(ex);
            beast::get_lowest_layer(ws).expires_after(request_timeout);
            co_await beast::get_lowest_layer(ws).async_connect(hosts, use_awaitable);
            beast::get_lowest_layer(ws).expires_never();  // the websocket's own timeouts from here
            run->close_stream = [&ws] { beast::get_lowest_layer(ws).close(); };
            co_await follow(ws, server, target, run);
            co_return;
        }
        websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(ex, tls);
        if (!SSL_set_tlsext_host_name(ws.next_layer().native_handle(), server.address.host.c_str())) {
            throw session_error("TLS: cannot set the server name");
        }
        ws.next_layer().set_verify_callback(asio::ssl::host_name_verification(server.address.host));
        beast::get_lowest_layer(ws).expires_after(request_timeout);
        co_await beast::get_lowest_layer(ws).async_connect(hosts, use_awaitable);
        co_await ws.next_layer().async_handshake(asio::ssl::stream_base::client, use_awaitable);
        beast::get_lowest_layer(ws).expires_never();
        run->close_stream = [&ws] { beast::get_lowest_layer(ws).close(); };
        co_await follow(ws, server, target, run);
    }

    // ---- the session -----------------------------------------------------------------------

    // Registered, then heartbeats and events until one fails; returns why.
    awaitable<std::string> connected(const coord_server& server) {
        co_await register_node(server);
        auto run = std::make_shared<running>();
        auto ex = co_await asio::this_coro::executor;
        run->heartbeat_timer = std::make_unique<asio::steady_timer>(ex);
        bool heartbeats_done = false;
        asio::steady_timer done(ex, asio::steady_timer::time_point::max());
        asio::co_spawn(ex, heartbeats(server, run), [run, &heartbeats_done, &done](std::exception_ptr e) {
            std::string why = "heartbeats stopped";
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& x) {
                    why = std::string("heartbeat: ") + x.what();
                }
            }
            run->stop(why);
            heartbeats_done = true;
            done.cancel();
        });
        std::string why;
        try {
            co_await events(server, run);
            why = "event stream ended";
        } catch (const std::exception& x) {
            why = std::string("event stream: ") + x.what();
        }
        run->close_stream = nullptr;  // the stream is gone with events()' frame
        run->stop(why);
        // The heartbeat coroutine refers to `done` and our locals: wait for it to finish (it
        // does within one request timeout).
        while (!heartbeats_done) {
            beast::error_code ec;
            co_await done.async_wait(asio::redirect_error(use_awaitable, ec));
        }
        co_return run->error;
    }

    awaitable<void> main() {
        version = settings.since_version;
        for (;;) {
            const coord_server& server = settings.servers[server_index % settings.servers.size()];
            std::string why;
            try {
                why = co_await connected(server);
            } catch (const std::exception& x) {
                why = x.what();
            }
            report(server, false, why);
            // The next replica; with one server, the same again after the pause.
            ++server_index;
            failures = std::min(failures + 1, 16u);
            co_await sleep(backoff());
        }
    }
};

void coord_session_deleter::operator()(coord_session* s) const noexcept {
    if (s == nullptr) {
        return;
    }
    s->io.stop();
    if (s->thread.joinable()) {
        s->thread.join();
    }
    delete s;
}

result<std::unique_ptr<coord_session, coord_session_deleter>> start_coord_session(coord_settings settings,
                                                                                  coord_client& sink) {
    if (settings.servers.empty()) {
        return make_error("mesh.discovery.server: no server");
    }
    std::unique_ptr<coord_session, coord_session_deleter> s(new coord_session(std::move(settings), sink));
    auto key = coord::request_key(s->settings.node_secret, s->settings.server_public);
    if (!key) {
        return make_error("mesh.discovery.server_public_key: " + key.error_message());
    }
    s->key = std::move(*key);
    boost::system::error_code ec;
    s->tls.set_default_verify_paths(ec);  // none found: every https:// server fails to verify, and says so
    s->tls.set_verify_mode(asio::ssl::verify_peer, ec);
    coord_session* raw = s.get();
    asio::co_spawn(raw->io, raw->main(), asio::detached);
    raw->thread = std::thread([raw] {
        // An exception escaping a handler would end the thread silently: say so and go on.
        for (;;) {
            try {
                raw->io.run();
                return;
            } catch (const std::exception& e) {
                raw->report(raw->settings.servers.front(), false, std::string("internal error: ") + e.what());
            }
        }
    });
    return s;
}

}  // namespace meshfwd::control
