// Socket addresses and endpoint matching for peers (see peer.h). Any thread.
#include "dataplane/peer.h"

#include <arpa/inet.h>

namespace meshfwd::dataplane {

uint16_t socket_address::port() const noexcept {
    switch (storage.any.sa_family) {
    case AF_INET: return ntohs(storage.v4.sin_port);
    case AF_INET6: return ntohs(storage.v6.sin6_port);
    default: return 0;
    }
}

void socket_address::set_port(uint16_t host_order) noexcept {
    if (storage.any.sa_family == AF_INET) {
        storage.v4.sin_port = htons(host_order);
    } else if (storage.any.sa_family == AF_INET6) {
        storage.v6.sin6_port = htons(host_order);
    }
}

bool socket_address::same_host(const socket_address& other) const noexcept {
    if (storage.any.sa_family != other.storage.any.sa_family) {
        return false;
    }
    if (storage.any.sa_family == AF_INET) {
        return storage.v4.sin_addr.s_addr == other.storage.v4.sin_addr.s_addr;
    }
    if (storage.any.sa_family == AF_INET6) {
        return std::memcmp(&storage.v6.sin6_addr, &other.storage.v6.sin6_addr, 16) == 0 &&
               storage.v6.sin6_scope_id == other.storage.v6.sin6_scope_id;
    }
    return false;
}

bool socket_address::operator==(const socket_address& other) const noexcept {
    return same_host(other) && port() == other.port();
}

socket_address socket_address::from(const endpoint& e, bool dual_stack) noexcept {
    socket_address out;
    const ip_address a = e.address().unmapped();
    if (a.is_v4() && !dual_stack) {
        out.storage.v4.sin_family = AF_INET;
        out.storage.v4.sin_port = htons(e.port());
        std::memcpy(&out.storage.v4.sin_addr, a.bytes().data(), 4);
        out.length = sizeof(sockaddr_in);
        return out;
    }
    out.storage.v6.sin6_family = AF_INET6;
    out.storage.v6.sin6_port = htons(e.port());
    if (a.is_v4()) {
        uint8_t* b = out.storage.v6.sin6_addr.s6_addr;
        b[10] = 0xff;
        b[11] = 0xff;
        std::memcpy(b + 12, a.bytes().data(), 4);
    } else {
        std::memcpy(out.storage.v6.sin6_addr.s6_addr, a.bytes().data(), 16);
    }
    out.length = sizeof(sockaddr_in6);
    return out;
}

endpoint socket_address::to_endpoint() const noexcept {
    if (auto e = endpoint::from_sockaddr(get(), length)) {
        return endpoint(e->address().unmapped(), e->port());
    }
    return endpoint();
}

bool peer_endpoint::matches(const socket_address& source) const noexcept {
    if (!address.same_host(source)) {
        return false;
    }
    const uint16_t port = source.port();
    if (port == address.port()) {
        return true;
    }
    for (uint32_t i = 0; i < lane_count; ++i) {
        if (lanes[i] == port) {
            return true;
        }
    }
    return false;
}

}  // namespace meshfwd::dataplane
