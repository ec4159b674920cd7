// Batched AEAD, intel-ipsec-mb backend (multi-buffer ChaCha20-Poly1305, AVX2 code path, burst API).
// One instance per worker thread: it owns one IMB_MGR and all scratch, allocated at construction.
//
// Per chunk of up to IMB_MAX_BURST_SIZE ops: IMB_GET_NEXT_BURST hands out job slots, each is filled
// as one CHACHA20_POLY1305 AEAD job (in place, no AAD), IMB_SUBMIT_BURST validates the whole chunk
// (nothing is queued if any job is invalid) and returns the jobs already done, IMB_FLUSH_BURST
// completes the rest, so the manager's queue is empty again between chunks. Encrypt writes the tag
// straight after the payload; decrypt has ipsec-mb write the computed tag into per-instance scratch
// and compares it with the received tag in constant time (sodium_memcmp).
#include "crypto/aead_burst_backends.h"

#include <intel-ipsec-mb.h>

#include <array>
#include <cstdint>

namespace meshfwd::crypto::burst_detail {
namespace {

static_assert(chunk_size == IMB_MAX_BURST_SIZE);

struct mgr_deleter {
    void operator()(IMB_MGR* mgr) const noexcept { free_mb_mgr(mgr); }
};
using mgr_ptr = std::unique_ptr<IMB_MGR, mgr_deleter>;

// An AVX2 manager, or null when this CPU cannot run intel-ipsec-mb's AVX2 code.
mgr_ptr new_avx2_mgr() noexcept {
    mgr_ptr mgr(alloc_mb_mgr(0));
    if (!mgr) {
        return nullptr;
    }
    // alloc_mb_mgr() detects the CPU features; AVX2 code also needs AVX, BMI2, AES-NI, PCLMULQDQ...
    if ((mgr->features & IMB_CPUFLAGS_AVX2) != IMB_CPUFLAGS_AVX2) {
        return nullptr;
    }
    init_mb_mgr_avx2(mgr.get());
    if (imb_get_errno(mgr.get()) != 0) {
        return nullptr;
    }
    return mgr;
}

class ipsec_mb_burst final : public aead_burst {
public:
    explicit ipsec_mb_burst(mgr_ptr mgr) noexcept : _mgr(std::move(mgr)) {}

    std::size_t encrypt_burst(std::span<aead_op> ops) noexcept override {
        for (std::size_t begin = 0; begin < ops.size();) {
            begin += encrypt_chunk(ops.subspan(begin, std::min(chunk_size, ops.size() - begin)));
        }
        return ops.size();
    }

    std::size_t decrypt_burst(std::span<aead_op> ops) noexcept override {
        std::size_t good = 0;
        for (std::size_t begin = 0; begin < ops.size();) {
            const std::span<aead_op> chunk = ops.subspan(begin, std::min(chunk_size, ops.size() - begin));
            const std::size_t len = decrypt_chunk(chunk);
            good = merge_chunk(ops, good, begin, std::span<const uint8_t>(_ok.data(), len), _spill.data());
            begin += len;
        }
        return good;
    }

    std::string_view name() const noexcept override { return "ipsec-mb"; }

private:
    // Fills one job for op; tag goes to tag_out (encrypt: after the payload; decrypt: scratch).
    void fill_job(IMB_JOB* job, const aead_op& op, uint32_t text_len, std::size_t slot, uint8_t* tag_out,
                  IMB_CIPHER_DIRECTION direction) noexcept {
        wg_nonce(_nonces[slot], op.counter);
        job->cipher_mode = IMB_CIPHER_CHACHA20_POLY1305;
        job->hash_alg = IMB_AUTH_CHACHA20_POLY1305;
        job->cipher_direction = direction;
        job->chain_order = direction == IMB_DIR_ENCRYPT ? IMB_ORDER_CIPHER_HASH : IMB_ORDER_HASH_CIPHER;
        job->enc_keys = op.key->data();
        job->dec_keys = op.key->data();
        job->key_len_in_bytes = 32;
        job->src = op.data;
        job->dst = op.data;
        job->cipher_start_src_offset_in_bytes = 0;
        job->msg_len_to_cipher_in_bytes = text_len;
        job->hash_start_src_offset_in_bytes = 0;
        job->msg_len_to_hash_in_bytes = text_len;
        job->iv = _nonces[slot];
        job->iv_len_in_bytes = 12;
        // No AAD; the pointer is never read with length 0 but is kept valid anyway.
        job->u.CHACHA20_POLY1305.aad = _nonces[slot];
        job->u.CHACHA20_POLY1305.aad_len_in_bytes = 0;
        job->auth_tag_output = tag_out;
        job->auth_tag_output_len_in_bytes = aead_tag_size;
        job->user_data = reinterpret_cast<void*>(static_cast<uintptr_t>(slot));
    }

    // Submits jobs[0, n) and waits for all of them; calls retire(slot, completed) for each.
    // Returns false (nothing was queued) when ipsec-mb rejects the burst at validation.
    template <typename Retire>
    bool run_jobs(uint32_t n, Retire&& retire) noexcept {
        if (n == 0) {
            return true;
        }
        uint32_t done = IMB_SUBMIT_BURST(_mgr.get(), n, _jobs.data());
        if (done == 0 && imb_get_errno(_mgr.get()) != 0) {
            return false;
        }
        for (uint32_t i = 0; i < done; ++i) {
            retire(reinterpret_cast<uintptr_t>(_jobs[i]->user_data), _jobs[i]->status == IMB_STATUS_COMPLETED);
        }
        while (done < n) {
            const uint32_t flushed = IMB_FLUSH_BURST(_mgr.get(), n - done, _jobs.data());
            if (flushed == 0) {
                break;   // queue empty: cannot happen, every submitted job is returned once
            }
            for (uint32_t i = 0; i < flushed; ++i) {
                retire(reinterpret_cast<uintptr_t>(_jobs[i]->user_data), _jobs[i]->status == IMB_STATUS_COMPLETED);
            }
            done += flushed;
        }
        return true;
    }

    // Encrypts a prefix of chunk (all of it unless the queue is short of slots); returns its length.
    std::size_t encrypt_chunk(std::span<aead_op> chunk) noexcept {
        const uint32_t n = IMB_GET_NEXT_BURST(_mgr.get(), static_cast<uint32_t>(chunk.size()), _jobs.data());
        if (n == 0) {
            // No free slot (cannot happen: the queue is drained after every chunk). Stay correct.
            sodium_encrypt_one(chunk[0]);
            return 1;
        }
        uint32_t queued = 0;
        for (uint32_t i = 0; i < n; ++i) {
            const aead_op& op = chunk[i];
            // Empty payloads (keepalives) go to ipsec-mb too: 1.3 accepts msg_len 0 for this cipher
            // and gives libsodium's tag (checked in mixed bursts by aead_burst_test).
            fill_job(_jobs[queued++], op, op.length, i, op.data + op.length, IMB_DIR_ENCRYPT);
        }
        // A chacha20-poly1305 job that passed validation cannot fail later, so encrypt needs no
        // per-job status handling; a rejected burst (never seen) is redone with libsodium.
        if (!run_jobs(queued, [](uintptr_t, bool) {})) {
            for (uint32_t i = 0; i < n; ++i) {
                sodium_encrypt_one(chunk[i]);
            }
        }
        return n;
    }

    // Decrypts a prefix of chunk, setting _ok[i] per op; returns the prefix length.
    std::size_t decrypt_chunk(std::span<aead_op> chunk) noexcept {
        const uint32_t n = IMB_GET_NEXT_BURST(_mgr.get(), static_cast<uint32_t>(chunk.size()), _jobs.data());
        if (n == 0) {
            _ok[0] = sodium_decrypt_one(chunk[0]) ? 1 : 0;
            return 1;
        }
        uint32_t queued = 0;
        for (uint32_t i = 0; i < n; ++i) {
            const aead_op& op = chunk[i];
            _ok[i] = 0;
            if (op.length < aead_tag_size) {
                continue;   // shorter than a tag: fails
            }
            const uint32_t text_len = op.length - static_cast<uint32_t>(aead_tag_size);
            fill_job(_jobs[queued++], op, text_len, i, _tags[i].data(), IMB_DIR_DECRYPT);
        }
        const bool ran = run_jobs(queued, [this, chunk](uintptr_t slot, bool completed) {
            const aead_op& op = chunk[slot];
            const uint8_t* received = op.data + op.length - aead_tag_size;
            _ok[slot] = completed && sodium_memcmp(_tags[slot].data(), received, aead_tag_size) == 0 ? 1 : 0;
        });
        if (!ran) {
            for (uint32_t i = 0; i < n; ++i) {
                _ok[i] = sodium_decrypt_one(chunk[i]) ? 1 : 0;
            }
        }
        // Do not leave unauthenticated plaintext behind in a rejected op.
        for (uint32_t i = 0; i < n; ++i) {
            if (_ok[i] == 0 && chunk[i].length > aead_tag_size) [[unlikely]] {
                sodium_memzero(chunk[i].data, chunk[i].length - aead_tag_size);
            }
        }
        return n;
    }

    mgr_ptr _mgr;
    std::array<IMB_JOB*, chunk_size> _jobs{};
    alignas(64) std::array<std::array<uint8_t, aead_tag_size>, chunk_size> _tags{};
    alignas(16) uint8_t _nonces[chunk_size][12]{};
    std::array<uint8_t, chunk_size> _ok{};
    std::array<aead_op, chunk_size> _spill{};
};

} // namespace

bool ipsec_mb_supported() noexcept {
    static const bool supported = new_avx2_mgr() != nullptr;
    return supported;
}

std::unique_ptr<aead_burst> make_ipsec_mb() {
    if (!ipsec_mb_supported()) {
        return nullptr;
    }
    mgr_ptr mgr = new_avx2_mgr();
    if (!mgr) {
        return nullptr;
    }
    return std::make_unique<ipsec_mb_burst>(std::move(mgr));
}

} // namespace meshfwd::crypto::burst_detail
