// The UAPI socket server (see uapi_server.h for the threads and files).
#include "control/uapi_server.h"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace meshfwd::control {
namespace {

// A client that stalls this long mid-request or mid-reply is dropped (one connection at a time).
constexpr int io_timeout_ms = 10'000;

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

bool fill_address(const std::filesystem::path& path, sockaddr_un& sa) {
    sa = {};
    sa.sun_family = AF_UNIX;
    const std::string s = path.string();
    if (s.size() >= sizeof(sa.sun_path)) {
        return false;
    }
    std::memcpy(sa.sun_path, s.c_str(), s.size() + 1);
    return true;
}

// True when a process accepts connections on `path`.
bool socket_answers(const sockaddr_un& sa) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    const bool live = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) == 0;
    ::close(fd);
    return live;
}

// Waits for `events` on fd or for stop_fd; false on timeout, stop or error.
bool wait_for(int fd, short events, int stop_fd) {
    pollfd fds[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
    for (;;) {
        const int rc = ::poll(fds, 2, io_timeout_ms);
        if (rc < 0 && errno == EINTR) {
            continue;
        }
        return rc > 0 && (fds[1].revents & POLLIN) == 0 && (fds[0].revents & (events | POLLHUP | POLLERR)) != 0;
    }
}

bool write_all(int fd, std::string_view text, int stop_fd) {
    while (!text.empty()) {
        const ssize_t n = ::send(fd, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            text.remove_prefix(static_cast<std::size_t>(n));
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!wait_for(fd, POLLOUT, stop_fd)) {
                return false;
            }
        } else {
            return false;
        }
    }
    return true;
}

}  // namespace

uapi_server::uapi_server(handler h, int listen_fd, int wake_fd, int stop_fd, std::filesystem::path path)
    : _handler(std::move(h)), _listen_fd(listen_fd), _wake_fd(wake_fd), _stop_fd(stop_fd), _path(std::move(path)) {}

result<std::unique_ptr<uapi_server>> uapi_server::start(const std::string& interface, handler h,
                                                        const std::filesystem::path& directory) {
    if (interface.empty() || interface.find('/') != std::string::npos) {
        return make_error("UAPI: bad interface name '" + interface + "'");
    }
    if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST) {
        return make_error(errno_text("UAPI: mkdir " + directory.string()));
    }
    const std::filesystem::path path = directory / (interface + ".sock");
    sockaddr_un sa{};
    if (!fill_address(path, sa)) {
        return make_error("UAPI: socket path " + path.string() + " is too long");
    }
    if (socket_answers(sa)) {
        return make_error("UAPI: " + path.string() + " is in use by another process");
    }
    ::unlink(path.c_str());  // stale (nothing answers on it) or absent
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return make_error(errno_text("UAPI: socket"));
    }
    // Created 0600 from the start (umask), not chmod-ed after: no window where others may connect.
    const mode_t old_mask = ::umask(0177);
    const int bound = ::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa));
    const int bind_errno = errno;
    ::umask(old_mask);
    if (bound != 0 || ::listen(fd, 16) != 0) {
        errno = bound != 0 ? bind_errno : errno;
        const std::string why = errno_text("UAPI: " + path.string());
        ::close(fd);
        return make_error(why);
    }
    struct stat st{};
    ::stat(path.c_str(), &st);
    const int wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    const int stop = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake < 0 || stop < 0) {
        const std::string why = errno_text("UAPI: eventfd");
        ::close(fd);
        if (wake >= 0) ::close(wake);
        if (stop >= 0) ::close(stop);
        ::unlink(path.c_str());
        return make_error(why);
    }
    std::unique_ptr<uapi_server> self(new uapi_server(std::move(h), fd, wake, stop, path));
    self->_inode = st.st_ino;
    self->_thread = std::thread([s = self.get()] { s->serve(); });
    return self;
}

uapi_server::~uapi_server() {
    {
        std::lock_guard lock(_mutex);
        _stopping = true;
    }
    _answered.notify_all();
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(_stop_fd, &one, sizeof(one));
    if (_thread.joinable()) {
        _thread.join();
    }
    struct stat st{};
    if (::stat(_path.c_str(), &st) == 0 && st.st_ino == _inode) {
        ::unlink(_path.c_str());
    }
    ::close(_listen_fd);
    ::close(_wake_fd);
    ::close(_stop_fd);
}

void uapi_server::poll() {
    uint64_t value = 0;
    [[maybe_unused]] const ssize_t n = ::read(_wake_fd, &value, sizeof(value));
    for (;;) {
        std::shared_ptr<pending> p;
        {
            std::lock_guard lock(_mutex);
            if (_queue.empty()) {
                return;
            }
            p = std::move(_queue.front());
            _queue.pop_front();
        }
        std::string reply = _handler(p->req);
        {
            std::lock_guard lock(_mutex);
            p->reply = std::move(reply);
            p->answered = true;
        }
        _answered.notify_all();
    }
}

std::string uapi_server::handoff(uapi::request req) {
    auto p = std::make_shared<pending>();
    p->req = std::move(req);
    {
        std::lock_guard lock(_mutex);
        if (_stopping) {
            return uapi::format_errno(ESHUTDOWN);
        }
        _queue.push_back(p);
    }
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(_wake_fd, &one, sizeof(one));
    std::unique_lock lock(_mutex);
    _answered.wait(lock, [&] { return p->answered || _stopping; });
    return p->answered ? std::move(p->reply) : uapi::format_errno(ESHUTDOWN);
}

void uapi_server::serve() noexcept {
    for (;;) {
        pollfd fds[2] = {{_listen_fd, POLLIN, 0}, {_stop_fd, POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0 && errno != EINTR) {
            spdlog::error("UAPI: poll: {}", std::strerror(errno));
            return;
        }
        if (fds[1].revents & POLLIN) {
            return;
        }
        if ((fds[0].revents & POLLIN) == 0) {
            continue;
        }
        const int fd = ::accept4(_listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            continue;
        }
        try {
            serve_connection(fd);
        } catch (const std::exception& e) {  // bad_alloc on a huge request: drop that client only
            spdlog::warn("UAPI: connection dropped: {}", e.what());
        }
        ::close(fd);
    }
}

void uapi_server::serve_connection(int fd) {
    std::string buffered;
    bool eof = false;
    for (;;) {
        std::size_t end = uapi::request_end(buffered);
        while (end == std::string_view::npos && !eof) {
            if (buffered.size() > uapi::max_request_bytes) {
                // Far too long: refuse at once rather than read the rest.
                write_all(fd, uapi::format_errno(EMSGSIZE), _stop_fd);
                return;
            }
            const std::size_t old = buffered.size();
            buffered.resize(old + 65536);
            const ssize_t n = ::recv(fd, buffered.data() + old, 65536, 0);
            buffered.resize(old + (n > 0 ? static_cast<std::size_t>(n) : 0));
            if (n == 0) {
                eof = true;
            } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                if (!wait_for(fd, POLLIN, _stop_fd)) {
                    return;  // stalled client or shutdown
                }
            } else if (n < 0) {
                return;
            } else {
                // Only the new bytes (and the one before) can complete the first "\n\n".
                if (buffered.front() == '\n') {
                    end = 1;
                } else if (const auto at = buffered.find("\n\n", old > 0 ? old - 1 : 0); at != std::string::npos) {
                    end = at + 2;
                }
            }
        }
        if (buffered.empty() && eof) {
            return;
        }
        const std::string_view text =
            end == std::string_view::npos ? std::string_view(buffered) : std::string_view(buffered).substr(0, end);
        uapi::request req = uapi::parse_request(text);
        std::string reply;
        if (const auto* e = std::get_if<uapi::error>(&req)) {
            spdlog::warn("UAPI {}: refused: {}", _path.filename().string(), e->message);
            reply = uapi::format_errno(e->code);
        } else {
            reply = handoff(std::move(req));
        }
        if (!write_all(fd, reply, _stop_fd) || end == std::string_view::npos) {
            return;
        }
        buffered.erase(0, end);
    }
}

}  // namespace meshfwd::control
