// Micro-benchmarks of the per-packet lookups (dataplane/allowed_ips, dataplane/index_table) and
// of the control thread's allowed_ips::build. Single-threaded.
//
// Lookups run in bursts of 32 over 64k pre-drawn keys (half inside a listed prefix, half uniformly
// random), so the figure is throughput per lookup with independent lookups overlapping, as in a
// worker's burst loop. Counters: ns per lookup via items/s; `bytes` is the table's memory.
//   bm_allowed_ips_v4/N   N random prefixes /16../32
//   bm_allowed_ips_v6/N   N random prefixes /48../128
//   bm_index_table        10k live sessions in a 2^16-slot table
//   bm_build_10k_peers    10k peers x (one v4 /32 + one random v6 /128): the snapshot rebuild
//   ./build/bench/lookup_bench --benchmark_min_time=0.1
#include "dataplane/allowed_ips.h"
#include "dataplane/index_table.h"

#include <benchmark/benchmark.h>

#include <array>
#include <cstring>
#include <random>
#include <vector>

namespace {

using meshfwd::ip_address;
using meshfwd::ip_prefix;
using meshfwd::dataplane::allowed_ips;
using meshfwd::dataplane::index_table;

constexpr std::size_t burst = 32;
constexpr std::size_t n_keys = 1 << 16;

ip_address random_address(std::mt19937_64& rng, bool v6) {
    std::array<uint8_t, 16> b{};
    for (auto& x : b) {
        x = static_cast<uint8_t>(rng());
    }
    return ip_address::from_bytes(std::span<const uint8_t>(b.data(), v6 ? 16 : 4));
}

struct lookup_fixture {
    allowed_ips table;
    std::vector<std::array<uint8_t, 16>> keys;

    lookup_fixture(bool v6, std::size_t n) {
        std::mt19937_64 rng(42);
        const unsigned min_len = v6 ? 48 : 16, max_len = v6 ? 128 : 32;
        std::vector<allowed_ips::entry> entries;
        for (std::size_t i = 0; i < n; ++i) {
            const auto len = static_cast<unsigned>(min_len + rng() % (max_len - min_len + 1));
            entries.push_back({*ip_prefix::make(random_address(rng, v6), len), static_cast<uint32_t>(i)});
        }
        table = allowed_ips::build(entries);
        for (std::size_t i = 0; i < n_keys; ++i) {
            const ip_address a = i % 2 == 0 ? entries[rng() % n].prefix.address() : random_address(rng, v6);
            std::array<uint8_t, 16> k{};
            std::memcpy(k.data(), a.bytes().data(), a.bytes().size());
            keys.push_back(k);
        }
    }
};

template <bool V6>
void bm_allowed_ips(benchmark::State& state) {
    const lookup_fixture f(V6, static_cast<std::size_t>(state.range(0)));
    std::size_t next = 0;
    for (auto _ : state) {
        for (std::size_t i = 0; i < burst; ++i) {
            const uint8_t* k = f.keys[next + i].data();
            benchmark::DoNotOptimize(V6 ? f.table.lookup_v6(k) : f.table.lookup_v4(k));
        }
        next = (next + burst) % n_keys;
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * burst));
    state.counters["bytes"] = static_cast<double>(f.table.memory_bytes());
}
BENCHMARK(bm_allowed_ips<false>)->Name("bm_allowed_ips_v4")->Arg(10)->Arg(1000)->Arg(10000)->Arg(100000);
BENCHMARK(bm_allowed_ips<true>)->Name("bm_allowed_ips_v6")->Arg(10)->Arg(1000)->Arg(10000)->Arg(100000);

void bm_index_table(benchmark::State& state) {
    index_table<int> table(16);
    std::vector<int> values(10000);
    std::vector<uint32_t> live;
    for (auto& v : values) {
        live.push_back(*table.insert(&v));
    }
    std::mt19937_64 rng(7);
    std::vector<uint32_t> keys(n_keys);
    for (auto& k : keys) {
        k = live[rng() % live.size()];
    }
    std::size_t next = 0;
    for (auto _ : state) {
        for (std::size_t i = 0; i < burst; ++i) {
            benchmark::DoNotOptimize(table.lookup(keys[next + i]));
        }
        next = (next + burst) % n_keys;
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * burst));
}
BENCHMARK(bm_index_table);

void bm_build_10k_peers(benchmark::State& state) {
    std::mt19937_64 rng(9);
    std::vector<allowed_ips::entry> entries;
    for (uint32_t i = 0; i < 10000; ++i) {
        entries.push_back({*ip_prefix::make(ip_address::v4(0x0a640000u + i), 32), i});
        std::array<uint8_t, 16> b = {0xfd, 0x12, 0x34, 0x56, 0x78, 0x9a};
        for (std::size_t k = 6; k < 16; ++k) {
            b[k] = static_cast<uint8_t>(rng());
        }
        entries.push_back({*ip_prefix::make(ip_address::v6(b), 128), i});
    }
    std::size_t bytes = 0;
    for (auto _ : state) {
        auto t = allowed_ips::build(entries);
        bytes = t.memory_bytes();
        benchmark::DoNotOptimize(t);
    }
    state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(bm_build_10k_peers)->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();
