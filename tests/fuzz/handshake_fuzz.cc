// Fuzz target: arbitrary bytes as handshake messages. An initiation goes through mac1 and
// consume_initiation against a fixed responder (a fresh handshake per input, so replay memory
// does not hide the later steps) and, if accepted, create_response; a response goes to a fixed
// initiator with an outstanding initiation. Must never crash; valid seeds must be accepted.
#include "noise_fuzz_fixture.h"

#include <cstddef>
#include <cstdint>
#include <span>

namespace {

using namespace meshfwd;

struct state {
    fuzz::noise_fixture fx;
    crypto::handshake initiator{fx.a, fx.a_to_b};
    crypto::cookie_maker maker{fx.a_to_b};
    crypto::cookie_checker checker_a{fx.a, fx.now};
    crypto::cookie_checker checker_b{fx.b, fx.now};
    crypto::message_initiation init;

    state() { fx.initiate(initiator, init, maker); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static state s;
    const std::span<const uint8_t> in(data, size);
    (void)crypto::classify_message(in);

    crypto::message_initiation init;
    if (crypto::parse_initiation(in, init) == crypto::message_reason::ok) {
        (void)s.checker_b.check_mac1(in);
        crypto::handshake responder(s.fx.b, s.fx.b_to_a);
        const auto r = crypto::consume_initiation(
            s.fx.b, init,
            [&](const crypto::public_key& key) { return key == s.fx.a.static_public ? &responder : nullptr; },
            s.fx.now);
        if (r.reason == crypto::handshake_reason::ok) {
            crypto::message_response resp;
            if (responder.create_response(resp, 7) != crypto::handshake_reason::ok) {
                __builtin_trap();
            }
            crypto::keypair kb;
            if (!responder.begin_session(kb, s.fx.now)) {
                __builtin_trap();
            }
        }
    }

    crypto::message_response resp;
    if (crypto::parse_response(in, resp) == crypto::message_reason::ok) {
        (void)s.checker_a.check_mac1(in);
        if (s.initiator.consume_response(resp) == crypto::handshake_reason::ok) {
            crypto::keypair ka;
            if (!s.initiator.begin_session(ka, s.fx.now)) {
                __builtin_trap();
            }
            s.fx.initiate(s.initiator, s.init, s.maker);  // re-arm (deterministic)
        }
    }
    return 0;
}
