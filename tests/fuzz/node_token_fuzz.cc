// Fuzz target for coord/node_token. First byte even: the rest is a token, verified as is (the
// fuzzer cannot forge, so it exercises the structure checks and libjwt). Odd: the rest is a claims
// payload that this target signs with HS256 itself, so the claim reader sees arbitrary JSON.
// Must never crash or throw; accepted tokens have exp > now. Single-threaded.
#include <sodium.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "coord/node_token.h"

namespace {

void check(bool ok) {
    if (!ok) {
        std::abort();
    }
}

const std::string secret = "fuzz-secret-fuzz-secret-fuzz-secret-0123";
constexpr int64_t now = 1'800'000'000;

std::string b64url(std::string_view s) {
    std::string out(sodium_base64_ENCODED_LEN(s.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
    sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(s.data()), s.size(),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    out.resize(out.size() - 1);
    return out;
}

std::string sign_hs256(std::string_view claims) {
    std::string signing = b64url(R"({"alg":"HS256","typ":"JWT"})") + "." + b64url(claims);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(secret.data()), secret.size());
    crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(signing.data()), signing.size());
    crypto_auth_hmacsha256_final(&st, mac);
    return signing + "." + b64url(std::string_view(reinterpret_cast<const char*>(mac), sizeof mac));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace meshfwd::coord;
    if (size == 0 || size > 2 * max_token) {
        return 0;
    }
    static const bool ready = sodium_init() >= 0;
    check(ready);
    const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    const jwt_settings keys{secret, ""};
    const std::string token = (data[0] & 1) ? sign_hs256(rest) : std::string(rest);
    auto c = verify_node_token(token, keys, now);
    if (c) {
        check(c->expires_unix > now);
        const peer_policy p = parse_policy(policy_json(*c));
        check(p.allowed_peers.size() == c->allowed_peers.size() && p.max_peers == c->max_peers);
    } else {
        check(!c.error_message().empty());
    }
    (void)parse_policy(rest);
    return 0;
}
