// meshcoord under load, through its real HTTP and WebSocket API: a meshcoord process (SQLite or
// a temporary PostgreSQL) on one core, registrations/s and heartbeats/s from client threads, then
// N nodes subscribed over real WebSocket connections and the time and bytes for one node's change
// to reach all of them, and meshcoord's memory per registered node (VmRSS).
//
//   build/bench/coord_load [--db sqlite|postgres] [--subscribers N] [--registrations N]
//                          [--heartbeats N] [--threads T] [--inflight N] [--server-cpu C] [--client-cpu C]
// Registrations come from T client threads; heartbeats from one client thread with N requests in
// flight (default 256), each on a new connection.
// --server-cpu pins meshcoord (default 0), --client-cpu pins this client (default: not pinned);
// e.g. `--server-cpu 1 --client-cpu 0` for "meshcoord on one core" on a 2-core machine.
// Prints one table row per measure. Not a test: numbers go in notes, never into pass/fail.
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <utility> // before Boost 1.74's asio headers (std::exchange)
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "crypto/x25519.h"
#include "tests/coord/meshcoord_process.h"
#include "tests/unit/pg_fixture.h"

namespace {

using namespace meshfwd;
using namespace meshfwd::test;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

long rss_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with("VmRSS:")) return std::strtol(line.c_str() + 6, nullptr, 10);
    }
    return -1;
}

// Every thread of `pid` (sched_setaffinity on a pid moves only that one thread).
bool pin_process(pid_t pid, const cpu_set_t& cpus) {
    std::error_code ec;
    bool any = false;
    for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
        const pid_t tid = static_cast<pid_t>(std::strtol(task.path().filename().c_str(), nullptr, 10));
        if (sched_setaffinity(tid, sizeof cpus, &cpus) != 0) return false;
        any = true;
    }
    return any;
}

// CPU seconds (user + system) that `pid` has used so far.
double cpu_seconds(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')'); // the command name may hold spaces
    if (close == std::string::npos) return 0;
    std::istringstream fields(text.substr(close + 2));
    std::string skip;
    for (int i = 3; i < 14; ++i) fields >> skip; // state .. cmajflt
    long utime = 0, stime = 0;
    fields >> utime >> stime;
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string register_body(test_node& node) {
    return nlohmann::json{{"public_key", node.public_key_base64()}, {"hostname", "load"}, {"os", "linux"},
                          {"endpoints", nlohmann::json::array({"192.0.2.1:51820"})}}
        .dump();
}

} // namespace

int main(int argc, char** argv) {
    std::string db = "sqlite";
    int subscribers = 1000, registrations = 2000, heartbeats = 20000, threads = 32;
    int server_cpu = 0, client_cpu = -1, inflight = 256;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string key = argv[i], value = argv[i + 1];
        if (key == "--db") db = value;
        else if (key == "--subscribers") subscribers = std::stoi(value);
        else if (key == "--registrations") registrations = std::stoi(value);
        else if (key == "--heartbeats") heartbeats = std::stoi(value);
        else if (key == "--threads") threads = std::stoi(value);
        else if (key == "--inflight") inflight = std::max(1, std::stoi(value));
        else if (key == "--server-cpu") server_cpu = std::stoi(value);
        else if (key == "--client-cpu") client_cpu = std::stoi(value);
        else {
            std::fprintf(stderr, "coord_load: unknown option %s\n", key.c_str());
            return 2;
        }
    }
    std::setvbuf(stdout, nullptr, _IOLBF, 0); // rows appear as they are measured
    if (!crypto::crypto_init()) return 1;
    rlimit files{};
    getrlimit(RLIMIT_NOFILE, &files);
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);

    std::unique_ptr<pg_temp_server> pg;
    std::string url;
    if (db == "postgres") {
        auto started = pg_temp_server::start();
        if (!started) {
            std::fprintf(stderr, "coord_load: %s\n", started.error_message().c_str());
            return 1;
        }
        pg = std::move(*started);
        auto created = pg->create_database("load");
        if (!created) return 1;
        url = *created;
    }
    auto server = meshcoord_process::start(url);
    if (!server) {
        std::fprintf(stderr, "coord_load: %s\n", server.error_message().c_str());
        return 1;
    }
    // meshcoord on one CPU; this client on another when asked (its threads inherit it).
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(server_cpu, &one);
    if (!pin_process((*server)->pid(), one)) {
        std::fprintf(stderr, "coord_load: cannot pin meshcoord to CPU %d\n", server_cpu);
        return 1;
    }
    std::fprintf(stderr, "coord_load: meshcoord pid %d\n", static_cast<int>((*server)->pid()));
    if (client_cpu >= 0) {
        CPU_ZERO(&one);
        CPU_SET(client_cpu, &one);
        if (sched_setaffinity(0, sizeof one, &one) != 0) {
            std::fprintf(stderr, "coord_load: cannot pin the client to CPU %d\n", client_cpu);
            return 1;
        }
    }
    auto& coord = **server;
    coord.admin("POST", "/api/v1/mesh/networks",
                R"({"id":"load","name":"load","cidr":"10.0.0.0/8","options":{"require_admission":false}})");
    const long rss_empty = rss_kib(coord.pid());
    std::printf("| backend %s | measure | value |\n|---|---|---|\n", db.c_str());

    // Registrations: `threads` clients, one request per connection (as nodes do).
    std::vector<std::unique_ptr<test_node>> nodes(static_cast<std::size_t>(std::max(registrations, subscribers + 1)));
    for (auto& n : nodes) n = std::make_unique<test_node>();
    std::atomic<int> next{0}, failed{0};
    std::atomic<int64_t> newest{0}; // the newest event version a registration answered with
    const double cpu_before_reg = cpu_seconds(coord.pid());
    auto start = clock_type::now();
    {
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t) {
            pool.emplace_back([&] {
                for (int i; (i = next++) < static_cast<int>(nodes.size());) {
                    auto reply = nodes[i]->send(coord, "POST", "/api/v1/mesh/networks/load/peers", register_body(*nodes[i]));
                    if (reply.status != 201) {
                        ++failed;
                        continue;
                    }
                    const int64_t v = nlohmann::json::parse(reply.body, nullptr, false).value("version", int64_t{0});
                    for (int64_t seen = newest.load(); v > seen && !newest.compare_exchange_weak(seen, v);) {
                    }
                }
            });
        }
        for (auto& th : pool) th.join();
    }
    double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    std::printf("| | registrations/s (%zu, %d threads, %d failed) | %.0f |\n", nodes.size(), threads, failed.load(),
                nodes.size() / seconds);
    std::printf("| | meshcoord CPU per registration | %.0f us |\n",
                (cpu_seconds(coord.pid()) - cpu_before_reg) * 1e6 / static_cast<double>(nodes.size()));
    const long rss_full = rss_kib(coord.pid());
    std::printf("| | meshcoord memory per registered node (VmRSS) | %.0f bytes |\n",
                (rss_full - rss_empty) * 1024.0 / static_cast<double>(nodes.size()));

    // Heartbeats: one client thread, `inflight` requests at once, each on its own connection (as
    // nodes send them: one request per connection). A lane beats for its own nodes in turn, so a
    // node never has two requests in flight and its counters arrive in order.
    inflight = std::min<int>(inflight, static_cast<int>(nodes.size()));
    int beats_failed = 0;
    int beats_sent = 0;
    const double cpu_before = cpu_seconds(coord.pid());
    const double client_cpu_before = cpu_seconds(::getpid());
    start = clock_type::now();
    {
        asio::io_context io;
        const std::string target = "/api/v1/mesh/networks/load/heartbeat";
        const tcp::endpoint server_at(asio::ip::make_address("127.0.0.1"), coord.port());
        auto lane = [&](int first) -> asio::awaitable<void> {
            const std::size_t step = static_cast<std::size_t>(inflight);
            const std::size_t mine = (nodes.size() - static_cast<std::size_t>(first) + step - 1) / step;
            for (std::size_t k = 0; beats_sent < heartbeats; ++k) {
                ++beats_sent;
                auto& node = *nodes[static_cast<std::size_t>(first) + (k % mine) * step];
                http::request<http::string_body> req{http::verb::post, target, 11};
                req.set(http::field::host, "127.0.0.1");
                for (const auto& [name, value] : node.sign(coord, "POST", target, "{}")) req.set(name, value);
                req.set(http::field::content_type, "application/json");
                req.body() = "{}";
                req.prepare_payload();
                beast::tcp_stream stream(io);
                stream.expires_after(std::chrono::seconds(30));
                beast::error_code ec;
                co_await stream.async_connect(server_at, asio::redirect_error(asio::use_awaitable, ec));
                if (!ec) co_await http::async_write(stream, req, asio::redirect_error(asio::use_awaitable, ec));
                beast::flat_buffer buffer;
                http::response<http::string_body> res;
                if (!ec) co_await http::async_read(stream, buffer, res, asio::redirect_error(asio::use_awaitable, ec));
                if (ec || res.result_int() != 200) ++beats_failed;
                stream.socket().shutdown(tcp::socket::shutdown_both, ec);
            }
        };
        for (int l = 0; l < inflight; ++l) asio::co_spawn(io, lane(l), asio::detached);
        io.run();
    }
    seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    std::printf("| | heartbeats/s (%d, %d in flight, one connection each, %d failed) | %.0f |\n", beats_sent,
                inflight, beats_failed, beats_sent / seconds);
    // CPU per heartbeat is what a shared machine's noise disturbs least: 1e6 / it is the rate one
    // core could sustain if meshcoord had it alone.
    const double beat_cpu_us = (cpu_seconds(coord.pid()) - cpu_before) * 1e6 / beats_sent;
    std::printf("| | meshcoord CPU per heartbeat | %.0f us (%.0f/s per core) |\n", beat_cpu_us, 1e6 / beat_cpu_us);
    std::printf("| | client CPU per heartbeat (%.0f%% of one core) | %.0f us |\n",
                (cpu_seconds(::getpid()) - client_cpu_before) * 100 / seconds,
                (cpu_seconds(::getpid()) - client_cpu_before) * 1e6 / beats_sent);

    if (subscribers == 0) return beats_failed == 0 && failed == 0 ? 0 : 1;

    // Fan-out: `subscribers` WebSocket subscriptions, then one node's change.
    asio::io_context io;
    struct sub {
        explicit sub(asio::io_context& ctx) : ws(ctx) {}
        websocket::stream<beast::tcp_stream> ws;
        beast::flat_buffer buffer;
        clock_type::time_point got{};
        std::size_t bytes = 0;
    };
    std::vector<std::unique_ptr<sub>> subs;
    subs.reserve(static_cast<std::size_t>(subscribers));
    for (int i = 0; i < subscribers; ++i) {
        auto s = std::make_unique<sub>(io);
        beast::error_code ec;
        beast::get_lowest_layer(s->ws).connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), coord.port()), ec);
        if (ec) {
            std::fprintf(stderr, "coord_load: subscriber %d: connect: %s\n", i, ec.message().c_str());
            return 1;
        }
        const std::string target = "/api/v1/mesh/networks/load/events";
        auto headers = nodes[static_cast<std::size_t>(i)]->sign(coord, "GET", target, "");
        s->ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
            for (const auto& [name, value] : headers) req.set(name, value);
        }));
        s->ws.handshake("127.0.0.1", target, ec);
        // A node that has been up a while subscribes from the version it holds (here: the
        // newest after the registrations), so it gets deltas, not a snapshot of every node.
        const std::string subscribe = nlohmann::json{{"since_version", newest.load()}}.dump();
        if (!ec) s->ws.write(asio::buffer(subscribe), ec);
        if (ec) {
            std::fprintf(stderr, "coord_load: subscriber %d: %s\n", i, ec.message().c_str());
            return 1;
        }
        subs.push_back(std::move(s));
    }
    const long rss_subscribed = rss_kib(coord.pid());
    std::atomic<int> received{0};
    for (auto& s : subs) {
        s->ws.async_read(s->buffer, [&received, raw = s.get()](beast::error_code ec, std::size_t n) {
            if (ec) return;
            raw->got = clock_type::now();
            raw->bytes = n;
            ++received;
        });
    }
    // One change: the last node publishes a new endpoint by heartbeat.
    auto& changer = *nodes.back();
    const auto changed_at = clock_type::now();
    std::thread change([&] {
        changer.send(coord, "POST", "/api/v1/mesh/networks/load/heartbeat", R"({"endpoints":["198.51.100.7:51820"]})");
    });
    while (received.load() < subscribers && clock_type::now() - changed_at < std::chrono::seconds(30)) {
        io.run_for(std::chrono::milliseconds(10));
    }
    change.join();
    clock_type::time_point last = changed_at;
    std::size_t bytes = 0;
    for (auto& s : subs) {
        last = std::max(last, s->got);
        bytes += s->bytes;
    }
    std::printf("| | one change to %d subscribers: all reached | %d |\n", subscribers, received.load());
    std::printf("| | one change to %d subscribers: time to the last | %.1f ms |\n", subscribers,
                std::chrono::duration<double, std::milli>(last - changed_at).count());
    std::printf("| | bytes per subscriber for that change | %.0f |\n",
                received ? static_cast<double>(bytes) / received.load() : 0.0);
    std::printf("| | meshcoord memory per subscription (VmRSS) | %.0f bytes |\n",
                (rss_subscribed - rss_full) * 1024.0 / subscribers);
    return received.load() == subscribers ? 0 : 1;
}
