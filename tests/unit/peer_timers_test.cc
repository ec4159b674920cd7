// Unit tests for control/peer_timers: each WireGuard timer rule at its threshold and just before,
// with made-up clock readings, and a retransmission run to the give-up. Test thread only.
#include "control/peer_timers.h"

#include <gtest/gtest.h>

#include <chrono>

namespace meshfwd::control {
namespace {

using namespace std::chrono_literals;
using crypto::mono_time;

// Times are offsets from an arbitrary start well past the clock's epoch.
const mono_time t0 = mono_time(1000h);

mono_time at(std::chrono::nanoseconds offset) { return t0 + offset; }
int64_t ns_at(std::chrono::nanoseconds offset) { return at(offset).time_since_epoch().count(); }

// A peer with a fresh keypair (born at t0), an endpoint, and no traffic yet.
peer_timer_state established() {
    peer_timer_state p;
    p.now = t0;
    p.current_birth = t0;
    p.has_endpoint = true;
    return p;
}

TEST(PeerTimers, NothingDueForAFreshQuietSession) {
    peer_timer_state p = established();
    for (const auto when : {0s, 1s, 9s, 60s, 179s}) {
        p.now = at(when);
        EXPECT_FALSE(due_timers(p).any()) << when.count() << " s";
    }
}

TEST(PeerTimers, RetransmitWhenDueThenGiveUpLikeTheKernel) {
    peer_timer_state p;
    p.has_endpoint = true;
    p.handshaking = true;
    p.retransmit_at = at(5s);
    p.now = at(5s - 1ns);
    EXPECT_FALSE(due_timers(p).retransmit_initiation);
    p.now = at(5s);
    EXPECT_TRUE(due_timers(p).retransmit_initiation);
    EXPECT_FALSE(due_timers(p).give_up_handshake);

    // Drive it as node.cc does, one tick every 100 ms, 5 s between initiations, until it gives up.
    p.now = t0;
    p.retries = 0;
    p.retransmit_at = t0 + crypto::spec::rekey_timeout;
    unsigned initiations = 1;
    mono_time gave_up{};
    for (int tick = 0; tick < 2000 && p.handshaking; ++tick) {
        p.now = at(tick * 100ms);
        const peer_timer_actions due = due_timers(p);
        ASSERT_FALSE(due.retransmit_initiation && due.give_up_handshake);
        if (due.retransmit_initiation) {
            ++p.retries;
            ++initiations;
            p.retransmit_at = p.now + crypto::spec::rekey_timeout;
        }
        if (due.give_up_handshake) {
            p.handshaking = false;
            gave_up = p.now;
        }
    }
    EXPECT_FALSE(p.handshaking);
    EXPECT_EQ(initiations, 20u) << "the kernel's MAX_TIMER_HANDSHAKES + 2";
    EXPECT_EQ(gave_up, at(100s));
}

TEST(PeerTimers, RekeyAskedByAWorkerUnlessAlreadyHandshaking) {
    peer_timer_state p = established();
    p.now = at(120s);
    p.rekey_wanted = true;
    EXPECT_TRUE(due_timers(p).initiate_rekey);
    p.handshaking = true;
    p.retransmit_at = at(125s);
    EXPECT_FALSE(due_timers(p).initiate_rekey);
}

TEST(PeerTimers, PassiveKeepaliveTenSecondsAfterUnansweredData) {
    peer_timer_state p = established();
    p.last_rx_ns = p.last_rx_data_ns = ns_at(30s);
    p.last_tx_ns = ns_at(29s);
    p.now = at(40s - 1ns);
    EXPECT_FALSE(due_timers(p).passive_keepalive);
    p.now = at(40s);
    EXPECT_TRUE(due_timers(p).passive_keepalive);

    // Anything sent since (data or keepalive) answers it.
    p.last_tx_ns = ns_at(31s);
    EXPECT_FALSE(due_timers(p).passive_keepalive);
    // A keepalive received is not data: nothing to answer.
    p.last_tx_ns = ns_at(29s);
    p.last_rx_data_ns = ns_at(20s);
    EXPECT_FALSE(due_timers(p).passive_keepalive);
    // No usable keypair: nothing to send it with.
    p.last_rx_data_ns = ns_at(30s);
    p.current_birth = at(-150s);  // expired at 30 s
    EXPECT_FALSE(due_timers(p).passive_keepalive);
}

TEST(PeerTimers, NewHandshakeFifteenSecondsAfterDataWithNoReply) {
    peer_timer_state p = established();
    p.last_rx_ns = ns_at(10s);
    p.last_tx_ns = p.last_tx_data_ns = ns_at(20s);
    p.now = at(35s - 1ns);
    EXPECT_FALSE(due_timers(p).new_handshake);
    p.now = at(35s);
    EXPECT_TRUE(due_timers(p).new_handshake);
    // Once per silence: the same last send does not start another.
    p.new_handshake_trigger_ns = p.last_tx_data_ns;
    p.now = at(60s);
    EXPECT_FALSE(due_timers(p).new_handshake);
    // More data sent into the silence starts the count again.
    p.last_tx_ns = p.last_tx_data_ns = ns_at(61s);
    p.now = at(76s);
    EXPECT_TRUE(due_timers(p).new_handshake);
    // Not while a handshake is on its way, and not once anything came back.
    p.handshaking = true;
    p.retransmit_at = at(80s);
    EXPECT_FALSE(due_timers(p).new_handshake);
    p.handshaking = false;
    p.last_rx_ns = ns_at(62s);
    EXPECT_FALSE(due_timers(p).new_handshake);
    // Only data counts: keepalives sent into the silence start nothing, and do not postpone it.
    p.last_tx_data_ns = ns_at(40s);
    p.last_rx_ns = ns_at(45s);
    p.last_tx_ns = ns_at(70s);
    p.now = at(90s);
    EXPECT_FALSE(due_timers(p).new_handshake);
    p.last_tx_data_ns = ns_at(50s);
    p.now = at(65s);
    EXPECT_TRUE(due_timers(p).new_handshake);
}

TEST(PeerTimers, PersistentKeepaliveAfterTheIntervalOfSilenceEitherWay) {
    peer_timer_state p = established();
    p.persistent_keepalive = 25s;
    p.last_tx_ns = ns_at(10s);
    p.last_rx_ns = ns_at(20s);
    p.now = at(45s - 1ns);
    EXPECT_FALSE(due_timers(p).persistent_keepalive);
    p.now = at(45s);
    EXPECT_TRUE(due_timers(p).persistent_keepalive) << "25 s after the later of rx and tx";
    p.persistent_keepalive.reset();
    EXPECT_FALSE(due_timers(p).persistent_keepalive);
    p.persistent_keepalive = 25s;
    p.has_endpoint = false;
    EXPECT_FALSE(due_timers(p).persistent_keepalive) << "nowhere to send it";
    p.has_endpoint = true;
    // While rekeying with a keypair in hand it goes out; before the first session it would wait.
    p.handshaking = true;
    p.retransmit_at = at(50s);
    EXPECT_TRUE(due_timers(p).persistent_keepalive);
    p.current_birth.reset();
    EXPECT_FALSE(due_timers(p).persistent_keepalive);
}

TEST(PeerTimers, KeypairsRetiredAfterRejectAfterTime) {
    peer_timer_state p = established();
    p.previous_birth = at(-100s);
    p.next_birth = at(-20s);
    p.now = at(80s - 1ns);
    EXPECT_FALSE(due_timers(p).retire_previous);
    p.now = at(80s);
    EXPECT_TRUE(due_timers(p).retire_previous);
    EXPECT_FALSE(due_timers(p).retire_next);
    p.now = at(160s);
    EXPECT_TRUE(due_timers(p).retire_next);
    EXPECT_FALSE(due_timers(p).zero_current);
}

TEST(PeerTimers, AllKeysZeroedThreeRejectAfterTimesAfterTheLastKeypair) {
    peer_timer_state p = established();
    p.now = at(180s);
    const peer_timer_actions expired = due_timers(p);
    EXPECT_FALSE(expired.zero_current) << "expired is not yet zeroed";
    p.now = at(540s - 1ns);
    EXPECT_FALSE(due_timers(p).zero_current);
    p.now = at(540s);
    EXPECT_TRUE(due_timers(p).zero_current);
    // Still trying to handshake does not keep the old keys alive.
    p.handshaking = true;
    p.retransmit_at = at(541s);
    EXPECT_TRUE(due_timers(p).zero_current);
}

} // namespace
} // namespace meshfwd::control
