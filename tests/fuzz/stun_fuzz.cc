// Fuzz target for lib/stun: arbitrary datagrams into is_stun_message and parse. Must never crash
// or read out of bounds; what parses is a STUN message by the cheap test too, its attributes lie
// inside it, and a Binding Request gets a response that parses back with the same address.
// Single-threaded.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "lib/stun.h"

namespace {

void check(bool ok) {
    if (!ok) {
        std::abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace meshfwd;
    const std::span<const uint8_t> in(data, size);
    stun::message m;
    const stun::parse_result r = stun::parse(in, m);
    if (r != stun::parse_result::ok) {
        check(!stun::describe(r).empty());
        return 0;
    }
    check(stun::is_stun_message(in));
    for (const auto& a : m.attrs()) {
        check(a.value.data() >= data && a.value.data() + a.value.size() <= data + size);
    }
    (void)stun::mapped_address(m);
    const auto mapped = stun::xor_mapped_address(m);
    if (m.type == stun::binding_request) {
        const endpoint from = mapped ? *mapped : endpoint(ip_address::v4(0xc0000201), 3478);
        std::array<uint8_t, stun::max_binding_success_size> answer{};
        check(stun::answer_binding_request(in, from, answer) > 0);
        std::array<uint8_t, stun::max_binding_success_size> out{};
        const std::size_t n = stun::build_binding_success(out, m.transaction_id, from);
        check(n > 0);
        stun::message resp;
        check(stun::parse(std::span<const uint8_t>(out.data(), n), resp) == stun::parse_result::ok);
        const auto back = stun::xor_mapped_address(resp);
        check(back.has_value() && back->port() == from.port() &&
              back->address() == from.address().unmapped());
    }
    return 0;
}
