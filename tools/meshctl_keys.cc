// meshctl key commands and the private-key file loader. Main thread.
#include "tools/meshctl_keys.h"

#include "crypto/x25519.h"

#include <sodium.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace meshfwd::meshctl {
namespace {

// `wg genkey` warns when the key lands in a file others can read; so do we.
void warn_if_world_accessible(std::FILE* out) {
    struct stat st {};
    if (fstat(fileno(out), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & S_IRWXO) != 0) {
        std::fputs("Warning: writing to world accessible file.\n"
                   "Consider setting the umask to 077 and trying again.\n",
                   stderr);
    }
}

int print_key(std::FILE* out, std::span<const uint8_t, 32> key) {
    const std::string text = crypto::key_to_base64(key);
    if (std::fprintf(out, "%s\n", text.c_str()) < 0 || std::fflush(out) != 0) {
        std::fprintf(stderr, "meshctl: cannot write key: %s\n", std::strerror(errno));
        return 1;
    }
    return 0;
}

bool is_key_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\0'; }

} // namespace

int run_genkey(std::FILE* out) {
    warn_if_world_accessible(out);
    const crypto::secret32 key = crypto::generate_private_key();
    return print_key(out, key.span());
}

int run_genpsk(std::FILE* out) {
    warn_if_world_accessible(out);
    crypto::secret32 psk;
    randombytes_buf(psk.data(), psk.size());
    return print_key(out, psk.span());
}

int run_pubkey(std::FILE* in, std::FILE* out) {
    // Same shape as wg's pubkey.c: exactly 44 characters, then nothing but whitespace.
    std::array<char, 44> text{};
    crypto::wipe_on_exit<std::array<char, 44>> wipe_text(text);
    if (std::fread(text.data(), 1, text.size(), in) != text.size()) {
        std::fputs("meshctl: Key is not the correct length or format\n", stderr);
        return 1;
    }
    // Bounded: a pipe that never ends is read at most this far.
    for (int i = 0; i < 4096; ++i) {
        const int c = std::fgetc(in);
        if (c == EOF) {
            break;
        }
        if (!is_key_space(c)) {
            std::fputs("meshctl: Trailing characters found after key\n", stderr);
            return 1;
        }
    }
    auto bytes = crypto::key_from_base64(std::string_view(text.data(), text.size()));
    if (!bytes || is_key_space(text[0])) {
        std::fputs("meshctl: Key is not the correct length or format\n", stderr);
        return 1;
    }
    const crypto::secret32 key{std::span<const uint8_t, 32>(*bytes)};
    sodium_memzero(bytes->data(), bytes->size());
    const crypto::public_key pub = crypto::derive_public_key(key);
    return print_key(out, pub);
}


} // namespace meshfwd::meshctl
