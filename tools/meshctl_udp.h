// A blocking UDP socket connected to one WireGuard peer, for `meshctl ping`. Main thread.
//
// Connected on purpose: the kernel drops datagrams from anyone but the peer, and an ICMP port
// unreachable comes back as ECONNREFUSED, which tells the operator nothing listens there.
#pragma once

#include "lib/ip_address.h"
#include "lib/result.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>

namespace meshfwd::meshctl {

class udp_socket {
public:
    // Binds to listen_port (0: any free port) on the wildcard address of the peer's family
    // and connects to peer.
    [[nodiscard]] static result<udp_socket> open(const endpoint& peer, uint16_t listen_port);

    udp_socket(udp_socket&& other) noexcept : _fd(other._fd) { other._fd = -1; }
    udp_socket& operator=(udp_socket&& other) noexcept;
    udp_socket(const udp_socket&) = delete;
    udp_socket& operator=(const udp_socket&) = delete;
    ~udp_socket();

    [[nodiscard]] result<void> send(std::span<const uint8_t> datagram);

    enum class recv_status { ok, timeout, refused, error };
    struct received {
        recv_status status = recv_status::timeout;
        size_t len = 0;
        int err = 0;  // errno for refused/error
    };
    // Waits at most `wait` for one datagram into buf (a longer one is truncated).
    [[nodiscard]] received recv(std::span<uint8_t> buf, std::chrono::milliseconds wait);

    [[nodiscard]] uint16_t local_port() const;

private:
    explicit udp_socket(int fd) noexcept : _fd(fd) {}
    int _fd = -1;
};

} // namespace meshfwd::meshctl
