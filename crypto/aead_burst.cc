// Backend selection for the batched AEAD. Any thread (make_aead_burst allocates: worker setup only).
#include "crypto/aead_burst.h"

#include "crypto/aead_burst_backends.h"

namespace meshfwd::crypto {

aead_burst::~aead_burst() = default;

bool aead_backend_available(aead_backend backend) noexcept {
    switch (backend) {
    case aead_backend::automatic:
    case aead_backend::libsodium:
        return true;
    case aead_backend::ipsec_mb:
#if MESHFWD_HAVE_IPSEC_MB
        return burst_detail::ipsec_mb_supported();
#else
        return false;
#endif
    }
    return false;
}

aead_backend resolve_backend(aead_backend backend) noexcept {
    if (backend != aead_backend::automatic) {
        return backend;
    }
    return aead_backend_available(aead_backend::ipsec_mb) ? aead_backend::ipsec_mb : aead_backend::libsodium;
}

std::unique_ptr<aead_burst> make_aead_burst(aead_backend backend) {
    switch (resolve_backend(backend)) {
    case aead_backend::libsodium:
        return burst_detail::make_sodium();
    case aead_backend::ipsec_mb:
#if MESHFWD_HAVE_IPSEC_MB
        return burst_detail::make_ipsec_mb();
#else
        return nullptr;
#endif
    case aead_backend::automatic:
        break;
    }
    return nullptr;
}

std::optional<aead_backend> parse_aead_backend(std::string_view text) noexcept {
    if (text == "auto") {
        return aead_backend::automatic;
    }
    if (text == "libsodium") {
        return aead_backend::libsodium;
    }
    if (text == "ipsec-mb") {
        return aead_backend::ipsec_mb;
    }
    return std::nullopt;
}

std::string_view to_string(aead_backend backend) noexcept {
    switch (backend) {
    case aead_backend::automatic:
        return "auto";
    case aead_backend::libsodium:
        return "libsodium";
    case aead_backend::ipsec_mb:
        return "ipsec-mb";
    }
    return "?";
}

} // namespace meshfwd::crypto
