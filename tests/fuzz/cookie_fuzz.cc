// Fuzz target: arbitrary bytes as a cookie reply (consumed by a cookie maker that has sent a
// mac1) and as a mac-checked handshake message (mac1, mac2, cookie reply creation). Must never
// crash; a valid reply re-arms the maker so the next input is judged the same way.
#include "noise_fuzz_fixture.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace {

using namespace meshfwd;

struct state {
    fuzz::noise_fixture fx;
    crypto::handshake initiator{fx.a, fx.a_to_b};
    crypto::cookie_maker maker{fx.a_to_b};
    crypto::cookie_checker checker{fx.b, fx.now};
    crypto::message_initiation init;

    state() { fx.initiate(initiator, init, maker); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static state s;
    const std::span<const uint8_t> in(data, size);

    crypto::message_cookie_reply reply;
    if (crypto::parse_cookie_reply(in, reply) == crypto::message_reason::ok) {
        if (s.maker.consume_cookie_reply(reply, s.fx.now) == crypto::cookie_reason::ok) {
            s.maker.add_macs(s.init, s.fx.now);  // re-arm: a mac1 is outstanding again
        }
    }

    static constexpr std::array<uint8_t, 4> ip = {198, 51, 100, 9};
    const auto src = crypto::cookie_source::from(ip, static_cast<uint16_t>(size));
    (void)s.checker.check_mac1(in);
    (void)s.checker.check_macs(in, src, s.fx.now);
    crypto::message_cookie_reply out;
    if (s.checker.create_cookie_reply(out, in, 1, src, s.fx.now) != (size >= crypto::macs_size)) {
        __builtin_trap();
    }
    return 0;
}
