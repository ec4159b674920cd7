// Fuzz target for coord/request_auth's header parsing: the input is split at newlines into the
// node, counter and MAC headers, the method, the target and the body, and verified against a fixed
// server key. Must never crash; a request that verifies must be one this target signed (first
// byte odd: the MAC is replaced by a correct one for the fixed node key first). Single-threaded.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "coord/protocol.h"
#include "coord/request_auth.h"
#include "crypto/x25519.h"

namespace {

void check(bool ok) {
    if (!ok) {
        std::abort();
    }
}

meshfwd::crypto::secret32 fixed_secret(uint8_t fill) {
    std::array<uint8_t, 32> b{};
    b.fill(fill);
    meshfwd::crypto::secret32 s{std::span<const uint8_t, 32>(b)};
    meshfwd::crypto::clamp_private_key(s);
    return s;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace meshfwd;
    using namespace meshfwd::coord;
    static const bool ready = crypto::crypto_init();
    check(ready);
    static const secret32 server = fixed_secret(0x11);
    static const secret32 node = fixed_secret(0x22);
    static const node_key node_pub = crypto::derive_public_key(node);
    static const node_key server_pub = crypto::derive_public_key(server);
    if (size == 0) {
        return 0;
    }
    std::vector<std::string_view> f;
    std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    while (f.size() < 5) {
        const auto nl = rest.find('\n');
        if (nl == std::string_view::npos) {
            break;
        }
        f.push_back(rest.substr(0, nl));
        rest.remove_prefix(nl + 1);
    }
    f.push_back(rest); // the body
    f.resize(6);
    std::string mac(f[2]);
    if (data[0] & 1) {
        auto key = request_key(node, server_pub);
        check(key.ok());
        // Counter parse may fail; sign over the text's value when it is a plain number.
        uint64_t counter = 0;
        for (const char c : f[1]) {
            counter = counter * 10 + static_cast<uint64_t>(c - '0');
        }
        mac = sign_request(*key, node_pub, f[3], f[4], counter, f[5]).mac;
    }
    auto v = verify_request(server, f[0], f[1], mac, f[3], f[4], f[5]);
    if (v) {
        // Only the fixed node's key can have produced a valid MAC.
        check((data[0] & 1) != 0 && v->node == node_pub && v->counter > 0);
    } else {
        check(!v.error_message().empty());
    }
    return 0;
}
