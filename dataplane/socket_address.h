// A UDP socket address as the workers' sockets use it. Plain value; any thread.
#pragma once
#include "lib/ip_address.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>

namespace meshfwd::dataplane {

// A socket address as the worker's sockets use it (IPv4-mapped IPv6 on a dual-stack socket).
struct socket_address {
    union {
        sockaddr any;
        sockaddr_in v4;
        sockaddr_in6 v6;
    } storage;
    socklen_t length = 0;

    // Zeroes the whole union: `storage{}` would only initialise its first (16-byte) member and
    // leave the rest of an IPv6 address undefined.
    socket_address() noexcept { std::memset(&storage, 0, sizeof(storage)); }

    [[nodiscard]] const sockaddr* get() const noexcept { return &storage.any; }
    [[nodiscard]] sockaddr* get() noexcept { return &storage.any; }
    [[nodiscard]] uint16_t port() const noexcept;  // host order; 0 for an unknown family
    void set_port(uint16_t host_order) noexcept;
    // Same address (ignoring the port).
    [[nodiscard]] bool same_host(const socket_address& other) const noexcept;
    [[nodiscard]] bool operator==(const socket_address& other) const noexcept;
    // For a socket of this family: `dual_stack` maps IPv4 into IPv6 (::ffff:a.b.c.d).
    [[nodiscard]] static socket_address from(const endpoint& e, bool dual_stack) noexcept;
    [[nodiscard]] endpoint to_endpoint() const noexcept;
};

}  // namespace meshfwd::dataplane
