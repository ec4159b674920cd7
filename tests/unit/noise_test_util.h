// Test helpers for the WireGuard protocol core: two in-process peers with their identities,
// peer configs, handshakes and cookie state. Test threads only.
#pragma once

#include "crypto/cookie.h"
#include "crypto/keypair.h"
#include "crypto/messages.h"
#include "crypto/noise.h"
#include "crypto/tai64n.h"
#include "crypto/x25519.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>

namespace meshfwd::test {

using namespace std::chrono_literals;

inline crypto::secret32 fixed_key(uint8_t seed) {
    crypto::secret32 k;
    for (std::size_t i = 0; i < 32; ++i) {
        k.data()[i] = static_cast<uint8_t>(seed * 31 + i * 7 + 1);
    }
    return k;
}

// One side of a pair: its identity, its view of the other side, handshake and cookie maker.
struct test_side {
    crypto::static_identity identity;
    crypto::peer_config peer;
    std::unique_ptr<crypto::handshake> hs;
    std::unique_ptr<crypto::cookie_maker> maker;
    std::unique_ptr<crypto::cookie_checker> checker;
};

struct test_pair {
    test_side a;  // initiator
    test_side b;  // responder
    crypto::mono_time t0 = crypto::mono_time{} + 1000s;

    // psk_a / psk_b: the PSK each side holds for the other (nullptr: none).
    test_pair(uint8_t seed_a, uint8_t seed_b, const crypto::secret32* psk_a = nullptr,
              const crypto::secret32* psk_b = nullptr) {
        EXPECT_TRUE(crypto::crypto_init());
        EXPECT_TRUE(a.identity.set_private_key(fixed_key(seed_a)));
        EXPECT_TRUE(b.identity.set_private_key(fixed_key(seed_b)));
        EXPECT_TRUE(a.peer.init(a.identity, b.identity.static_public, psk_a));
        EXPECT_TRUE(b.peer.init(b.identity, a.identity.static_public, psk_b));
        for (test_side* s : {&a, &b}) {
            s->hs = std::make_unique<crypto::handshake>(s->identity, s->peer);
            s->maker = std::make_unique<crypto::cookie_maker>(s->peer);
            s->checker = std::make_unique<crypto::cookie_checker>(s->identity, t0);
        }
    }

    // The responder's lookup: only a's key is known.
    crypto::peer_lookup lookup_for_b() {
        return [this](const crypto::public_key& key) -> crypto::handshake* {
            return key == a.identity.static_public ? b.hs.get() : nullptr;
        };
    }

    // a's lookup: only b's key is known.
    crypto::peer_lookup lookup_for_a() {
        return [this](const crypto::public_key& key) -> crypto::handshake* {
            return key == b.identity.static_public ? a.hs.get() : nullptr;
        };
    }

    // Full handshake; both keypairs filled. Returns false (with test failures) on any error.
    bool run_handshake(crypto::keypair& ka, crypto::keypair& kb, crypto::mono_time now, uint32_t index_a = 11,
                       uint32_t index_b = 22, const crypto::tai64n& stamp = crypto::tai64n::now()) {
        crypto::message_initiation init;
        if (a.hs->create_initiation(init, index_a, stamp) != crypto::handshake_reason::ok) {
            ADD_FAILURE() << "create_initiation";
            return false;
        }
        a.maker->add_macs(init, now);
        EXPECT_EQ(b.checker->check_mac1(crypto::as_bytes(init)), crypto::cookie_reason::ok);
        const auto r = crypto::consume_initiation(b.identity, init, lookup_for_b(), now);
        if (r.reason != crypto::handshake_reason::ok || r.peer != b.hs.get()) {
            ADD_FAILURE() << "consume_initiation: " << crypto::to_string(r.reason);
            return false;
        }
        crypto::message_response resp;
        if (b.hs->create_response(resp, index_b) != crypto::handshake_reason::ok) {
            ADD_FAILURE() << "create_response";
            return false;
        }
        b.maker->add_macs(resp, now);
        EXPECT_EQ(a.checker->check_mac1(crypto::as_bytes(resp)), crypto::cookie_reason::ok);
        const auto rr = a.hs->consume_response(resp);
        if (rr != crypto::handshake_reason::ok) {
            ADD_FAILURE() << "consume_response: " << crypto::to_string(rr);
            return false;
        }
        return a.hs->begin_session(ka, now) && b.hs->begin_session(kb, now);
    }
};

}  // namespace meshfwd::test
