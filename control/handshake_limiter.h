// Per-source rate limit for handshake messages while the node is under load (the kernel's
// ratelimiter.c): a token bucket per source address (IPv4 /32, IPv6 /64) of INITIATIONS_PER_SECOND
// (20/s in the kernel's packets_per_second) with a burst of 5; idle entries are forgotten.
//
// Threads: control thread only.
#pragma once
#include "crypto/messages.h"
#include "lib/ip_address.h"

#include <cstdint>
#include <unordered_map>

namespace meshfwd::control {

class handshake_limiter {
public:
    static constexpr unsigned packets_per_second = 20;
    static constexpr unsigned burst = 5;

    // True when a message from `source` may be processed now.
    [[nodiscard]] bool allow(const ip_address& source, crypto::mono_time now);
    [[nodiscard]] std::size_t tracked() const noexcept { return _buckets.size(); }

private:
    struct bucket {
        int64_t tokens_ns;  // credit in nanoseconds of "packet cost"
        crypto::mono_time last;
    };
    void collect(crypto::mono_time now);

    std::unordered_map<uint64_t, bucket> _buckets;
    crypto::mono_time _last_collect{};
};

}  // namespace meshfwd::control
