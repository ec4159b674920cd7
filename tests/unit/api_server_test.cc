// control::api_server over real loopback HTTP: routes and status codes, providers called only on
// the polling (test) thread, 503 after 2 s when nobody polls, prompt shutdown with a request in
// flight, and bind errors. The test thread plays the control thread; client threads play curl.
#include "control/api_server.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <future>
#include <thread>

namespace meshfwd::control {
namespace {

using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct reply {
    int status = -1; // -1: no HTTP answer at all
    std::string content_type;
    std::string allow;
    std::string body;
};

reply get(uint16_t port, const std::string& method, const std::string& path) {
    httplib::Client cli("127.0.0.1", port);
    cli.set_connection_timeout(2, 0);
    cli.set_read_timeout(10, 0);
    auto res = method == "GET" ? cli.Get(path) : cli.Post(path, "{}", "application/json");
    reply r;
    if (res) {
        r.status = res->status;
        r.content_type = res->get_header_value("Content-Type");
        r.allow = res->get_header_value("Allow");
        r.body = res->body;
    }
    return r;
}

class api_server_test : public ::testing::Test {
protected:
    void SetUp() override {
        api_server::providers p;
        p.status = [this] {
            on_provider_thread = on_provider_thread && std::this_thread::get_id() == test_thread;
            ++status_calls;
            return json{{"node", {{"name", "a"}, {"uptime_seconds", 1.5}}}, {"peers", 1}};
        };
        p.peers = [this] {
            on_provider_thread = on_provider_thread && std::this_thread::get_id() == test_thread;
            ++peers_calls;
            if (peers_throw) {
                throw std::runtime_error("peer table gone");
            }
            return json{{"peers", json::array({{{"public_key", "k"}, {"rx_bytes", 5}}})}};
        };
        auto s = api_server::start(endpoint(ip_address::v4(0x7f000001), 0), std::move(p));
        ASSERT_TRUE(s.ok()) << s.error_message();
        server = std::move(s.value());
        ASSERT_NE(server->port(), 0);
    }

    // Plays the control thread until `done` is ready (or a 10 s safety deadline).
    template <typename T>
    T serve_until(std::future<T>& done) {
        const auto deadline = clock_type::now() + 10s;
        while (done.wait_for(0s) != std::future_status::ready && clock_type::now() < deadline) {
            pollfd pfd{server->wake_fd(), POLLIN, 0};
            if (::poll(&pfd, 1, 20) > 0) {
                server->poll();
            }
        }
        EXPECT_EQ(done.wait_for(0s), std::future_status::ready) << "client did not finish within 10 s";
        return done.get();
    }

    bool wake_fd_readable(int timeout_ms) {
        pollfd pfd{server->wake_fd(), POLLIN, 0};
        return ::poll(&pfd, 1, timeout_ms) > 0;
    }

    const std::thread::id test_thread = std::this_thread::get_id();
    std::unique_ptr<api_server> server;
    std::atomic<int> status_calls{0};
    std::atomic<int> peers_calls{0};
    std::atomic<bool> on_provider_thread{true};
    bool peers_throw = false;
};

TEST_F(api_server_test, routes_answer_from_the_polling_thread) {
    auto done = std::async(std::launch::async, [port = server->port()] {
        std::vector<reply> r;
        r.push_back(get(port, "GET", "/v1/status"));
        r.push_back(get(port, "GET", "/v1/peers"));
        r.push_back(get(port, "GET", "/metrics"));
        r.push_back(get(port, "GET", "/nope"));
        r.push_back(get(port, "POST", "/v1/status"));
        return r;
    });
    const auto r = serve_until(done);
    ASSERT_EQ(r.size(), 5u);

    EXPECT_EQ(r[0].status, 200);
    EXPECT_EQ(r[0].content_type, "application/json");
    EXPECT_EQ(json::parse(r[0].body), (json{{"node", {{"name", "a"}, {"uptime_seconds", 1.5}}}, {"peers", 1}}));

    EXPECT_EQ(r[1].status, 200);
    EXPECT_EQ(r[1].content_type, "application/json");
    EXPECT_EQ(json::parse(r[1].body)["peers"][0]["public_key"], "k");

    EXPECT_EQ(r[2].status, 200);
    EXPECT_EQ(r[2].content_type, "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_NE(r[2].body.find("# TYPE meshfwd_peers gauge\nmeshfwd_peers 1\n"), std::string::npos) << r[2].body;
    EXPECT_NE(r[2].body.find("meshfwd_peer_rx_bytes_total{public_key=\"k\"} 5\n"), std::string::npos) << r[2].body;
    EXPECT_NE(r[2].body.find("meshfwd_uptime_seconds 1.5\n"), std::string::npos) << r[2].body;

    EXPECT_EQ(r[3].status, 404);
    EXPECT_EQ(r[3].content_type, "application/json");
    EXPECT_NE(json::parse(r[3].body).value("error", "").find("/nope"), std::string::npos) << r[3].body;

    EXPECT_EQ(r[4].status, 405);
    EXPECT_EQ(r[4].allow, "GET");
    EXPECT_TRUE(json::parse(r[4].body).contains("error")) << r[4].body;

    // status: /v1/status and /metrics; peers: /v1/peers and /metrics; 404/405 never reach us.
    EXPECT_EQ(status_calls.load(), 2);
    EXPECT_EQ(peers_calls.load(), 2);
    EXPECT_TRUE(on_provider_thread.load());
    EXPECT_FALSE(wake_fd_readable(0));
}

TEST_F(api_server_test, provider_exception_gives_500) {
    peers_throw = true;
    auto done = std::async(std::launch::async, [port = server->port()] { return get(port, "GET", "/v1/peers"); });
    const reply r = serve_until(done);
    EXPECT_EQ(r.status, 500);
    EXPECT_NE(json::parse(r.body).value("error", "").find("peer table gone"), std::string::npos) << r.body;
}

TEST_F(api_server_test, nobody_polling_gives_503_after_two_seconds) {
    const auto t0 = clock_type::now();
    const reply r = get(server->port(), "GET", "/v1/status");
    const auto waited = clock_type::now() - t0;
    EXPECT_EQ(r.status, 503);
    EXPECT_NE(json::parse(r.body).value("error", "").find("did not answer within 2 s"), std::string::npos) << r.body;
    EXPECT_GE(waited, 1900ms);
    EXPECT_LT(waited, 3500ms);
    // The abandoned request is dropped, not answered late.
    EXPECT_TRUE(wake_fd_readable(0));
    server->poll();
    EXPECT_EQ(status_calls.load(), 0);
    EXPECT_FALSE(wake_fd_readable(0));
}

TEST_F(api_server_test, destructor_with_a_request_in_flight_returns_promptly) {
    auto done = std::async(std::launch::async, [port = server->port()] { return get(port, "GET", "/v1/status"); });
    ASSERT_TRUE(wake_fd_readable(5000)) << "request never reached the queue";
    const auto t0 = clock_type::now();
    server.reset();
    EXPECT_LT(clock_type::now() - t0, 1000ms);
    ASSERT_EQ(done.wait_for(5s), std::future_status::ready);
    const reply r = done.get();
    EXPECT_EQ(r.status, 503);
    EXPECT_NE(r.body.find("shutting down"), std::string::npos) << r.body;
    EXPECT_EQ(status_calls.load(), 0);
}

TEST_F(api_server_test, bind_errors_name_the_address_and_cause) {
    const endpoint taken(ip_address::v4(0x7f000001), server->port());
    auto again = api_server::start(taken, {[] { return json::object(); }, [] { return json::object(); }});
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error_message(),
              "api: cannot listen on " + taken.to_string() + ": " + std::strerror(EADDRINUSE));

    // 192.0.2.1 (TEST-NET-1) is on no local interface.
    auto foreign = api_server::start(endpoint::parse("192.0.2.1:7082").value(),
                                     {[] { return json::object(); }, [] { return json::object(); }});
    ASSERT_FALSE(foreign.ok());
    EXPECT_EQ(foreign.error_message(), "api: cannot listen on 192.0.2.1:7082: " + std::string(std::strerror(EADDRNOTAVAIL)));

    auto no_providers = api_server::start(endpoint(ip_address::v4(0x7f000001), 0), {});
    ASSERT_FALSE(no_providers.ok());
}

} // namespace
} // namespace meshfwd::control
