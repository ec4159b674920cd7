// Handshake rate limiter (see handshake_limiter.h). Control thread only.
#include "control/handshake_limiter.h"

#include <algorithm>
#include <cstring>

namespace meshfwd::control {
namespace {

constexpr int64_t packet_cost_ns = 1'000'000'000 / handshake_limiter::packets_per_second;
constexpr int64_t bucket_size_ns = packet_cost_ns * handshake_limiter::burst;

uint64_t key_of(const ip_address& a) {
    const ip_address u = a.unmapped();
    const auto b = u.bytes();
    uint64_t k = 0;
    if (u.is_v4()) {
        std::memcpy(&k, b.data(), 4);
        return k;
    }
    std::memcpy(&k, b.data(), 8);  // the /64
    return k ^ 0x8000000000000000ull ^ 0x6;  // keep IPv6 keys apart from IPv4 ones
}

}  // namespace

bool handshake_limiter::allow(const ip_address& source, crypto::mono_time now) {
    if (now - _last_collect > std::chrono::seconds(1)) {
        collect(now);
    }
    auto [it, fresh] = _buckets.try_emplace(key_of(source), bucket{bucket_size_ns - packet_cost_ns, now});
    if (fresh) {
        return true;
    }
    bucket& b = it->second;
    const int64_t elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(now - b.last).count();
    b.tokens_ns = std::min(bucket_size_ns, b.tokens_ns + std::max<int64_t>(elapsed, 0));
    b.last = now;
    if (b.tokens_ns >= packet_cost_ns) {
        b.tokens_ns -= packet_cost_ns;
        return true;
    }
    return false;
}

void handshake_limiter::collect(crypto::mono_time now) {
    _last_collect = now;
    std::erase_if(_buckets, [&](const auto& kv) { return now - kv.second.last > std::chrono::seconds(1); });
}

}  // namespace meshfwd::control
