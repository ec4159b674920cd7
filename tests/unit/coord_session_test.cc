// The meshcoord session against an in-process stand-in for meshcoord (Boost.Beast, one thread per
// connection) on 127.0.0.1: the first replica refuses connections, so the session moves to the
// second; there it registers with the invite (every request's signature checked with the
// server's key, the counters strictly increasing), subscribes from the cached version, applies
// the snapshot and an event, and heartbeats with its endpoints. When the server closes the event
// stream, the session reconnects (through the dead replica again) and registers without the
// invite, subscribing from the last version it saw.
// Threads: the test thread (the control thread's role: coord_client::take), the session's
// thread, and the stand-in's threads.
#include "control/coord_client.h"
#include "crypto/secret.h"
#include "crypto/x25519.h"

#include "coord/protocol.h"
#include "coord/request_auth.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <thread>

namespace meshfwd::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using namespace meshfwd::control;

coord::peer_view peer(const std::string& key, const std::string& ip) {
    coord::peer_view v;
    v.id = "peer-" + std::to_string(std::hash<std::string>{}(ip) % 1000000000000);
    v.public_key = key;
    v.virtual_ip = ip;
    v.ipv6 = "fd00:1:2::7";
    v.endpoints = {"192.0.2.7:51820"};
    v.endpoint = v.endpoints[0];
    v.allowed_ips = {ip + "/32"};
    v.online = true;
    return v;
}

// What the stand-in saw, guarded by its mutex.
struct seen {
    std::vector<coord::register_request> registrations;
    std::vector<coord::heartbeat_request> heartbeats;
    std::vector<int64_t> subscriptions;
    std::vector<uint64_t> counters;
    std::vector<std::string> problems;  // bad signatures, unexpected requests
};

class fake_meshcoord {
public:
    fake_meshcoord(crypto::secret32 secret, std::string other_key)
        : _secret(std::move(secret)), _other(std::move(other_key)) {
        _acceptor.open(tcp::v4());
        _acceptor.set_option(tcp::acceptor::reuse_address(true));
        _acceptor.bind({asio::ip::make_address("127.0.0.1"), 0});
        _acceptor.listen();
        port = _acceptor.local_endpoint().port();
        _threads.emplace_back([this] { accept_loop(); });
    }
    ~fake_meshcoord() { stop(); }

    void stop() {
        {
            std::lock_guard lock(mutex);
            if (_stopping) {
                return;
            }
            _stopping = true;
        }
        cv.notify_all();
        ::shutdown(_acceptor.native_handle(), SHUT_RDWR);  // wakes the blocked accept
        _threads.front().join();  // the accept loop: no thread is added after it
        for (size_t i = 1; i < _threads.size(); ++i) {
            _threads[i].join();
        }
    }

    // Ends the current event stream (the server's side of a restart).
    void close_stream() {
        std::lock_guard lock(mutex);
        ++_close_generation;
        cv.notify_all();
    }

    template <class Pred>
    bool wait_for(Pred pred, std::chrono::seconds limit) {
        std::unique_lock lock(mutex);
        return cv.wait_for(lock, limit, [&] { return pred(s); });
    }

    uint16_t port = 0;
    std::mutex mutex;
    std::condition_variable cv;
    seen s;

private:
    void accept_loop() {
        for (;;) {
            beast::error_code ec;
            tcp::socket socket(_io);
            _acceptor.accept(socket, ec);
            std::lock_guard lock(mutex);
            if (ec || _stopping) {
                return;
            }
            _threads.emplace_back([this, sock = std::move(socket)]() mutable { handle(std::move(sock)); });
        }
    }

    void problem(std::string what) {
        std::lock_guard lock(mutex);
        s.problems.push_back(std::move(what));
        cv.notify_all();
    }

    void handle(tcp::socket socket) {
        beast::error_code ec;
        beast::flat_buffer buffer;
        http::request<http::string_body> req;
        http::read(socket, buffer, req, ec);
        if (ec) {
            return;
        }
        const std::string target(req.target());
        auto v = coord::verify_request(_secret, std::string(req[std::string(coord::header_node)]),
                                       std::string(req[std::string(coord::header_counter)]),
                                       std::string(req[std::string(coord::header_mac)]), std::string(req.method_string()),
                                       target, req.body());
        if (!v) {
            problem(target + ": " + v.error_message());
            return;
        }
        {
            std::lock_guard lock(mutex);
            s.counters.push_back(v->counter);
        }
        if (websocket::is_upgrade(req)) {
            if (target != "/api/v1/mesh/networks/net1/events") {
                problem("upgrade to " + target);
                return;
            }
            serve_events(std::move(socket), req);
            return;
        }
        http::response<http::string_body> res{http::status::ok, req.version()};
        res.set(http::field::content_type, "application/json");
        if (req.method() == http::verb::post && target == "/api/v1/mesh/networks/net1/peers") {
            auto r = coord::parse_register(req.body());
            if (!r) {
                problem("register body: " + r.error_message());
                return;
            }
            coord::register_response out;
            out.peer_id = "peer-000000000001";
            out.assigned_ip = "10.100.0.1";
            out.ipv6 = "fd00:1:2::1";
            out.network_cidr = "10.100.0.0/16";
            out.ula_prefix = "fd00:1:2::/48";
            out.heartbeat_interval_s = 1;
            out.server_public_key = crypto::key_to_base64(crypto::derive_public_key(_secret));
            res.result(http::status::created);
            res.body() = coord::to_json(out);
            std::lock_guard lock(mutex);
            s.registrations.push_back(std::move(*r));
            cv.notify_all();
        } else if (req.method() == http::verb::post && target == "/api/v1/mesh/networks/net1/heartbeat") {
            auto h = coord::parse_heartbeat(req.body());
            if (!h) {
                problem("heartbeat body: " + h.error_message());
                return;
            }
            res.body() = R"({"success":true})";
            std::lock_guard lock(mutex);
            s.heartbeats.push_back(std::move(*h));
            cv.notify_all();
        } else {
            problem("unexpected " + std::string(req.method_string()) + " " + target);
            return;
        }
        res.prepare_payload();
        http::write(socket, res, ec);
    }

    void serve_events(tcp::socket socket, const http::request<http::string_body>& req) {
        websocket::stream<tcp::socket> ws(std::move(socket));
        beast::error_code ec;
        ws.accept(req, ec);
        beast::flat_buffer buffer;
        ws.read(buffer, ec);
        if (ec) {
            return;
        }
        auto sub = coord::parse_subscribe(beast::buffers_to_string(buffer.data()));
        if (!sub) {
            problem("subscribe: " + sub.error_message());
            return;
        }
        uint64_t generation = 0;
        {
            std::lock_guard lock(mutex);
            s.subscriptions.push_back(sub->since_version);
            generation = _close_generation;
            cv.notify_all();
        }
        coord::event_message snap;
        snap.type = "snapshot";
        snap.version = 9;
        snap.peers = {peer(_other, "10.100.0.2")};
        coord::event_message joined;
        joined.type = "event";
        joined.version = 10;
        joined.kind = "joined";
        const std::string third = crypto::key_to_base64(crypto::derive_public_key(crypto::generate_private_key()));
        joined.public_key = third;
        joined.peer = peer(third, "10.100.0.3");
        ws.text(true);
        ws.write(asio::buffer(coord::to_json(snap)), ec);
        ws.write(asio::buffer(coord::to_json(joined)), ec);
        std::unique_lock lock(mutex);
        cv.wait_for(lock, 60s, [&] { return _stopping || _close_generation != generation; });
        lock.unlock();
        ws.close(websocket::close_code::going_away, ec);
    }

    crypto::secret32 _secret;
    std::string _other;
    asio::io_context _io;
    tcp::acceptor _acceptor{_io};
    std::vector<std::thread> _threads;  // guarded by mutex while the acceptor runs
    bool _stopping = false;
    uint64_t _close_generation = 0;
};

// The updates the session posts, gathered as the control thread would (eventfd + take).
class collector {
public:
    explicit collector(int fd) : _fd(fd) {}
    template <class Pred>
    bool wait_for(coord_client& client, Pred pred, std::chrono::seconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!pred(updates)) {
            if (std::chrono::steady_clock::now() >= deadline) {
                return false;
            }
            pollfd p{_fd, POLLIN, 0};
            ::poll(&p, 1, 100);
            uint64_t value = 0;
            [[maybe_unused]] const ssize_t n = ::read(_fd, &value, sizeof(value));
            for (auto& u : client.take()) {
                updates.push_back(std::move(u));
            }
        }
        return true;
    }
    std::vector<coord_update> updates;

private:
    int _fd;
};

TEST(coord_session, registers_follows_events_heartbeats_and_fails_over) {
    ASSERT_TRUE(crypto::crypto_init());
    auto server_secret = crypto::generate_private_key();
    const auto server_public = crypto::derive_public_key(server_secret);
    auto node_secret = crypto::generate_private_key();
    const auto node_public = crypto::derive_public_key(node_secret);
    const std::string other = crypto::key_to_base64(crypto::derive_public_key(crypto::generate_private_key()));
    fake_meshcoord server(server_secret.clone(), other);

    // A port nothing listens on: the first replica refuses.
    uint16_t dead_port = 0;
    {
        asio::io_context io;
        tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
        dead_port = a.local_endpoint().port();
    }
    coord_settings s;
    s.servers = {{false, {"127.0.0.1", dead_port}}, {false, {"127.0.0.1", server.port}}};
    s.network_id = "net1";
    s.node_public = node_public;
    s.node_secret = node_secret.clone();
    s.server_public = server_public;
    s.invite = "mfinv1.test.invite";
    s.hostname = "n1";
    s.publish_endpoints = {*endpoint::parse("198.51.100.4:51820")};
    s.listen_port = 51820;
    s.heartbeat_interval = 1s;
    s.since_version = 5;  // as from a cache file
    const std::string dead_url = s.servers[0].url();
    const std::string live_url = s.servers[1].url();

    const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ASSERT_GE(fd, 0);
    auto started = coord_client::start(std::move(s), fd);
    ASSERT_TRUE(started.ok()) << started.error_message();
    auto client = std::move(*started);
    collector c(fd);

    const auto count = [](const std::vector<coord_update>& us, auto pred) {
        return std::count_if(us.begin(), us.end(), pred);
    };
    const auto connected_to = [&](const std::string& url) {
        return [url](const coord_update& u) { return u.state_changed && u.connected && u.server == url; };
    };
    const auto snapshot = [](const coord_update& u) { return u.event && u.event->type == "snapshot"; };
    const auto joined = [](const coord_update& u) { return u.event && u.event->kind == "joined"; };
    ASSERT_TRUE(c.wait_for(
        *client,
        [&](const auto& us) { return count(us, connected_to(live_url)) >= 1 && count(us, snapshot) >= 1 && count(us, joined) >= 1; },
        20s))
        << c.updates.size() << " updates; " << [&] {
               std::string errors;
               for (const auto& u : c.updates) errors += u.error + "; ";
               std::lock_guard lock(server.mutex);
               for (const auto& p : server.s.problems) errors += "server: " + p + "; ";
               return errors;
           }();
    // The dead replica first, with its error.
    ASSERT_TRUE(c.updates.front().state_changed);
    EXPECT_EQ(c.updates.front().server, dead_url);
    EXPECT_FALSE(c.updates.front().connected);
    EXPECT_FALSE(c.updates.front().error.empty());
    const auto reg = std::find_if(c.updates.begin(), c.updates.end(), [](const auto& u) { return u.registration.has_value(); });
    ASSERT_NE(reg, c.updates.end());
    EXPECT_EQ(reg->registration->peer_id, "peer-000000000001");
    EXPECT_EQ(reg->registration->assigned_ip, "10.100.0.1");
    const auto snap = std::find_if(c.updates.begin(), c.updates.end(), snapshot);
    EXPECT_EQ(snap->event->version, 9);
    ASSERT_EQ(snap->event->peers.size(), 1u);
    EXPECT_EQ(snap->event->peers[0].public_key, other);

    // Heartbeats every second (the shorter of ours and the server's), with our endpoints.
    ASSERT_TRUE(server.wait_for([](const seen& x) { return x.heartbeats.size() >= 2; }, 10s));
    {
        std::lock_guard lock(server.mutex);
        ASSERT_EQ(server.s.registrations.size(), 1u);
        EXPECT_EQ(server.s.registrations[0].invite, "mfinv1.test.invite");
        EXPECT_EQ(server.s.registrations[0].public_key, crypto::key_to_base64(node_public));
        EXPECT_EQ(server.s.registrations[0].hostname, "n1");
        EXPECT_EQ(server.s.registrations[0].endpoints, std::vector<std::string>{"198.51.100.4:51820"});
        EXPECT_EQ(server.s.heartbeats[0].peer_id, "peer-000000000001");
        ASSERT_TRUE(server.s.heartbeats[0].endpoints.has_value());
        EXPECT_EQ(*server.s.heartbeats[0].endpoints, std::vector<std::string>{"198.51.100.4:51820"});
        EXPECT_EQ(server.s.subscriptions, std::vector<int64_t>{5});
    }

    // The server ends the stream: the session reports it, goes round the replicas, registers
    // again without the (single-use) invite and resumes from version 10.
    server.close_stream();
    ASSERT_TRUE(server.wait_for([](const seen& x) { return x.subscriptions.size() >= 2; }, 20s));
    {
        std::lock_guard lock(server.mutex);
        ASSERT_EQ(server.s.registrations.size(), 2u);
        EXPECT_EQ(server.s.registrations[1].invite, "");
        EXPECT_EQ(server.s.subscriptions[1], 10);
        EXPECT_TRUE(server.s.problems.empty()) << server.s.problems.front();
        // Strictly increasing across every request, heartbeats and upgrades included.
        for (size_t i = 1; i < server.s.counters.size(); ++i) {
            EXPECT_GT(server.s.counters[i], server.s.counters[i - 1]) << i;
        }
    }
    ASSERT_TRUE(c.wait_for(*client, [&](const auto& us) { return count(us, connected_to(live_url)) >= 2; }, 20s));
    const auto lost = std::find_if(c.updates.begin(), c.updates.end(), [&](const coord_update& u) {
        return u.state_changed && !u.connected && u.server == live_url;
    });
    ASSERT_NE(lost, c.updates.end());
    EXPECT_NE(lost->error.find("event stream"), std::string::npos) << lost->error;

    client.reset();  // stops and joins the session's thread
    server.stop();
    ::close(fd);
}

// A key the server cannot use (all zeros: a low-order point) is refused at start, naming the key.
TEST(coord_session, low_order_server_key_is_refused) {
    ASSERT_TRUE(crypto::crypto_init());
    coord_settings s;
    s.servers = {{false, {"127.0.0.1", 9}}};
    s.network_id = "net1";
    s.node_secret = crypto::generate_private_key();
    s.node_public = crypto::derive_public_key(s.node_secret);
    const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    auto started = coord_client::start(std::move(s), fd);
    ASSERT_FALSE(started.ok());
    EXPECT_NE(started.error_message().find("mesh.discovery.server_public_key"), std::string::npos)
        << started.error_message();
    ::close(fd);
}

} // namespace
} // namespace meshfwd::test
