// Loads and validates mesh.yaml into a control::config. Main thread, at start-up (blocking file
// I/O; may create the private key file with load_options::init_key).
//
// A bad file is refused as a whole: the error message holds every problem found, one per line,
// in file order, each as
//     mesh.yaml:14:7: peers[1].public_key: not 32 bytes of base64
// (file as given, 1-based line and column of the offending value or key, the key path, what is
// wrong). yaml-cpp exceptions never escape. Key material never appears in a message.
#pragma once

#include "control/config.h"
#include "lib/result.h"

#include <filesystem>

namespace meshfwd::control {

struct load_options {
    // Create node.private_key_file (mode 0600, `wg genkey` form) when it does not exist.
    bool init_key = false;
    // Read every key of the design without the checks of what this version acts on
    // (config_support.h): for tests of the schema itself. meshfwd never sets it.
    bool schema_only = false;
};

[[nodiscard]] result<config> load_config(const std::filesystem::path& file, const load_options& opts);

} // namespace meshfwd::control
