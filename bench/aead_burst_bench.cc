// Micro-benchmark of the batched AEAD (crypto/aead_burst) per backend, with the single-message
// libsodium loop (crypto::aead_encrypt/aead_decrypt) as the baseline. Single-threaded.
//
// Each benchmark processes one burst of 32 WireGuard payloads per iteration, 4 keys mixed in the
// burst, at 64, 256 and 1420 bytes of plaintext. Counters: Gbps (plaintext bits), Mpps (packets),
// plus Google Benchmark's bytes/s and items/s. Decrypt works in place, so every decrypt iteration
// first restores the sealed packets with memcpy; bm_copy_only measures that copy alone.
//   ./build/bench/aead_burst_bench --benchmark_min_time=0.1
#include "crypto/aead.h"
#include "crypto/aead_burst.h"
#include "crypto/x25519.h"

#include <benchmark/benchmark.h>

#include <array>
#include <cstring>
#include <vector>

namespace {

using namespace meshfwd::crypto;

constexpr std::size_t burst = 32;
constexpr std::size_t n_keys = 4;

struct fixture {
    std::array<secret32, n_keys> keys;
    std::size_t size;
    std::vector<std::vector<uint8_t>> bufs;     // working buffers, size + tag each
    std::vector<std::vector<uint8_t>> sealed;   // pristine sealed packets for decrypt
    std::array<aead_op, burst> ops{};

    explicit fixture(std::size_t payload) : size(payload), bufs(burst), sealed(burst) {
        for (auto& key : keys) {
            key = generate_private_key();
        }
        for (std::size_t i = 0; i < burst; ++i) {
            bufs[i].resize(size + aead_tag_size);
            randombytes_buf(bufs[i].data(), size);
            sealed[i].resize(size + aead_tag_size);
            aead_encrypt(sealed[i], std::span<const uint8_t>(bufs[i].data(), size), 1000 + i, {}, keys[i % n_keys]);
        }
        reset_ops(false);
    }

    void reset_ops(bool for_decrypt) {
        for (std::size_t i = 0; i < burst; ++i) {
            ops[i] = aead_op{bufs[i].data(), static_cast<uint32_t>(size + (for_decrypt ? aead_tag_size : 0)),
                             1000 + i, &keys[i % n_keys]};
        }
    }
    void restore_sealed() {
        for (std::size_t i = 0; i < burst; ++i) {
            std::memcpy(bufs[i].data(), sealed[i].data(), sealed[i].size());
        }
    }
};

void set_counters(benchmark::State& state, std::size_t size) {
    const auto packets = static_cast<double>(state.iterations()) * burst;
    state.SetItemsProcessed(static_cast<int64_t>(packets));
    state.SetBytesProcessed(static_cast<int64_t>(packets * static_cast<double>(size)));
    state.counters["Gbps"] = benchmark::Counter(packets * static_cast<double>(size) * 8 / 1e9, benchmark::Counter::kIsRate);
    state.counters["Mpps"] = benchmark::Counter(packets / 1e6, benchmark::Counter::kIsRate);
}

void bm_encrypt(benchmark::State& state, aead_backend backend) {
    auto impl = make_aead_burst(backend);
    if (!impl) {
        state.SkipWithError("backend unavailable on this build or CPU");
        return;
    }
    fixture f(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        // Encrypting the previous ciphertext again is as much work as encrypting plaintext.
        f.reset_ops(false);
        benchmark::DoNotOptimize(impl->encrypt_burst(f.ops));
        benchmark::ClobberMemory();
    }
    set_counters(state, f.size);
}

void bm_decrypt(benchmark::State& state, aead_backend backend) {
    auto impl = make_aead_burst(backend);
    if (!impl) {
        state.SkipWithError("backend unavailable on this build or CPU");
        return;
    }
    fixture f(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        f.restore_sealed();
        f.reset_ops(true);
        const std::size_t good = impl->decrypt_burst(f.ops);
        benchmark::DoNotOptimize(good);
        benchmark::ClobberMemory();
        if (good != burst) {
            state.SkipWithError("authentication failed");
            break;
        }
    }
    set_counters(state, f.size);
}

// Baseline: one aead_encrypt (libsodium, single message) per packet.
void bm_single_encrypt(benchmark::State& state) {
    fixture f(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        for (std::size_t i = 0; i < burst; ++i) {
            aead_encrypt(f.bufs[i], std::span<const uint8_t>(f.bufs[i].data(), f.size), 1000 + i, {}, f.keys[i % n_keys]);
        }
        benchmark::ClobberMemory();
    }
    set_counters(state, f.size);
}

void bm_single_decrypt(benchmark::State& state) {
    fixture f(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        f.restore_sealed();
        bool all = true;
        for (std::size_t i = 0; i < burst; ++i) {
            all = aead_decrypt(std::span<uint8_t>(f.bufs[i].data(), f.size), f.bufs[i], 1000 + i, {}, f.keys[i % n_keys]) && all;
        }
        benchmark::DoNotOptimize(all);
        benchmark::ClobberMemory();
    }
    set_counters(state, f.size);
}

// The memcpy that every decrypt iteration above includes.
void bm_copy_only(benchmark::State& state) {
    fixture f(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        f.restore_sealed();
        benchmark::ClobberMemory();
    }
    set_counters(state, f.size);
}

#define MESHFWD_SIZES Arg(64)->Arg(256)->Arg(1420)

BENCHMARK_CAPTURE(bm_encrypt, libsodium, aead_backend::libsodium)->MESHFWD_SIZES;
BENCHMARK_CAPTURE(bm_encrypt, ipsec_mb, aead_backend::ipsec_mb)->MESHFWD_SIZES;
BENCHMARK(bm_single_encrypt)->MESHFWD_SIZES;
BENCHMARK_CAPTURE(bm_decrypt, libsodium, aead_backend::libsodium)->MESHFWD_SIZES;
BENCHMARK_CAPTURE(bm_decrypt, ipsec_mb, aead_backend::ipsec_mb)->MESHFWD_SIZES;
BENCHMARK(bm_single_decrypt)->MESHFWD_SIZES;
BENCHMARK(bm_copy_only)->MESHFWD_SIZES;

} // namespace

int main(int argc, char** argv) {
    if (!crypto_init()) {
        return 1;
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
        return 1;
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
