// WireGuard handshake cost (control thread work per handshake), per step and end to end, plus
// single-message transport and the replay window for reference. Single-threaded except the
// replay contention case.
#include "crypto/cookie.h"
#include "crypto/keypair.h"
#include "crypto/noise.h"
#include "crypto/replay.h"
#include "crypto/tai64n.h"
#include "crypto/transport.h"
#include "crypto/x25519.h"

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <vector>

namespace {

using namespace meshfwd::crypto;
using namespace std::chrono_literals;

struct bench_pair {
    static_identity a;
    static_identity b;
    peer_config a_to_b;
    peer_config b_to_a;
    std::unique_ptr<handshake> hs_a;
    std::unique_ptr<handshake> hs_b;
    std::unique_ptr<cookie_maker> maker_a;
    std::unique_ptr<cookie_maker> maker_b;
    std::unique_ptr<cookie_checker> checker_a;
    std::unique_ptr<cookie_checker> checker_b;
    mono_time now = mono_time{} + 1h;
    int64_t second = 1000;

    bench_pair() {
        if (!crypto_init() || !a.set_private_key(generate_private_key()) || !b.set_private_key(generate_private_key()) ||
            !a_to_b.init(a, b.static_public) || !b_to_a.init(b, a.static_public)) {
            std::abort();
        }
        hs_a = std::make_unique<handshake>(a, a_to_b);
        hs_b = std::make_unique<handshake>(b, b_to_a);
        maker_a = std::make_unique<cookie_maker>(a_to_b);
        maker_b = std::make_unique<cookie_maker>(b_to_a);
        checker_a = std::make_unique<cookie_checker>(a, now);
        checker_b = std::make_unique<cookie_checker>(b, now);
    }

    peer_lookup lookup() {
        return [this](const public_key&) { return hs_b.get(); };
    }

    // Fresh timestamp and clock for every initiation (no replay/flood refusals).
    tai64n next_stamp() { return tai64n::from_unix(second++, 0); }
    void tick() { now += 1s; }
};

void BM_Initiator_CreateInitiation(benchmark::State& state) {
    bench_pair p;
    message_initiation init;
    for (auto _ : state) {
        benchmark::DoNotOptimize(p.hs_a->create_initiation(init, 1, p.next_stamp()));
        p.maker_a->add_macs(init, p.now);
        benchmark::DoNotOptimize(init);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Initiator_CreateInitiation);

void BM_Responder_ConsumeInitiationCreateResponse(benchmark::State& state) {
    bench_pair p;
    std::vector<message_initiation> inits(256);
    std::size_t next = 0;
    for (auto& m : inits) {
        if (p.hs_a->create_initiation(m, 1, p.next_stamp()) != handshake_reason::ok) {
            std::abort();
        }
        p.maker_a->add_macs(m, p.now);
    }
    message_response resp;
    keypair kb;
    for (auto _ : state) {
        if (next == inits.size()) {
            state.PauseTiming();
            p.hs_b = std::make_unique<handshake>(p.b, p.b_to_a);  // forget timestamps
            next = 0;
            state.ResumeTiming();
        }
        p.tick();
        benchmark::DoNotOptimize(p.checker_b->check_mac1(as_bytes(inits[next])));
        const auto r = consume_initiation(p.b, inits[next++], p.lookup(), p.now);
        benchmark::DoNotOptimize(r);
        benchmark::DoNotOptimize(p.hs_b->create_response(resp, 2));
        p.maker_b->add_macs(resp, p.now);
        benchmark::DoNotOptimize(p.hs_b->begin_session(kb, p.now));
        benchmark::DoNotOptimize(resp);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Responder_ConsumeInitiationCreateResponse);

void BM_Initiator_ConsumeResponse(benchmark::State& state) {
    bench_pair p;
    message_initiation init;
    message_response resp;
    keypair ka;
    keypair kb;
    for (auto _ : state) {
        state.PauseTiming();
        p.tick();
        if (p.hs_a->create_initiation(init, 1, p.next_stamp()) != handshake_reason::ok ||
            consume_initiation(p.b, init, p.lookup(), p.now).reason != handshake_reason::ok ||
            p.hs_b->create_response(resp, 2) != handshake_reason::ok || !p.hs_b->begin_session(kb, p.now)) {
            std::abort();
        }
        p.maker_b->add_macs(resp, p.now);
        state.ResumeTiming();
        benchmark::DoNotOptimize(p.checker_a->check_mac1(as_bytes(resp)));
        benchmark::DoNotOptimize(p.hs_a->consume_response(resp));
        benchmark::DoNotOptimize(p.hs_a->begin_session(ka, p.now));
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Initiator_ConsumeResponse);

// Both sides, one thread: initiation + response + consume + both keypairs.
void BM_FullHandshake(benchmark::State& state) {
    bench_pair p;
    message_initiation init;
    message_response resp;
    keypair ka;
    keypair kb;
    for (auto _ : state) {
        p.tick();
        bool ok = p.hs_a->create_initiation(init, 1, p.next_stamp()) == handshake_reason::ok;
        p.maker_a->add_macs(init, p.now);
        ok = ok && p.checker_b->check_mac1(as_bytes(init)) == cookie_reason::ok;
        ok = ok && consume_initiation(p.b, init, p.lookup(), p.now).reason == handshake_reason::ok;
        ok = ok && p.hs_b->create_response(resp, 2) == handshake_reason::ok;
        p.maker_b->add_macs(resp, p.now);
        ok = ok && p.checker_a->check_mac1(as_bytes(resp)) == cookie_reason::ok;
        ok = ok && p.hs_a->consume_response(resp) == handshake_reason::ok;
        ok = ok && p.hs_a->begin_session(ka, p.now) && p.hs_b->begin_session(kb, p.now);
        if (!ok) {
            state.SkipWithError("handshake failed");
            break;
        }
        benchmark::DoNotOptimize(ka);
        benchmark::DoNotOptimize(kb);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FullHandshake);

void BM_Mac1Check(benchmark::State& state) {
    bench_pair p;
    message_initiation init;
    if (p.hs_a->create_initiation(init, 1, p.next_stamp()) != handshake_reason::ok) {
        std::abort();
    }
    p.maker_a->add_macs(init, p.now);
    for (auto _ : state) {
        benchmark::DoNotOptimize(p.checker_b->check_mac1(as_bytes(init)));
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Mac1Check);

void BM_TransportRoundTrip(benchmark::State& state) {
    bench_pair p;
    message_initiation init;
    message_response resp;
    keypair ka;
    keypair kb;
    if (p.hs_a->create_initiation(init, 1, p.next_stamp()) != handshake_reason::ok ||
        consume_initiation(p.b, init, p.lookup(), p.now).reason != handshake_reason::ok ||
        p.hs_b->create_response(resp, 2) != handshake_reason::ok || p.hs_a->consume_response(resp) != handshake_reason::ok ||
        !p.hs_a->begin_session(ka, p.now) || !p.hs_b->begin_session(kb, p.now)) {
        std::abort();
    }
    const auto len = static_cast<std::size_t>(state.range(0));
    std::vector<uint8_t> plain(len, 0x45);
    std::vector<uint8_t> wire(transport_message_size(len));
    std::vector<uint8_t> out(wire.size());
    for (auto _ : state) {
        const auto e = encapsulate(ka, plain, wire, p.now);
        const auto d = decapsulate(kb, std::span<const uint8_t>(wire.data(), e.size), out, p.now);
        benchmark::DoNotOptimize(d);
    }
    state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(len));
}
BENCHMARK(BM_TransportRoundTrip)->Arg(64)->Arg(1420);

void BM_ReplayInOrder(benchmark::State& state) {
    static replay_window* window = nullptr;
    if (state.thread_index() == 0) {
        window = new replay_window();
    }
    uint64_t c = static_cast<uint64_t>(state.thread_index());
    const auto step = static_cast<uint64_t>(state.threads());
    for (auto _ : state) {
        benchmark::DoNotOptimize(window->check_and_set(c));
        c += step;
    }
    state.SetItemsProcessed(state.iterations());
    if (state.thread_index() == 0) {
        delete window;
        window = nullptr;
    }
}
BENCHMARK(BM_ReplayInOrder)->Threads(1)->Threads(2);

}  // namespace

BENCHMARK_MAIN();
