// Underlay UDP socket set-up (see udp_socket.h). Main/control thread only.
#include "dataplane/udp_socket.h"

#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace meshfwd::dataplane {

udp_socket& udp_socket::operator=(udp_socket&& other) noexcept {
    if (this != &other) {
        if (fd >= 0) {
            ::close(fd);
        }
        fd = std::exchange(other.fd, -1);
        port = std::exchange(other.port, 0);
        local = other.local;
        gro = std::exchange(other.gro, false);
        gso = std::exchange(other.gso, false);
        dual_stack = std::exchange(other.dual_stack, false);
        rcvbuf = std::exchange(other.rcvbuf, 0);
        sndbuf = std::exchange(other.sndbuf, 0);
    }
    return *this;
}

udp_socket::~udp_socket() {
    if (fd >= 0) {
        ::close(fd);
    }
}

namespace {

std::string errno_text(int err) { return std::strerror(err); }

bool set_int(int fd, int level, int name, int value) {
    return ::setsockopt(fd, level, name, &value, sizeof(value)) == 0;
}

int get_int(int fd, int level, int name) {
    int value = 0;
    socklen_t len = sizeof(value);
    return ::getsockopt(fd, level, name, &value, &len) == 0 ? value : 0;
}

// One buffer: the FORCE variant ignores net.core.{r,w}mem_max but needs CAP_NET_ADMIN.
result<void> set_buffer(int fd, int force_name, int plain_name, int bytes, const char* which) {
    if (set_int(fd, SOL_SOCKET, force_name, bytes)) {
        return {};
    }
    if (errno != EPERM) {
        return make_error(std::string(which) + "FORCE " + std::to_string(bytes) + ": " + errno_text(errno));
    }
    if (!set_int(fd, SOL_SOCKET, plain_name, bytes)) {
        return make_error(std::string(which) + " " + std::to_string(bytes) + ": " + errno_text(errno));
    }
    return {};
}

// Everything but the IPv6 fallback; *err gets the errno of a failed socket() or bind().
result<udp_socket> open_as(const udp_socket_options& o, int* err) {
    *err = 0;
    const bool v6 = o.bind.address().is_v6();
    const std::string where = "UDP socket " + o.bind.to_string();
    udp_socket s;
    s.fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
    if (s.fd < 0) {
        *err = errno;
        return make_error(where + ": socket: " + errno_text(*err));
    }
    if (v6 && !set_int(s.fd, IPPROTO_IPV6, IPV6_V6ONLY, 0)) {
        return make_error(where + ": IPV6_V6ONLY 0: " + errno_text(errno));
    }
    if (o.reuseport && !set_int(s.fd, SOL_SOCKET, SO_REUSEPORT, 1)) {
        return make_error(where + ": SO_REUSEPORT: " + errno_text(errno));
    }
    if (o.buffer_bytes < 0) {
        return make_error(where + ": buffer size " + std::to_string(o.buffer_bytes) + " is negative");
    }
    if (o.buffer_bytes > 0) {
        if (auto r = set_buffer(s.fd, SO_RCVBUFFORCE, SO_RCVBUF, o.buffer_bytes, "SO_RCVBUF"); !r) {
            return make_error(where + ": " + r.error_message());
        }
        if (auto r = set_buffer(s.fd, SO_SNDBUFFORCE, SO_SNDBUF, o.buffer_bytes, "SO_SNDBUF"); !r) {
            return make_error(where + ": " + r.error_message());
        }
    }
    s.rcvbuf = get_int(s.fd, SOL_SOCKET, SO_RCVBUF);
    s.sndbuf = get_int(s.fd, SOL_SOCKET, SO_SNDBUF);

    // No DF bit and no EMSGSIZE from cached path MTUs: like WireGuard, let the underlay fragment.
    // On an IPv6 socket IP_MTU_DISCOVER covers its v4-mapped traffic; failure there is harmless.
    if (v6) {
        if (!set_int(s.fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DONT)) {
            return make_error(where + ": IPV6_MTU_DISCOVER: " + errno_text(errno));
        }
        (void)set_int(s.fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT);
    } else if (!set_int(s.fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)) {
        return make_error(where + ": IP_MTU_DISCOVER: " + errno_text(errno));
    }

    if (o.gro) {
        if (set_int(s.fd, SOL_UDP, UDP_GRO, 1)) {
            s.gro = true;
        } else if (errno != ENOPROTOOPT) { // ENOPROTOOPT: kernel before 5.0, run without GRO
            return make_error(where + ": UDP_GRO: " + errno_text(errno));
        }
    }
    // The destination address of every datagram, for source-address stickiness (local_address.h).
    // On the dual-stack socket IPV6_RECVPKTINFO reports IPv4 datagrams too (v4-mapped).
    if (!(v6 ? set_int(s.fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1) : set_int(s.fd, IPPROTO_IP, IP_PKTINFO, 1))) {
        return make_error(where + (v6 ? ": IPV6_RECVPKTINFO: " : ": IP_PKTINFO: ") + errno_text(errno));
    }
    // Reading UDP_SEGMENT works exactly where sending with it does (Linux 4.18+).
    int segment = 0;
    socklen_t segment_len = sizeof(segment);
    s.gso = ::getsockopt(s.fd, SOL_UDP, UDP_SEGMENT, &segment, &segment_len) == 0;

    sockaddr_storage addr{};
    const socklen_t addr_len = o.bind.to_sockaddr(addr);
    if (::bind(s.fd, reinterpret_cast<const sockaddr*>(&addr), addr_len) != 0) {
        *err = errno;
        std::string hint;
        if (*err == EADDRINUSE) {
            hint = o.reuseport ? " (taken by a socket without SO_REUSEPORT or of another user)"
                               : " (another socket holds this port)";
        }
        return make_error(where + ": bind: " + errno_text(*err) + hint);
    }
    socklen_t bound_len = sizeof(addr);
    if (::getsockname(s.fd, reinterpret_cast<sockaddr*>(&addr), &bound_len) != 0) {
        return make_error(where + ": getsockname: " + errno_text(errno));
    }
    const auto bound = endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&addr), bound_len);
    if (!bound) {
        return make_error(where + ": getsockname returned an unexpected address family");
    }
    s.local = *bound;
    s.port = bound->port();
    s.dual_stack = v6 && o.bind.address() == ip_address::v6({});
    return s;
}

} // namespace

result<udp_socket> open_udp_socket(const udp_socket_options& options) {
    int err = 0;
    auto r = open_as(options, &err);
    if (!r && err == EAFNOSUPPORT && options.bind.address() == ip_address::v6({})) {
        // A host without IPv6 (ipv6.disable=1): the wildcard bind still means "every address".
        udp_socket_options v4 = options;
        v4.bind = endpoint(ip_address{}, options.bind.port());
        return open_as(v4, &err);
    }
    return r;
}

result<void> check_udp_port_free(const endpoint& bind) {
    udp_socket_options o;
    o.bind = bind;
    o.reuseport = false;
    o.buffer_bytes = 0;
    o.gro = false;
    int err = 0;
    auto r = open_as(o, &err);
    if (!r && err == EAFNOSUPPORT && bind.address() == ip_address::v6({})) {
        o.bind = endpoint(ip_address{}, bind.port());
        r = open_as(o, &err);
    }
    if (r) {
        return {}; // closed here: the caller binds its SO_REUSEPORT group next
    }
    if (err == EADDRINUSE) {
        return make_error("UDP port " + std::to_string(bind.port()) +
                          " is held by another process (another meshfwd or WireGuard on the same port?)");
    }
    return make_error(r.error_message());
}

} // namespace meshfwd::dataplane
