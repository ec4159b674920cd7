// Test support: a real meshcoord process and a signing client (see meshcoord_process.h).
#include "tests/coord/meshcoord_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility> // before Boost 1.74's asio headers (std::exchange)
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <fstream>
#include <thread>

#include "coord/api_support.h"
#include "coord/request_auth.h"
#include "crypto/x25519.h"

#ifndef MESHCOORD_BIN
#error "MESHCOORD_BIN must name the meshcoord binary"
#endif

namespace meshfwd::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

result<std::unique_ptr<meshcoord_process>> meshcoord_process::start(const std::string& db,
                                                                    const std::vector<std::string>& extra_args) {
    auto process = std::unique_ptr<meshcoord_process>(new meshcoord_process());
    char tmpl[] = "/tmp/meshcoord-test-XXXXXX";
    if (!::mkdtemp(tmpl)) return error{"mkdtemp failed"};
    process->_dir = tmpl;
    process->_token = "test-admin-token-" + std::to_string(::getpid()) + "-0123456789";
    const std::string token_file = process->_dir + "/token";
    {
        std::ofstream out(token_file);
        out << process->_token << "\n";
    }
    ::chmod(token_file.c_str(), 0600);
    const std::string ready = process->_dir + "/ready";
    // MESHCOORD_BIN in the environment runs another build (bench/coord_load compares builds).
    const char* binary = std::getenv("MESHCOORD_BIN");
    std::vector<std::string> args{binary && *binary ? binary : MESHCOORD_BIN,
                                  "--listen", "127.0.0.1:0",
                                  "--stun-listen", "127.0.0.1:0",
                                  "--db", db.empty() ? "sqlite:" + process->_dir + "/meshcoord.db" : db,
                                  "--admin-token-file", token_file,
                                  "--ready-file", ready,
                                  "--log-level", "warn"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    const pid_t pid = ::fork();
    if (pid < 0) return error{"fork failed"};
    if (pid == 0) {
        const int log = ::open((process->_dir + "/meshcoord.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (log >= 0) {
            ::dup2(log, 1);
            ::dup2(log, 2);
        }
        ::unsetenv("MESHCOORD_ADMIN_TOKEN");
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    process->_pid = pid;
    for (int i = 0; i < 500; ++i) { // up to 10 s
        std::ifstream in(ready);
        unsigned http_port = 0, stun_port = 0;
        if (in >> http_port >> stun_port) {
            process->_port = static_cast<uint16_t>(http_port);
            process->_stun_port = static_cast<uint16_t>(stun_port);
            break;
        }
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
            process->_pid = -1;
            std::ifstream log(process->_dir + "/meshcoord.log");
            std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
            return error{"meshcoord exited at start: " + text};
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (process->_port == 0) return error{"meshcoord did not write its ready file within 10 s"};
    auto server = process->request("GET", "/api/v1/server");
    auto body = nlohmann::json::parse(server.body, nullptr, false);
    if (server.status != 200 || !body.is_object() || !body.contains("public_key"))
        return error{"GET /api/v1/server: " + std::to_string(server.status) + " " + server.body};
    auto key = crypto::key_from_base64(body["public_key"].get<std::string>());
    if (!key) return error{"GET /api/v1/server: bad key"};
    process->_server_key = *key;
    return process;
}

void meshcoord_process::kill_hard() {
    if (_pid > 0) {
        ::kill(_pid, SIGKILL);
        ::waitpid(_pid, nullptr, 0);
        _pid = -1;
    }
}

meshcoord_process::~meshcoord_process() {
    if (_pid > 0) {
        ::kill(_pid, SIGTERM);
        for (int i = 0; i < 250; ++i) {
            if (::waitpid(_pid, nullptr, WNOHANG) == _pid) {
                _pid = -1;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        kill_hard();
    }
    if (!_dir.empty() && std::getenv("MESHCOORD_TEST_KEEP") == nullptr) {
        std::error_code ec;
        std::filesystem::remove_all(_dir, ec);
    }
}

http_reply meshcoord_process::request(const std::string& method, const std::string& target, const std::string& body,
                                      const std::map<std::string, std::string>& headers) const {
    asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(10));
    beast::error_code ec;
    stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), _port), ec);
    if (ec) return {0, "connect: " + ec.message()};
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [name, value] : headers) req.set(name, value);
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    http::write(stream, req, ec);
    if (ec) return {0, "write: " + ec.message()};
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    http::read(stream, buffer, parser, ec);
    if (ec) return {0, "read: " + ec.message()};
    return {parser.get().result_int(), parser.get().body()};
}

http_reply meshcoord_process::admin(const std::string& method, const std::string& target, const std::string& body) const {
    return request(method, target, body, {{"Authorization", "Bearer " + _token}});
}

test_node::test_node() : _secret(crypto::generate_private_key()), _public(crypto::derive_public_key(_secret)) {}

std::string test_node::public_key_base64() const { return crypto::key_to_base64(_public); }

std::map<std::string, std::string> test_node::sign(const meshcoord_process& server, const std::string& method,
                                                   const std::string& target, const std::string& body) {
    // The key is cached per server key, as meshfwd's coord session does: one X25519 per server.
    if (!_request_key || _request_key_server != server.server_key()) {
        auto key = coord::request_key(_secret, server.server_key());
        if (!key) throw std::runtime_error("request_key: " + key.error_message());
        _request_key = std::move(*key);
        _request_key_server = server.server_key();
    }
    const auto& key = _request_key;
    _counter = std::max<uint64_t>(static_cast<uint64_t>(coord::unix_us()), _counter + 1);
    auto headers = coord::sign_request(*key, _public, method, target, _counter, body);
    return {{std::string(coord::header_node), headers.node},
            {std::string(coord::header_counter), headers.counter},
            {std::string(coord::header_mac), headers.mac}};
}

http_reply test_node::send(const meshcoord_process& server, const std::string& method, const std::string& target,
                           const std::string& body) {
    return server.request(method, target, body, sign(server, method, target, body));
}

struct event_stream::impl {
    asio::io_context io;
    websocket::stream<beast::tcp_stream> ws{io};
    beast::flat_buffer buffer;
    bool reading = false;
    bool done = false;
    beast::error_code result;
};

result<std::unique_ptr<event_stream>> event_stream::open(const meshcoord_process& server, const std::string& network,
                                                         test_node* node, int64_t since_version) {
    auto stream = std::unique_ptr<event_stream>(new event_stream());
    stream->_impl = std::make_unique<impl>();
    auto& s = *stream->_impl;
    beast::error_code ec;
    beast::get_lowest_layer(s.ws).expires_after(std::chrono::seconds(10));
    beast::get_lowest_layer(s.ws).connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server.port()), ec);
    if (ec) return error{"connect: " + ec.message()};
    const std::string target = "/api/v1/mesh/networks/" + network + "/events";
    std::map<std::string, std::string> headers;
    if (node) {
        headers = node->sign(server, "GET", target, "");
    } else {
        headers["Authorization"] = "Bearer " + server.token();
    }
    s.ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
        for (const auto& [name, value] : headers) req.set(name, value);
    }));
    websocket::response_type response;
    s.ws.handshake(response, "127.0.0.1", target, ec);
    if (ec) return error{"handshake: " + ec.message() + " (HTTP " + std::to_string(response.result_int()) + " " + response.body() + ")"};
    beast::get_lowest_layer(s.ws).expires_never();
    const std::string subscribe = nlohmann::json{{"since_version", since_version}}.dump();
    s.ws.write(asio::buffer(subscribe), ec);
    if (ec) return error{"subscribe: " + ec.message()};
    return stream;
}

event_stream::~event_stream() = default;

result<std::string> event_stream::next(int timeout_ms) {
    auto& s = *_impl;
    // A read that outlives a timeout stays outstanding for the next call (cancelling a
    // WebSocket read would close the stream).
    if (!s.reading) {
        s.reading = true;
        s.done = false;
        s.ws.async_read(s.buffer, [&s](beast::error_code ec, std::size_t) {
            s.result = ec;
            s.done = true;
        });
    }
    s.io.restart();
    s.io.run_for(std::chrono::milliseconds(timeout_ms));
    if (!s.done) return error{"no message within " + std::to_string(timeout_ms) + " ms"};
    s.reading = false;
    if (s.result) return error{"closed: " + s.result.message()};
    std::string text = beast::buffers_to_string(s.buffer.data());
    s.buffer.consume(s.buffer.size());
    return text;
}

} // namespace meshfwd::test
