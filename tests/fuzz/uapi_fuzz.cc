// Fuzz target for control/uapi_protocol: arbitrary bytes as a UAPI request. Must never crash;
// a refusal carries a positive errno and a message; what parses as set=1 has every field in range.
// Single-threaded.
#include "control/uapi_protocol.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

void check(bool ok) {
    if (!ok) {
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    namespace uapi = meshfwd::control::uapi;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const std::size_t end = uapi::request_end(text);
    check(end == std::string_view::npos || (end >= 1 && end <= text.size()));

    const auto r = uapi::parse_request(text);
    if (const auto* e = std::get_if<uapi::error>(&r)) {
        check(e->code > 0);
        check(!e->message.empty());
        return 0;
    }
    // A request that parses was complete: it has its empty line.
    check(end != std::string_view::npos);
    if (const auto* s = std::get_if<uapi::set_request>(&r)) {
        for (const auto& p : s->peers) {
            for (const auto& a : p.allowed_ips) {
                check(a == a.masked());
            }
            check(!p.endpoint_address || p.endpoint_address->port() != 0);
        }
        // The get text of what was set parses as a get reply would: every line has a '='.
        uapi::device_view d;
        for (const auto& p : s->peers) {
            uapi::peer_view v;
            v.public_key = p.public_key;
            v.endpoint_address = p.endpoint_address;
            v.allowed_ips = p.allowed_ips;
            d.peers.push_back(std::move(v));
        }
        const std::string out = uapi::format_get(d);
        check(out.ends_with("errno=0\n\n"));
    }
    return 0;
}
