// Transport messages: layout, padding, counters, keepalive, tampering, timers, concurrency.
#include "crypto/aead.h"
#include "crypto/transport.h"
#include "noise_test_util.h"
#include "test_data.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace meshfwd::crypto {
namespace {

using namespace std::chrono_literals;

struct session {
    test::test_pair pair{10, 20};
    keypair a;
    keypair b;
    mono_time now;
    session() : now(pair.t0) { EXPECT_TRUE(pair.run_handshake(a, b, now, 0x01020304, 0x0a0b0c0d)); }
};

std::vector<uint8_t> payload(std::size_t n) {
    std::vector<uint8_t> p(n);
    for (std::size_t i = 0; i < n; ++i) {
        p[i] = static_cast<uint8_t>(i * 3 + 1);
    }
    return p;
}

TEST(Transport, LayoutAndPadding) {
    session s;
    for (std::size_t len : {0u, 1u, 15u, 16u, 17u, 100u, 1420u}) {
        const auto p = payload(len);
        std::vector<uint8_t> wire(transport_message_size(len) + 7);
        const auto r = encapsulate(s.a, p, wire, s.now);
        ASSERT_EQ(r.reason, transport_reason::ok);
        const std::size_t padded = (len + 15) / 16 * 16;
        EXPECT_EQ(r.size, 16 + padded + 16) << len;
        EXPECT_EQ(load_le32(wire.data()), 4u);
        EXPECT_EQ(load_le32(wire.data() + 4), 0x0a0b0c0du);  // b's index
        EXPECT_EQ(load_le64(wire.data() + 8), r.counter);
        // Independent decryption: nonce = counter, AD empty, padding zeros.
        std::vector<uint8_t> plain(padded);
        ASSERT_TRUE(aead_decrypt(plain, std::span<const uint8_t>(wire.data() + 16, padded + 16), r.counter, {},
                                 s.b.recv_key));
        EXPECT_TRUE(std::equal(p.begin(), p.end(), plain.begin()));
        for (std::size_t i = len; i < padded; ++i) {
            EXPECT_EQ(plain[i], 0) << i;
        }
        std::vector<uint8_t> out(padded);
        const auto d = decapsulate(s.b, std::span<const uint8_t>(wire.data(), r.size), out, s.now);
        ASSERT_EQ(d.reason, transport_reason::ok);
        EXPECT_EQ(d.size, padded);
        EXPECT_EQ(out, plain);
    }
    EXPECT_EQ(s.a.send_counter.load(), 7u);
}

TEST(Transport, MtuCapsPadding) {
    EXPECT_EQ(transport_message_size(1419, 1420), 16 + 1420 + 16u);
    EXPECT_EQ(transport_message_size(1420, 1420), 16 + 1420 + 16u);
    EXPECT_EQ(transport_message_size(1417, 1420), 16 + 1420 + 16u);  // 1424 capped at 1420
    EXPECT_EQ(transport_message_size(1400, 1420), 16 + 1408 + 16u);
    EXPECT_EQ(transport_message_size(0, 1420), 32u);
    EXPECT_EQ(transport_message_size(1425, 1420), 16 + 1425 + 11 + 16u);  // kernel: remainder 5 → 16
}

TEST(Transport, KeepaliveAndCounters) {
    session s;
    std::vector<uint8_t> wire(32);
    std::vector<uint8_t> out(0);
    for (uint64_t i = 0; i < 5; ++i) {
        const auto r = encapsulate(s.b, {}, wire, s.now);
        ASSERT_EQ(r.reason, transport_reason::ok);
        EXPECT_EQ(r.size, 32u);
        EXPECT_EQ(r.counter, i);
        const auto d = decapsulate(s.a, wire, out, s.now);
        EXPECT_EQ(d.reason, transport_reason::ok);
        EXPECT_EQ(d.size, 0u);
        EXPECT_EQ(d.counter, i);
        EXPECT_EQ(decapsulate(s.a, wire, out, s.now).reason, transport_reason::replay_duplicate);
    }
}

TEST(Transport, InPlace) {
    session s;
    const auto p = payload(33);
    std::vector<uint8_t> buf(16 + 48 + 16);
    std::copy(p.begin(), p.end(), buf.begin() + 16);
    const auto r = encapsulate(s.a, std::span<const uint8_t>(buf.data() + 16, p.size()), buf, s.now);
    ASSERT_EQ(r.reason, transport_reason::ok);
    const auto d = decapsulate(s.b, buf, std::span<uint8_t>(buf.data() + 16, 48), s.now);
    ASSERT_EQ(d.reason, transport_reason::ok);
    EXPECT_TRUE(std::equal(p.begin(), p.end(), buf.begin() + 16));
}

TEST(Transport, RejectsTamperedShortAndMisaddressed) {
    session s;
    const auto p = payload(40);
    std::vector<uint8_t> wire(transport_message_size(40));
    ASSERT_EQ(encapsulate(s.a, p, wire, s.now).reason, transport_reason::ok);
    std::vector<uint8_t> out(wire.size());
    for (std::size_t len = 0; len < 32; ++len) {
        const auto r = decapsulate(s.b, std::span<const uint8_t>(wire.data(), len), out, s.now).reason;
        EXPECT_TRUE(r == transport_reason::truncated) << len;
    }
    for (std::size_t i = 8; i < wire.size(); i += 5) {
        auto bad = wire;
        bad[i] ^= 0x20;
        EXPECT_EQ(decapsulate(s.b, bad, out, s.now).reason, transport_reason::auth_failed) << i;
    }
    auto bad_index = wire;
    bad_index[4] ^= 1;
    EXPECT_EQ(decapsulate(s.b, bad_index, out, s.now).reason, transport_reason::wrong_index);
    auto bad_type = wire;
    bad_type[0] = 1;
    EXPECT_EQ(decapsulate(s.b, bad_type, out, s.now).reason, transport_reason::wrong_type);
    // Cut ciphertext (authentic prefix): fails authentication.
    EXPECT_EQ(decapsulate(s.b, std::span<const uint8_t>(wire.data(), wire.size() - 16), out, s.now).reason,
              transport_reason::auth_failed);
    std::vector<uint8_t> small(4);
    EXPECT_EQ(decapsulate(s.b, wire, small, s.now).reason, transport_reason::buffer_too_small);
    // The failures did not touch the window: the real message still goes through once.
    EXPECT_EQ(decapsulate(s.b, wire, out, s.now).reason, transport_reason::ok);
    EXPECT_EQ(decapsulate(s.b, wire, out, s.now).reason, transport_reason::replay_duplicate);
    // Wrong direction key: a's own message fed back to a.
    EXPECT_EQ(decapsulate(s.a, wire, out, s.now).reason, transport_reason::wrong_index);
    std::vector<uint8_t> tiny(10);
    EXPECT_EQ(encapsulate(s.a, p, tiny, s.now).reason, transport_reason::buffer_too_small);
}

TEST(Transport, ReplayWindowThroughDecapsulate) {
    session s;
    std::vector<std::vector<uint8_t>> msgs;
    for (int i = 0; i < 10000; ++i) {
        std::vector<uint8_t> w(32);
        ASSERT_EQ(encapsulate(s.a, {}, w, s.now).reason, transport_reason::ok);
        msgs.push_back(std::move(w));
    }
    std::vector<uint8_t> out;
    EXPECT_EQ(decapsulate(s.b, msgs[9999], out, s.now).reason, transport_reason::ok);
    EXPECT_EQ(decapsulate(s.b, msgs[9999 - 8128], out, s.now).reason, transport_reason::ok);
    EXPECT_EQ(decapsulate(s.b, msgs[9999 - 8129], out, s.now).reason, transport_reason::replay_too_old);
    EXPECT_EQ(decapsulate(s.b, msgs[5000], out, s.now).reason, transport_reason::ok);
    EXPECT_EQ(decapsulate(s.b, msgs[5000], out, s.now).reason, transport_reason::replay_duplicate);
}

TEST(Transport, CounterExhaustion) {
    session s;
    s.a.send_counter.store(spec::reject_after_messages - 2);
    std::vector<uint8_t> wire(32);
    std::vector<uint8_t> out;
    auto r = encapsulate(s.a, {}, wire, s.now);
    ASSERT_EQ(r.reason, transport_reason::ok);
    EXPECT_EQ(r.counter, spec::reject_after_messages - 2);
    EXPECT_EQ(decapsulate(s.b, wire, out, s.now).reason, transport_reason::ok);
    r = encapsulate(s.a, {}, wire, s.now);
    ASSERT_EQ(r.reason, transport_reason::ok);
    EXPECT_EQ(r.counter, spec::reject_after_messages - 1);
    EXPECT_EQ(decapsulate(s.b, wire, out, s.now).reason, transport_reason::ok);
    EXPECT_EQ(encapsulate(s.a, {}, wire, s.now).reason, transport_reason::counter_exhausted);
    EXPECT_EQ(encapsulate(s.a, {}, wire, s.now).reason, transport_reason::counter_exhausted);
    EXPECT_EQ(s.a.send_counter.load(), spec::reject_after_messages);  // never wraps
    EXPECT_EQ(encapsulate_with_counter(s.a, spec::reject_after_messages, {}, wire).reason,
              transport_reason::counter_exhausted);
    // A message forged with a counter at the limit (encrypted correctly) is refused before decryption.
    std::vector<uint8_t> forged(32, 0);
    store_le32(forged.data(), 4);
    store_le32(forged.data() + 4, s.b.local_index);
    store_le64(forged.data() + 8, spec::reject_after_messages);
    EXPECT_EQ(decapsulate(s.b, forged, out, s.now).reason, transport_reason::counter_limit);
}

TEST(Transport, ReserveBursts) {
    keypair kp;
    auto r = kp.reserve(32);
    EXPECT_EQ(r.first, 0u);
    EXPECT_EQ(r.count, 32u);
    r = kp.reserve(1u << 20);
    EXPECT_EQ(r.first, 32u);
    EXPECT_EQ(r.count, limits::max_counter_reservation);
    kp.send_counter.store(spec::reject_after_messages - 10);
    r = kp.reserve(32);
    EXPECT_EQ(r.count, 10u);
    r = kp.reserve(32);
    EXPECT_EQ(r.count, 0u);
    EXPECT_EQ(kp.reserve(0).count, 0u);
}

TEST(Transport, ConcurrentReservationsAreDisjoint) {
    keypair kp;
    constexpr int n_threads = 4;
    std::vector<std::vector<counter_range>> got(n_threads);
    std::vector<std::thread> threads;
    for (int t = 0; t < n_threads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 20000; ++i) {
                got[static_cast<std::size_t>(t)].push_back(kp.reserve(1 + static_cast<uint64_t>(i % 7)));
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    std::vector<uint8_t> used(kp.send_counter.load(), 0);
    for (const auto& v : got) {
        for (const auto& r : v) {
            for (uint64_t c = r.first; c < r.first + r.count; ++c) {
                ASSERT_EQ(used[c]++, 0) << c;
            }
        }
    }
    EXPECT_TRUE(std::all_of(used.begin(), used.end(), [](uint8_t u) { return u == 1; }));
}

TEST(Transport, RekeyAndExpiryTimers) {
    session s;
    const mono_time t = s.now;
    // Initiator (a) rekeys after 120 s on send; responder (b) does not by time.
    EXPECT_FALSE(s.a.needs_rekey_on_send(t + 119s));
    EXPECT_TRUE(s.a.needs_rekey_on_send(t + 120s));
    EXPECT_FALSE(s.b.needs_rekey_on_send(t + 170s));
    // On receive the initiator rekeys at 180 - 10 - 5 = 165 s.
    EXPECT_FALSE(s.a.needs_rekey_on_receive(t + 164s));
    EXPECT_TRUE(s.a.needs_rekey_on_receive(t + 165s));
    EXPECT_FALSE(s.b.needs_rekey_on_receive(t + 179s));
    // Message count: after 2^60 messages either side rekeys.
    s.b.send_counter.store(spec::rekey_after_messages + 1);
    EXPECT_TRUE(s.b.needs_rekey_on_send(t));
    // Expiry at 180 s: neither direction works.
    EXPECT_FALSE(s.a.expired(t + 179s));
    EXPECT_TRUE(s.a.expired(t + 180s));
    std::vector<uint8_t> wire(32);
    std::vector<uint8_t> out;
    ASSERT_EQ(encapsulate(s.a, {}, wire, t + 179s).reason, transport_reason::ok);
    EXPECT_EQ(decapsulate(s.b, wire, out, t + 180s).reason, transport_reason::expired);
    EXPECT_EQ(encapsulate(s.a, {}, wire, t + 180s).reason, transport_reason::expired);
    EXPECT_EQ(decapsulate(s.b, wire, out, t + 179s).reason, transport_reason::ok);
}

TEST(Transport, ReasonNames) {
    EXPECT_EQ(to_string(transport_reason::auth_failed), "auth_failed");
    EXPECT_EQ(n_transport_reasons, 12u);
}

}  // namespace
}  // namespace meshfwd::crypto
