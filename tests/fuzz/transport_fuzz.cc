// Fuzz target: arbitrary bytes as transport messages decapsulated with a fixed session (both
// directions), and as a payload that must survive an encapsulate/decapsulate round trip.
#include "noise_fuzz_fixture.h"

#include <array>
#include <cstring>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace {

using namespace meshfwd;

struct state {
    fuzz::noise_fixture fx;
    crypto::keypair ka;
    crypto::keypair kb;
    // Copies of the keys with their own counter and window, for the round trip (fuzzed
    // inputs accepted by kb must not make the round trip's counters look replayed).
    crypto::keypair kc;
    crypto::keypair kd;
    std::vector<uint8_t> out = std::vector<uint8_t>(70000);
    std::vector<uint8_t> wire = std::vector<uint8_t>(70000);

    state() {
        fx.session(ka, kb);
        kc.send_key = ka.send_key.clone();
        kc.remote_index = ka.remote_index;
        kc.birth = ka.birth;
        kd.recv_key = kb.recv_key.clone();
        kd.local_index = kb.local_index;
        kd.birth = kb.birth;
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static state s;
    const std::span<const uint8_t> in(data, size);
    (void)crypto::decapsulate(s.kb, in, s.out, s.fx.now);
    (void)crypto::decapsulate(s.ka, in, s.out, s.fx.now);

    if (size <= crypto::limits::max_transport_payload) {
        const auto e = crypto::encapsulate(s.kc, in, s.wire, s.fx.now);
        if (e.reason != crypto::transport_reason::ok) {
            __builtin_trap();
        }
        const auto d = crypto::decapsulate(s.kd, std::span<const uint8_t>(s.wire.data(), e.size), s.out, s.fx.now);
        if (d.reason != crypto::transport_reason::ok || d.size < size || d.size % 16 != 0 ||
            (size > 0 && std::memcmp(s.out.data(), data, size) != 0)) {
            __builtin_trap();
        }
    }
    return 0;
}
