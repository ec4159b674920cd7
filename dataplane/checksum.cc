// Internet checksum (RFC 1071). Any thread; no state.
//
// checksum_add sums native-order 64-bit words with end-around carry, folds to 16 bits and only
// then converts to network order: the one's complement sum commutes with byte swapping
// (RFC 1071 2(B)) and 2^64 = 1 (mod 0xffff), so this equals summing big-endian 16-bit words.
#include "dataplane/checksum.h"

#include <bit>
#include <cstring>

namespace meshfwd::dataplane {

namespace {

inline uint64_t add_carry(uint64_t a, uint64_t b) noexcept {
    const uint64_t s = a + b;
    return s + (s < b);  // end-around carry; cannot overflow again (s < b means s <= max - 1)
}

inline uint64_t load64(const uint8_t* p) noexcept {
    uint64_t v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}

// Folds a native-order accumulator to 16 bits, still in native word order.
inline uint16_t fold_native(uint64_t acc) noexcept {
    acc = (acc & 0xffffffffu) + (acc >> 32);  // <= 2^33
    acc = (acc & 0xffffffffu) + (acc >> 32);  // <= 2^32
    acc = (acc & 0xffffu) + (acc >> 16);
    acc = (acc & 0xffffu) + (acc >> 16);
    acc = (acc & 0xffffu) + (acc >> 16);
    return static_cast<uint16_t>(acc);
}

}  // namespace

uint64_t checksum_add(std::span<const uint8_t> data, uint64_t sum) noexcept {
    const uint8_t* p = data.data();
    std::size_t n = data.size();
    // Two accumulators let the adds of consecutive words overlap.
    uint64_t a = 0;
    uint64_t b = 0;
    while (n >= 32) {
        a = add_carry(a, load64(p));
        b = add_carry(b, load64(p + 8));
        a = add_carry(a, load64(p + 16));
        b = add_carry(b, load64(p + 24));
        p += 32;
        n -= 32;
    }
    while (n >= 8) {
        a = add_carry(a, load64(p));
        p += 8;
        n -= 8;
    }
    if (n > 0) {
        // Zero-padded tail keeps memory order, so an odd last byte is the high half of its word.
        uint8_t tail[8] = {};
        std::memcpy(tail, p, n);
        b = add_carry(b, load64(tail));
    }
    uint16_t folded = fold_native(add_carry(a, b));
    if constexpr (std::endian::native == std::endian::little) {
        folded = static_cast<uint16_t>((folded >> 8) | (folded << 8));
    }
    return sum + folded;
}

uint16_t checksum_fold(uint64_t sum) noexcept {
    return fold_native(sum);
}

uint64_t pseudo_header_sum(std::span<const uint8_t> src, std::span<const uint8_t> dst, uint8_t protocol,
                           uint32_t l4_length) noexcept {
    uint64_t sum = checksum_add(src);
    sum = checksum_add(dst, sum);
    // IPv4: zero, protocol, 16-bit length; IPv6: 32-bit length, 3 zero bytes, next header. Both
    // sum to protocol + length's two halves.
    return sum + protocol + (l4_length >> 16) + (l4_length & 0xffffu);
}

uint16_t ipv4_header_checksum(std::span<const uint8_t> header) noexcept {
    uint64_t sum = 0;
    if (header.size() >= 12) {
        sum = checksum_add(header.first(10));
        sum = checksum_add(header.subspan(12), sum);
    } else {
        sum = checksum_add(header);
    }
    return static_cast<uint16_t>(~checksum_fold(sum));
}

}  // namespace meshfwd::dataplane
