// meshcoord's store on one thread, per backend: registrations/s (each its own durable
// transaction, into one network that grows past 10,000 peers, so the address allocation's cost at
// that size shows) and heartbeats/s in batches of 100 and of 1 (one transaction per batch).
// PostgreSQL runs on a temporary server (scripts/pg-temp.sh) with its default durability
// (fsync, synchronous_commit on); SQLite on a file in /tmp with synchronous=FULL.
//   ./build/bench/coord_store_bench
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "coord/store.h"
#include "pg_fixture.h"

namespace {

using namespace meshfwd::coord;

meshfwd::test::pg_temp_server* pg_server() {
    static std::unique_ptr<meshfwd::test::pg_temp_server> server = [] {
        auto s = meshfwd::test::pg_temp_server::start();
        if (!s) {
            std::fprintf(stderr, "%s\n", s.error_message().c_str());
            std::abort();
        }
        return std::move(*s);
    }();
    return server.get();
}

struct temp_store {
    std::string dir;
    std::unique_ptr<store> s;

    explicit temp_store(bool postgres) {
        static int counter = 0;
        std::string url;
        if (postgres) {
            auto u = pg_server()->create_database("bench_" + std::to_string(++counter));
            if (!u) {
                std::abort();
            }
            url = *u;
        } else {
            char tmpl[] = "/tmp/meshfwd-bench.XXXXXX";
            if (!mkdtemp(tmpl)) {
                std::abort();
            }
            dir = tmpl;
            url = "sqlite:" + dir + "/coord.db";
        }
        auto opened = open_store(url);
        if (!opened) {
            std::fprintf(stderr, "%s\n", opened.error_message().c_str());
            std::abort();
        }
        s = std::move(*opened);
        network_record n;
        n.id = "bench";
        n.name = "bench";
        n.cidr = "10.0.0.0/8";
        n.invite_public_key.assign(32, 1);
        n.invite_secret_key.assign(64, 2);
        n.options_json = "{}";
        if (!s->create_network(n)) {
            std::abort();
        }
    }
    ~temp_store() {
        s.reset();
        if (!dir.empty()) {
            std::filesystem::remove_all(dir);
        }
    }
};

node_key key_of(uint32_t n) {
    node_key k{};
    for (int i = 0; i < 4; ++i) {
        k[i] = uint8_t(n >> (8 * i));
    }
    k[31] = 1;
    return k;
}

registration reg(uint32_t n) {
    registration r;
    r.network_id = "bench";
    r.public_key = key_of(n);
    r.hostname = "node" + std::to_string(n);
    r.os = "linux";
    r.endpoints = {"192.0.2.1:51820", "[2001:db8::1]:51820"};
    r.policy_json = "{}";
    return r;
}

void BM_register(benchmark::State& state) {
    temp_store t(state.range(0) != 0);
    uint32_t n = 0;
    for (auto _ : state) {
        auto out = t.s->register_peer(reg(n++), 1000);
        if (!out || out->status != register_status::created) {
            state.SkipWithError("registration failed");
            break;
        }
    }
    state.SetItemsProcessed(state.iterations());
    state.SetLabel(state.range(0) ? "postgres" : "sqlite");
}

void BM_heartbeats(benchmark::State& state) {
    temp_store t(state.range(0) != 0);
    const auto batch = std::size_t(state.range(1));
    constexpr uint32_t peers = 1000;
    for (uint32_t i = 0; i < peers; ++i) {
        if (!t.s->register_peer(reg(i), 1000)) {
            std::abort();
        }
    }
    std::vector<heartbeat> beats(batch);
    uint32_t next = 0;
    int64_t now = 2000;
    for (auto _ : state) {
        for (auto& b : beats) {
            b.network_id = "bench";
            b.public_key = key_of(next++ % peers);
        }
        auto out = t.s->record_heartbeats(beats, ++now);
        if (!out) {
            state.SkipWithError("heartbeat batch failed");
            break;
        }
    }
    state.SetItemsProcessed(state.iterations() * int64_t(batch));
    state.SetLabel(std::string(state.range(0) ? "postgres" : "sqlite") + ", batch " + std::to_string(batch));
}

// 10,000 iterations: the network holds 10,000 peers by the end. Rates are per wall-clock second
// (the time is mostly fsync, not CPU).
BENCHMARK(BM_register)->Arg(0)->Arg(1)->Iterations(10000)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_heartbeats)->Args({0, 100})->Args({0, 1})->Args({1, 100})->Args({1, 1})->UseRealTime()->Unit(benchmark::kMicrosecond);

} // namespace

BENCHMARK_MAIN();
