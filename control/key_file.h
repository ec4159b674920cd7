// Key files as `wg genkey` / `wg genpsk` write them: one base64 key and a newline, readable by
// the owner only. Used by the config loader on the main thread at start-up; any thread may call
// these (no shared state), but they do blocking file I/O, so never from a worker.
//
// Error messages never contain key material; they name the file as `shown` (the path as the
// user wrote it, resolved against the config directory) so a message reads like the config.
#pragma once

#include "crypto/secret.h"
#include "lib/result.h"

#include <filesystem>

namespace meshfwd::control {

// Reads one 32-byte key. Refuses a file that is not a regular file, that group or others may
// read or write (the key would be exposed, as `wg` warns), or whose content, whitespace
// trimmed, is not exactly one base64 key. The key is returned as stored (not clamped).
[[nodiscard]] result<crypto::secret32> read_key_file(const std::filesystem::path& path);

// Creates `path` (which must not exist) with mode 0600 holding a new clamped X25519 private key
// in `wg genkey` form, and returns that key. O_EXCL: never overwrites an existing key.
[[nodiscard]] result<crypto::secret32> create_private_key_file(const std::filesystem::path& path);

} // namespace meshfwd::control
