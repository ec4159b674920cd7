// The local HTTP API server: cpp-httplib threads accept and parse requests, the control thread
// answers them through poll(). See api_server.h for the threads and the routes.
#include "control/api_server.h"

#include "control/metrics_text.h"

#include <httplib.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace meshfwd::control {
namespace {

using json = nlohmann::json;

constexpr std::string_view json_content_type = "application/json";
// A local API needs few threads; the default pool is sized to the machine (up to ~cores).
constexpr size_t server_threads = 4;
// Bounds how long a stalled client can hold a server thread, and so how long shutdown can take.
constexpr time_t io_timeout_sec = 2;
constexpr time_t first_request_timeout_sec = 1;
// Requests beyond this many waiting for the control thread get 503 at once.
constexpr size_t max_queued = 64;

// JSON text that cannot throw: invalid UTF-8 in a string is replaced, not refused.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"; }

std::string error_body(std::string_view message) { return dump(json{{"error", message}}); }

// Why binding `at` fails, from a plain socket with the same options httplib's uses; httplib
// itself only reports false.
std::string bind_error(const endpoint& at) {
    sockaddr_storage ss{};
    const socklen_t len = at.to_sockaddr(ss);
    const int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return std::strerror(errno);
    }
    const int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    std::string why = "cannot listen";
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&ss), len) != 0) {
        why = std::strerror(errno);
    } else if (::listen(fd, 1) != 0) {
        why = std::strerror(errno);
    }
    ::close(fd);
    return why;
}

} // namespace

api_server::api_server(providers p, int wake_fd) : _providers(std::move(p)), _wake_fd(wake_fd) {}

result<std::unique_ptr<api_server>> api_server::start(const endpoint& listen, providers p) {
    if (!p.status || !p.peers) {
        return make_error("api: both providers (status, peers) are required");
    }
    const int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0) {
        return make_error(std::string("api: eventfd: ") + std::strerror(errno));
    }
    std::unique_ptr<api_server> self(new api_server(std::move(p), efd));
    api_server* const s = self.get();

    auto server = std::make_unique<httplib::Server>();
    server->new_task_queue = [] { return new httplib::ThreadPool(server_threads); };
    // httplib's default is SO_REUSEPORT, which would let a second meshfwd share our port silently.
    server->set_socket_options([](int fd) {
        const int yes = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    // One request per connection, and short timeouts: a stalled client cannot delay shutdown long.
    server->set_keep_alive_max_count(1);
    server->set_keep_alive_timeout(first_request_timeout_sec);
    server->set_read_timeout(io_timeout_sec, 0);
    server->set_write_timeout(io_timeout_sec, 0);
    server->set_payload_max_length(64 * 1024);
    // All routing here, before httplib's own (which would answer 404 to a POST on a GET path).
    server->set_pre_routing_handler([s](const httplib::Request& req, httplib::Response& res) {
        int code = 0;
        std::string type(json_content_type);
        std::string body;
        if (req.method != "GET") {
            code = 405;
            res.set_header("Allow", "GET");
            body = error_body("method " + req.method + " not allowed; the API is read-only (GET)");
        } else if (req.path == "/v1/status") {
            s->handoff(route::status, code, type, body);
        } else if (req.path == "/v1/peers") {
            s->handoff(route::peers, code, type, body);
        } else if (req.path == "/metrics") {
            s->handoff(route::metrics, code, type, body);
        } else {
            code = 404;
            body = error_body("no such path: " + req.path + " (try /v1/status, /v1/peers, /metrics)");
        }
        res.status = code;
        res.set_content(body, type.c_str());
        return httplib::Server::HandlerResponse::Handled;
    });

    const std::string host = listen.address().to_string();
    int port = listen.port();
    bool bound = false;
    if (port == 0) {
        port = server->bind_to_any_port(host);
        bound = port > 0;
    } else {
        bound = server->bind_to_port(host, port);
    }
    if (!bound) {
        return make_error("api: cannot listen on " + listen.to_string() + ": " + bind_error(listen));
    }
    s->_port = static_cast<uint16_t>(port);
    s->_server = std::move(server);

    s->_thread = std::thread([s] {
        s->_server->listen_after_bind();
        s->_listen_exited.store(true);
    });
    // httplib's stop() is a no-op until the listen loop has started (it sets is_running first
    // thing), so wait for that here; the destructor could otherwise miss it and join forever.
    while (!s->_server->is_running() && !s->_listen_exited.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (s->_listen_exited.load()) {
        return make_error("api: the HTTP server on " + listen.to_string() + " stopped at once");
    }
    return self;
}

api_server::~api_server() {
    {
        std::lock_guard lock(_mutex);
        _stopping = true;
    }
    _answered.notify_all();
    if (_server) {
        _server->stop();
    }
    if (_thread.joinable()) {
        _thread.join();
    }
    if (_wake_fd >= 0) {
        ::close(_wake_fd);
    }
}

void api_server::handoff(route what, int& http_status, std::string& content_type, std::string& body) {
    auto req = std::make_shared<request>();
    req->what = what;
    std::unique_lock lock(_mutex);
    // Requests whose waiters gave up are dead weight if the control thread is stuck.
    std::erase_if(_queue, [](const auto& r) { return r->abandoned; });
    if (_stopping || _queue.size() >= max_queued) {
        http_status = 503;
        body = error_body(_stopping ? "meshfwd is shutting down" : "too many requests waiting for meshfwd");
        return;
    }
    _queue.push_back(req);
    const uint64_t one = 1;
    // Cannot fail short of a counter overflow (2^64 - 1 requests); poll() drains it.
    [[maybe_unused]] const ssize_t n = ::write(_wake_fd, &one, sizeof(one));

    const bool done = _answered.wait_for(lock, answer_timeout, [&] { return req->answered || _stopping; });
    if (done && req->answered) {
        http_status = req->http_status;
        content_type = std::move(req->content_type);
        body = std::move(req->body);
        return;
    }
    req->abandoned = true;
    http_status = 503;
    body = error_body(_stopping ? "meshfwd is shutting down"
                                : "meshfwd's control thread did not answer within 2 s (busy or stuck)");
}

void api_server::answer(request& req) const {
    try {
        switch (req.what) {
        case route::status:
            req.body = dump(_providers.status());
            req.content_type = json_content_type;
            break;
        case route::peers:
            req.body = dump(_providers.peers());
            req.content_type = json_content_type;
            break;
        case route::metrics:
            req.body = prometheus_text(_providers.status(), _providers.peers());
            req.content_type = prometheus_content_type;
            break;
        }
        req.http_status = 200;
    } catch (const std::exception& e) {
        req.http_status = 500;
        req.content_type = json_content_type;
        req.body = error_body(std::string("meshfwd failed to build the answer: ") + e.what());
    } catch (...) {
        req.http_status = 500;
        req.content_type = json_content_type;
        req.body = error_body("meshfwd failed to build the answer");
    }
}

void api_server::poll() {
    uint64_t count = 0;
    // Drain before taking the queue: a request queued after this read leaves the fd readable.
    [[maybe_unused]] const ssize_t n = ::read(_wake_fd, &count, sizeof(count));
    std::deque<std::shared_ptr<request>> batch;
    {
        std::lock_guard lock(_mutex);
        batch.swap(_queue);
    }
    for (auto& req : batch) {
        {
            std::lock_guard lock(_mutex);
            if (req->abandoned) {
                continue;
            }
        }
        // Answer into a local copy: the waiter reads `req` under the lock.
        request answered{req->what};
        answer(answered);
        {
            std::lock_guard lock(_mutex);
            if (!req->abandoned) {
                req->http_status = answered.http_status;
                req->content_type = std::move(answered.content_type);
                req->body = std::move(answered.body);
                req->answered = true;
            }
        }
    }
    if (!batch.empty()) {
        _answered.notify_all();
    }
}

} // namespace meshfwd::control
