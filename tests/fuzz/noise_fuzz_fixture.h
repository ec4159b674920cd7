// A deterministic pair of WireGuard peers for the handshake, cookie and transport fuzz targets
// (and for regenerating their seed corpora): fixed static keys, fixed ephemerals, a fixed
// timestamp and a fixed clock, so a seed message built once stays valid. Single-threaded.
#pragma once

#include "crypto/cookie.h"
#include "crypto/keypair.h"
#include "crypto/messages.h"
#include "crypto/noise.h"
#include "crypto/tai64n.h"
#include "crypto/transport.h"
#include "crypto/x25519.h"

#include <chrono>
#include <cstdint>
#include <cstdlib>

namespace meshfwd::fuzz {

inline crypto::secret32 fuzz_key(uint8_t seed) {
    crypto::secret32 k;
    for (std::size_t i = 0; i < 32; ++i) {
        k.data()[i] = static_cast<uint8_t>(seed * 29 + i * 13 + 5);
    }
    return k;
}

struct noise_fixture {
    static constexpr uint32_t index_a = 0x11111111;
    static constexpr uint32_t index_b = 0x22222222;

    crypto::mono_time now = crypto::mono_time{} + std::chrono::hours(1);
    crypto::static_identity a;
    crypto::static_identity b;
    crypto::peer_config a_to_b;  // a's view of b
    crypto::peer_config b_to_a;
    crypto::secret32 psk = fuzz_key(9);
    crypto::tai64n stamp = crypto::tai64n::from_unix(1700000000, 0);

    noise_fixture() {
        if (!crypto::crypto_init() || !a.set_private_key(fuzz_key(1)) || !b.set_private_key(fuzz_key(2)) ||
            !a_to_b.init(a, b.static_public, &psk) || !b_to_a.init(b, a.static_public, &psk)) {
            std::abort();
        }
    }

    // a's initiation (deterministic), with macs; hs is left in created_initiation.
    void initiate(crypto::handshake& hs, crypto::message_initiation& out, crypto::cookie_maker& maker) const {
        hs.inject_ephemeral_for_testing(fuzz_key(3));
        if (hs.create_initiation(out, index_a, stamp) != crypto::handshake_reason::ok) {
            std::abort();
        }
        maker.add_macs(out, now);
    }

    // b's response to that initiation (deterministic), with macs.
    void respond(const crypto::message_initiation& init, crypto::message_response& out,
                 crypto::keypair* kb = nullptr) const {
        crypto::handshake hs(b, b_to_a);
        crypto::cookie_maker maker(b_to_a);
        const auto r = crypto::consume_initiation(
            b, init, [&](const crypto::public_key&) { return &hs; }, now);
        hs.inject_ephemeral_for_testing(fuzz_key(4));
        if (r.reason != crypto::handshake_reason::ok || hs.create_response(out, index_b) != crypto::handshake_reason::ok) {
            std::abort();
        }
        maker.add_macs(out, now);
        if (kb != nullptr && !hs.begin_session(*kb, now)) {
            std::abort();
        }
    }

    // Both keypairs of the deterministic session.
    void session(crypto::keypair& ka, crypto::keypair& kb) const {
        crypto::handshake hs(a, a_to_b);
        crypto::cookie_maker maker(a_to_b);
        crypto::message_initiation init;
        initiate(hs, init, maker);
        crypto::message_response resp;
        respond(init, resp, &kb);
        if (hs.consume_response(resp) != crypto::handshake_reason::ok || !hs.begin_session(ka, now)) {
            std::abort();
        }
    }
};

}  // namespace meshfwd::fuzz
