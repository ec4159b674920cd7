// UDP socket for `meshctl ping`. Main thread.
#include "tools/meshctl_udp.h"

#include <arpa/inet.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <cstring>

namespace meshfwd::meshctl {

result<udp_socket> udp_socket::open(const endpoint& peer, uint16_t listen_port) {
    sockaddr_storage remote{};
    const socklen_t remote_len = peer.to_sockaddr(remote);
    const int fd = ::socket(remote.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
    if (fd < 0) {
        return make_error(std::string("cannot create UDP socket: ") + std::strerror(errno));
    }
    udp_socket sock(fd);
    sockaddr_storage local{};
    socklen_t local_len = 0;
    if (peer.address().is_v6()) {
        auto* v6 = reinterpret_cast<sockaddr_in6*>(&local);
        v6->sin6_family = AF_INET6;
        v6->sin6_addr = in6addr_any;
        v6->sin6_port = htons(listen_port);
        local_len = sizeof(sockaddr_in6);
    } else {
        auto* v4 = reinterpret_cast<sockaddr_in*>(&local);
        v4->sin_family = AF_INET;
        v4->sin_addr.s_addr = htonl(INADDR_ANY);
        v4->sin_port = htons(listen_port);
        local_len = sizeof(sockaddr_in);
    }
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&local), local_len) != 0) {
        return make_error("cannot bind UDP port " + std::to_string(listen_port) + ": " + std::strerror(errno));
    }
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&remote), remote_len) != 0) {
        return make_error("cannot reach " + peer.to_string() + ": " + std::strerror(errno));
    }
    return sock;
}

udp_socket& udp_socket::operator=(udp_socket&& other) noexcept {
    if (this != &other) {
        if (_fd >= 0) {
            ::close(_fd);
        }
        _fd = other._fd;
        other._fd = -1;
    }
    return *this;
}

udp_socket::~udp_socket() {
    if (_fd >= 0) {
        ::close(_fd);
    }
}

result<void> udp_socket::send(std::span<const uint8_t> datagram) {
    const ssize_t n = ::send(_fd, datagram.data(), datagram.size(), 0);
    if (n < 0) {
        return make_error(std::string("UDP send failed: ") + std::strerror(errno));
    }
    return {};
}

udp_socket::received udp_socket::recv(std::span<uint8_t> buf, std::chrono::milliseconds wait) {
    received r;
    pollfd pfd{_fd, POLLIN, 0};
    const int ms = wait.count() < 0 ? 0 : static_cast<int>(wait.count());
    const int ready = ::poll(&pfd, 1, ms);
    if (ready == 0 || (ready < 0 && errno == EINTR)) {
        r.status = recv_status::timeout;
        return r;
    }
    if (ready < 0) {
        r.status = recv_status::error;
        r.err = errno;
        return r;
    }
    const ssize_t n = ::recv(_fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) {
        r.err = errno;
        if (errno == EAGAIN || errno == EINTR) {
            r.status = recv_status::timeout;
        } else if (errno == ECONNREFUSED) {
            r.status = recv_status::refused;
        } else {
            r.status = recv_status::error;
        }
        return r;
    }
    r.status = recv_status::ok;
    r.len = static_cast<size_t>(n);
    return r;
}

uint16_t udp_socket::local_port() const {
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    if (::getsockname(_fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) {
        return 0;
    }
    if (local.ss_family == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&local)->sin6_port);
    }
    return ntohs(reinterpret_cast<const sockaddr_in*>(&local)->sin_port);
}

} // namespace meshfwd::meshctl
