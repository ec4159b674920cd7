// Fuzz target for coord/invite: arbitrary text into decode_invite and verify_invite. Must never
// crash; a code that decodes must re-encode (with a test key) to one that decodes to the same
// fields and verifies; the fuzzer cannot forge, so verify against the fixed key must fail unless
// the input was signed with it. Single-threaded.
#include <sodium.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "coord/invite.h"

namespace {

void check(bool ok) {
    if (!ok) {
        std::abort();
    }
}

struct keys {
    std::vector<uint8_t> pub, sec;
    keys() {
        check(sodium_init() >= 0);
        // A fixed seed: the seed corpus holds codes signed with this key.
        std::vector<uint8_t> seed(crypto_sign_SEEDBYTES, 0x42);
        pub.resize(crypto_sign_PUBLICKEYBYTES);
        sec.resize(crypto_sign_SECRETKEYBYTES);
        crypto_sign_seed_keypair(pub.data(), sec.data(), seed.data());
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace meshfwd::coord;
    static const keys k;
    const std::string_view code(reinterpret_cast<const char*>(data), size);
    auto decoded = decode_invite(code);
    auto verified = verify_invite(code, k.pub);
    if (!decoded) {
        check(!decoded.error_message().empty());
        check(!verified.ok());
        return 0;
    }
    if (verified) {
        check(verified->invite_id == decoded->invite_id && verified->expires_unix == decoded->expires_unix);
    }
    const std::string again = encode_invite(*decoded, k.sec);
    check(!again.empty());
    auto back = verify_invite(again, k.pub);
    check(back.ok());
    check(back->invite_id == decoded->invite_id && back->network_id == decoded->network_id &&
          back->server_urls == decoded->server_urls && back->server_public_key == decoded->server_public_key &&
          back->expires_unix == decoded->expires_unix);
    return 0;
}
