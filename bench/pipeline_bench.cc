// Micro-benchmark of the pipeline stages (dataplane/pipeline.h) on one core, against the raw
// batched AEAD they are built on (crypto/aead_burst.h), per backend, at 64 and 1420 bytes, burst 64.
// Single-threaded: the benchmark thread plays one worker over an in-memory port.
//
//   aead_encrypt    encrypt_burst over 64 payloads (what encapsulate_burst wraps)
//   aead_decrypt    decrypt_burst over 64 sealed payloads, restored from a pristine copy first
//   encapsulate     encapsulate_burst: route, session, counters, padding, header, encrypt, accounting
//   decapsulate     decapsulate_burst: demux, index lookup, decrypt, replay window, source check
//
// Both decrypt benchmarks pay the same restore copy per packet (it stands in for the socket
// receive). Decapsulation needs fresh counters: the datagrams are a precomputed set of bursts
// with counters 0..N-1, and the replay window is reset (replay_window::reset, outside the
// packet path) whenever the set wraps. Encapsulation works in place, so each iteration puts the
// packet pointers back and rewrites the 20-byte IP header the previous ciphertext replaced;
// encrypting old ciphertext is the same work as plaintext.
//
// Counters: Gbps and Mpps of IP-packet bytes / packets (rates). At the end, the ratio of each
// pipeline stage to its raw AEAD operation at 1420 bytes is printed (target >= 0.75).
//   ./build/bench/pipeline_bench --benchmark_min_time=0.2
#include "crypto/aead_burst.h"
#include "crypto/cookie.h"
#include "crypto/messages.h"
#include "crypto/transport.h"
#include "crypto/x25519.h"
#include "dataplane/pipeline.h"

#include <benchmark/benchmark.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

using namespace meshfwd;
using namespace meshfwd::dataplane;

constexpr std::size_t burst = 64;
constexpr uint32_t mtu = 1420;
constexpr std::size_t sealed_bursts = 32;  // distinct decap bursts before the window is reset

crypto::secret32 bench_key(uint8_t seed) {
    crypto::secret32 k;
    for (std::size_t i = 0; i < 32; ++i) {
        k.data()[i] = static_cast<uint8_t>(seed * 41 + i * 3 + 7);
    }
    return k;
}

// An IPv4 UDP packet 10.1.0.1 -> 10.2.0.1 of `size` bytes.
std::vector<uint8_t> ip_packet(std::size_t size, std::size_t n) {
    std::vector<uint8_t> p(size);
    for (std::size_t i = 0; i < size; ++i) {
        p[i] = static_cast<uint8_t>(i * 13 + n);
    }
    const uint8_t header[20] = {0x45, 0, static_cast<uint8_t>(size >> 8), static_cast<uint8_t>(size), 0, 0, 0, 0,
                                64, 17, 0, 0, 10, 1, 0, 1, 10, 2, 0, 1};
    std::memcpy(p.data(), header, sizeof header);
    p[20] = 0x30;
    p[21] = static_cast<uint8_t>(n);  // source port: a few flows
    return p;
}

// One worker's view of a single peer with one session, the other side's keys mirrored in
// `sender` so that decapsulation has valid messages.
struct world {
    crypto::mono_time now = crypto::mono_clock::now();
    crypto::static_identity identity;
    std::unique_ptr<crypto::cookie_checker> cookies;
    std::unique_ptr<crypto::aead_burst> aead;
    packet_pool pool{burst * 2};
    index_table<session> sessions{8};
    std::unique_ptr<peer_runtime> peer;
    peer_endpoint endpoint;
    session sess;          // ours: sends to the peer, receives from it
    crypto::keypair sender;  // the peer's, for building datagrams to us
    snapshot snap;
    mailbox box;
    worker_counters counters;
    pipeline_context ctx;
    std::array<packet*, burst> packets{};

    explicit world(crypto::aead_backend backend) : aead(crypto::make_aead_burst(backend)) {
        if (!aead || !identity.set_private_key(bench_key(1))) {
            return;
        }
        cookies = std::make_unique<crypto::cookie_checker>(identity, now);
        crypto::static_identity other;
        (void)other.set_private_key(bench_key(2));
        peer = std::make_unique<peer_runtime>(0, other.static_public, false, 2);
        endpoint.address = socket_address::from(meshfwd::endpoint::parse("192.0.2.2:51820").value(), true);
        peer->endpoint.store(&endpoint);
        const allowed_ips::entry routes[] = {{ip_prefix::parse("10.2.0.0/16").value(), 0},
                                             {ip_prefix::parse("10.1.0.0/16").value(), 0}};
        snap.routes = allowed_ips::build(routes);
        snap.peers.push_back(peer.get());

        sess.keypair.send_key = bench_key(3);
        sess.keypair.recv_key = bench_key(4);
        sender.send_key = bench_key(4);
        sess.keypair.birth = sender.birth = now;
        sess.peer = peer.get();
        sess.keypair.local_index = sessions.insert(&sess).value();
        sender.remote_index = sess.keypair.local_index;
        sess.keypair.remote_index = 0x1234;
        peer->current.store(&sess);

        ctx.worker = 0;
        ctx.snap = &snap;
        ctx.sessions = &sessions;
        ctx.cookies = cookies.get();
        ctx.aead = aead.get();
        ctx.pool = &pool;
        ctx.box = &box;
        ctx.counters = &counters;
        ctx.mtu = mtu;
        ctx.now = now;
        ctx.now_ns = 1;
        for (auto& p : packets) {
            p = pool.alloc();
        }
    }
    [[nodiscard]] bool ok() const { return aead != nullptr && cookies != nullptr; }
};

void set_counters(benchmark::State& state, std::size_t size) {
    const auto packets = static_cast<double>(state.iterations()) * burst;
    state.SetItemsProcessed(static_cast<int64_t>(packets));
    state.SetBytesProcessed(static_cast<int64_t>(packets * static_cast<double>(size)));
    state.counters["Gbps"] = benchmark::Counter(packets * static_cast<double>(size) * 8 / 1e9, benchmark::Counter::kIsRate);
    state.counters["Mpps"] = benchmark::Counter(packets / 1e6, benchmark::Counter::kIsRate);
}

// Sealed transport messages for `burst * sealed_bursts` consecutive counters from w.sender.
std::vector<std::vector<uint8_t>> seal_all(world& w, std::size_t size) {
    std::vector<std::vector<uint8_t>> out(burst * sealed_bursts);
    for (std::size_t i = 0; i < out.size(); ++i) {
        const auto plain = ip_packet(size, i % burst);
        out[i].resize(crypto::transport_message_size(size, mtu));
        const auto r = crypto::encapsulate_with_counter(w.sender, i, plain, out[i], mtu);
        out[i].resize(r.size);
    }
    return out;
}

void bm_aead_encrypt(benchmark::State& state, crypto::aead_backend backend) {
    world w(backend);
    if (!w.ok()) {
        state.SkipWithError("backend unavailable on this build or CPU");
        return;
    }
    const auto size = static_cast<uint32_t>(state.range(0));
    std::array<crypto::aead_op, burst> ops{};
    uint64_t counter = 0;
    for (auto _ : state) {
        for (std::size_t i = 0; i < burst; ++i) {
            ops[i] = crypto::aead_op{w.packets[i]->data, size, counter++, &w.sess.keypair.send_key};
        }
        benchmark::DoNotOptimize(w.aead->encrypt_burst(ops));
        benchmark::ClobberMemory();
    }
    set_counters(state, size);
}

void bm_aead_decrypt(benchmark::State& state, crypto::aead_backend backend) {
    world w(backend);
    if (!w.ok()) {
        state.SkipWithError("backend unavailable on this build or CPU");
        return;
    }
    const auto size = static_cast<std::size_t>(state.range(0));
    const auto sealed = seal_all(w, size);
    std::array<crypto::aead_op, burst> ops{};
    std::size_t next = 0;
    for (auto _ : state) {
        for (std::size_t i = 0; i < burst; ++i, ++next) {
            const auto& m = sealed[next % sealed.size()];
            std::memcpy(w.packets[i]->data, m.data(), m.size());
            ops[i] = crypto::aead_op{w.packets[i]->data + 16, static_cast<uint32_t>(m.size() - 16), next % sealed.size(),
                                     &w.sess.keypair.recv_key};
        }
        const std::size_t good = w.aead->decrypt_burst(ops);
        benchmark::DoNotOptimize(good);
        benchmark::ClobberMemory();
        if (good != burst) {
            state.SkipWithError("authentication failed");
            break;
        }
    }
    set_counters(state, size);
}

void bm_encapsulate(benchmark::State& state, crypto::aead_backend backend) {
    world w(backend);
    if (!w.ok()) {
        state.SkipWithError("backend unavailable on this build or CPU");
        return;
    }
    const auto size = static_cast<uint32_t>(state.range(0));
    std::vector<std::vector<uint8_t>> originals;
    for (std::size_t i = 0; i < burst; ++i) {
        originals.push_back(ip_packet(size, i));
        std::memcpy(w.packets[i]->data, originals[i].data(), size);
    }
    std::array<packet*, burst> work{};
    for (auto _ : state) {
        for (std::size_t i = 0; i < burst; ++i) {
            packet* p = w.packets[i];
            p->data = p->buffer_start() + packet_headroom;
            p->length = size;
            std::memcpy(p->data, originals[i].data(), 20);
            work[i] = p;
        }
        const std::size_t n = encapsulate_burst(w.ctx, work);
        benchmark::DoNotOptimize(n);
        benchmark::ClobberMemory();
        if (n != burst) {
            state.SkipWithError("encapsulate_burst dropped packets");
            break;
        }
    }
    set_counters(state, size);
}

void bm_decapsulate(benchmark::State& state, crypto::aead_backend backend) {
    world w(backend);
    if (!w.ok()) {
        state.SkipWithError("backend unavailable on this build or CPU");
        return;
    }
    const auto size = static_cast<std::size_t>(state.range(0));
    const auto sealed = seal_all(w, size);
    std::array<packet*, burst> work{};
    std::size_t next = 0;
    for (auto _ : state) {
        if (next == sealed.size()) {
            // The set wraps: its counters are fresh again for a new window.
            next = 0;
            w.sess.keypair.replay.reset();
        }
        for (std::size_t i = 0; i < burst; ++i, ++next) {
            const auto& m = sealed[next];
            packet* p = w.packets[i];
            p->data = p->buffer_start() + packet_headroom;
            p->length = static_cast<uint32_t>(m.size());
            p->remote = w.endpoint.address;
            std::memcpy(p->data, m.data(), m.size());
            work[i] = p;
        }
        const std::size_t n = decapsulate_burst(w.ctx, work);
        benchmark::DoNotOptimize(n);
        benchmark::ClobberMemory();
        if (n != burst) {
            state.SkipWithError("decapsulate_burst dropped packets");
            break;
        }
    }
    set_counters(state, size);
}

#define MESHFWD_SIZES Arg(64)->Arg(1420)

BENCHMARK_CAPTURE(bm_aead_encrypt, libsodium, crypto::aead_backend::libsodium)->MESHFWD_SIZES;
BENCHMARK_CAPTURE(bm_encapsulate, libsodium, crypto::aead_backend::libsodium)->MESHFWD_SIZES;
BENCHMARK_CAPTURE(bm_aead_decrypt, libsodium, crypto::aead_backend::libsodium)->MESHFWD_SIZES;
BENCHMARK_CAPTURE(bm_decapsulate, libsodium, crypto::aead_backend::libsodium)->MESHFWD_SIZES;
BENCHMARK_CAPTURE(bm_aead_encrypt, ipsec_mb, crypto::aead_backend::ipsec_mb)->MESHFWD_SIZES;
BENCHMARK_CAPTURE(bm_encapsulate, ipsec_mb, crypto::aead_backend::ipsec_mb)->MESHFWD_SIZES;
BENCHMARK_CAPTURE(bm_aead_decrypt, ipsec_mb, crypto::aead_backend::ipsec_mb)->MESHFWD_SIZES;
BENCHMARK_CAPTURE(bm_decapsulate, ipsec_mb, crypto::aead_backend::ipsec_mb)->MESHFWD_SIZES;

// Console output as usual, plus the Mpps of every run kept for the ratio table.
class ratio_reporter : public benchmark::ConsoleReporter {
public:
    explicit ratio_reporter(OutputOptions options) : ConsoleReporter(options) {}
    void ReportRuns(const std::vector<Run>& runs) override {
        for (const Run& r : runs) {
            const auto it = r.counters.find("Mpps");
            if (!r.error_occurred && it != r.counters.end() && r.run_type == Run::RT_Iteration) {
                _mpps[r.benchmark_name()] = it->second.value;
            }
        }
        ConsoleReporter::ReportRuns(runs);
    }
    void print_ratios() const {
        std::printf("\npipeline / raw AEAD at 1420 bytes (target >= 0.75):\n");
        for (const char* backend : {"libsodium", "ipsec_mb"}) {
            for (const auto& [stage, raw] : {std::pair{"encapsulate", "aead_encrypt"}, std::pair{"decapsulate", "aead_decrypt"}}) {
                const auto s = _mpps.find(std::string("bm_") + stage + "/" + backend + "/1420");
                const auto a = _mpps.find(std::string("bm_") + raw + "/" + backend + "/1420");
                if (s == _mpps.end() || a == _mpps.end() || a->second <= 0) {
                    continue;
                }
                const double ratio = s->second / a->second;
                std::printf("  %-10s %-12s %.3f %s\n", backend, stage, ratio, ratio >= 0.75 ? "ok" : "BELOW TARGET");
            }
        }
    }

private:
    std::map<std::string, double> _mpps;
};

}  // namespace

int main(int argc, char** argv) {
    if (!crypto::crypto_init()) {
        return 1;
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
        return 1;
    }
    // Colour only on a terminal, as the default reporter does.
    ratio_reporter reporter(isatty(fileno(stdout)) != 0 ? benchmark::ConsoleReporter::OO_Defaults
                                                        : benchmark::ConsoleReporter::OO_None);
    benchmark::RunSpecifiedBenchmarks(&reporter);
    reporter.print_ratios();
    benchmark::Shutdown();
    return 0;
}
