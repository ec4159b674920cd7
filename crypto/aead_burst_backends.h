// Internal to the aead_burst backends: factories, the one-message libsodium fallback and the chunk
// partition step shared by both backends. Called from the thread that owns the aead_burst instance.
#pragma once

#include "crypto/aead.h"
#include "crypto/aead_burst.h"

#include <sodium.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace meshfwd::crypto::burst_detail {

// Ops are processed in chunks of this size (intel-ipsec-mb's IMB_MAX_BURST_SIZE).
constexpr std::size_t chunk_size = 128;

std::unique_ptr<aead_burst> make_sodium();
#if MESHFWD_HAVE_IPSEC_MB
// nullptr when the CPU lacks AVX2 or the manager cannot be set up.
std::unique_ptr<aead_burst> make_ipsec_mb();
// True when this CPU runs intel-ipsec-mb's AVX2 code (checked once, cached).
bool ipsec_mb_supported() noexcept;
#endif

// One op with libsodium (in place, detached tag right after the payload).
inline void sodium_encrypt_one(const aead_op& op) noexcept {
    uint8_t nonce[12];
    wg_nonce(nonce, op.counter);
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(op.data, op.data + op.length, nullptr, op.data, op.length,
                                                       nullptr, 0, nullptr, nonce, op.key->data());
}

// One op with libsodium; false on a short op or a bad tag.
inline bool sodium_decrypt_one(const aead_op& op) noexcept {
    if (op.length < aead_tag_size) {
        return false;
    }
    uint8_t nonce[12];
    wg_nonce(nonce, op.counter);
    const uint32_t text_len = op.length - static_cast<uint32_t>(aead_tag_size);
    return crypto_aead_chacha20poly1305_ietf_decrypt_detached(op.data, nullptr, op.data, text_len,
                                                              op.data + text_len, nullptr, 0, nonce,
                                                              op.key->data()) == 0;
}

// Partition step. On entry ops[0, good) are authentic, ops[good, begin) failed, and
// ops[begin, begin + ok.size()) is the chunk just processed with one flag per op. On return
// ops[0, begin + ok.size()) is stable-partitioned the same way; returns the new good count.
// spill must hold ok.size() ops. No allocation: failures are rare, so the usual case moves nothing.
inline std::size_t merge_chunk(std::span<aead_op> ops, std::size_t good, std::size_t begin,
                               std::span<const uint8_t> ok, aead_op* spill) noexcept {
    if (good == begin && std::all_of(ok.begin(), ok.end(), [](uint8_t f) { return f != 0; })) {
        return good + ok.size();   // all authentic, no earlier failures: nothing to move
    }
    std::size_t write = begin;
    std::size_t failed = 0;
    for (std::size_t i = 0; i < ok.size(); ++i) {
        if (ok[i] != 0) {
            ops[write++] = ops[begin + i];
        } else {
            spill[failed++] = ops[begin + i];
        }
    }
    std::copy(spill, spill + failed, ops.begin() + static_cast<std::ptrdiff_t>(write));
    // [good ... begin) holds earlier failures: move this chunk's good ops in front of them.
    if (good < begin && write > begin) {
        std::rotate(ops.begin() + static_cast<std::ptrdiff_t>(good), ops.begin() + static_cast<std::ptrdiff_t>(begin),
                    ops.begin() + static_cast<std::ptrdiff_t>(write));
    }
    return good + (write - begin);
}

} // namespace meshfwd::crypto::burst_detail
