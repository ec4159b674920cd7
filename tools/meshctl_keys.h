// meshctl key commands (genkey, pubkey, genpsk) and the private-key file loader. Main thread.
//
// Output is byte-compatible with `wg genkey | wg pubkey | wg genpsk`: 44 characters of
// standard base64 and a newline.
#pragma once

#include "crypto/secret.h"
#include "lib/result.h"

#include <cstdio>
#include <string>

namespace meshfwd::meshctl {

// Each returns the process exit status; messages go to stderr.
int run_genkey(std::FILE* out);
int run_genpsk(std::FILE* out);
// Reads one base64 private key from `in` exactly as `wg pubkey` does (44 characters, then only
// whitespace), prints its public key.
int run_pubkey(std::FILE* in, std::FILE* out);

} // namespace meshfwd::meshctl
