// Fuzz target for lib/ip_address: arbitrary bytes as text into ip_address, ip_prefix and
// endpoint parsing, and as raw bytes into from_bytes/from_sockaddr. Must never crash; what
// parses must survive to_string -> parse unchanged. Single-threaded.
#include <sys/socket.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "lib/ip_address.h"

namespace {

void check(bool ok) {
    if (!ok) {
        std::abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace meshfwd;
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    if (auto a = ip_address::parse(text)) {
        const std::string s = a->to_string();
        auto again = ip_address::parse(s);
        check(again.ok() && *again == *a && again->to_string() == s);
        check(a->bytes().size() == (a->is_v4() ? 4u : 16u));
        check(ip_address::from_bytes(a->bytes()) == *a);
        check(a->unmapped().is_v4() == (a->is_v4() || a->is_v4_mapped()));
    } else {
        check(!a.error_message().empty());
    }

    if (auto p = ip_prefix::parse(text)) {
        auto again = ip_prefix::parse(p->to_string());
        check(again.ok() && *again == *p);
        check(p->contains(p->address()));
        const ip_prefix m = p->masked();
        check(m.length() == p->length() && m.contains(p->address()) && m.masked() == m);
    } else {
        check(!p.error_message().empty());
    }

    if (auto e = endpoint::parse(text)) {
        check(e->port() != 0);
        auto again = endpoint::parse(e->to_string());
        check(again.ok() && *again == *e);
        sockaddr_storage ss;
        const socklen_t len = e->to_sockaddr(ss);
        auto back = endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), len);
        check(back.has_value() && *back == *e);
    } else {
        check(!e.error_message().empty());
    }

    // Raw bytes as an address and as a sockaddr from the kernel.
    const ip_address raw = ip_address::from_bytes(std::span<const uint8_t>(data, size));
    auto raw_again = ip_address::parse(raw.to_string());
    check(raw_again.ok() && *raw_again == raw);
    sockaddr_storage ss{};
    std::memcpy(&ss, data, std::min(size, sizeof(ss)));
    if (auto ep = endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss),
                                          static_cast<socklen_t>(std::min(size, sizeof(ss))))) {
        sockaddr_storage out;
        const socklen_t len = ep->to_sockaddr(out);
        auto back = endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&out), len);
        check(back.has_value() && *back == *ep);
    }
    return 0;
}
