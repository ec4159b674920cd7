// Batched AEAD, libsodium backend: the portable one, one message at a time. One instance per worker
// thread.
#include "crypto/aead_burst_backends.h"

#include <algorithm>
#include <array>

namespace meshfwd::crypto::burst_detail {
namespace {

class sodium_burst final : public aead_burst {
public:
    std::size_t encrypt_burst(std::span<aead_op> ops) noexcept override {
        for (const aead_op& op : ops) {
            sodium_encrypt_one(op);
        }
        return ops.size();
    }

    std::size_t decrypt_burst(std::span<aead_op> ops) noexcept override {
        std::size_t good = 0;
        for (std::size_t begin = 0; begin < ops.size(); begin += chunk_size) {
            const std::size_t len = std::min(chunk_size, ops.size() - begin);
            for (std::size_t i = 0; i < len; ++i) {
                _ok[i] = sodium_decrypt_one(ops[begin + i]) ? 1 : 0;
            }
            good = merge_chunk(ops, good, begin, std::span<const uint8_t>(_ok.data(), len), _spill.data());
        }
        return good;
    }

    std::string_view name() const noexcept override { return "libsodium"; }

private:
    std::array<uint8_t, chunk_size> _ok{};
    std::array<aead_op, chunk_size> _spill{};
};

} // namespace

std::unique_ptr<aead_burst> make_sodium() { return std::make_unique<sodium_burst>(); }

} // namespace meshfwd::crypto::burst_detail
