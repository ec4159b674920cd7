// The meshcoord client's state on disk (mesh.discovery.cache_file): the last registration and
// peer list, so a node started while meshcoord is down comes up with its addresses and peers.
// Written atomically (a temporary file in the same directory, fsync, rename) with mode 0600: it
// names every peer of the network. Control thread (and tests).
#pragma once

#include "control/coord_peers.h"
#include "coord/protocol.h"
#include "lib/result.h"

#include <filesystem>
#include <optional>
#include <string>

namespace meshfwd::control {

struct coord_cache {
    // Whose state this is: a cache written for another network or key is not used.
    std::string network_id;
    std::string public_key;  // base64
    std::string server;      // the URL it came from, for status output
    std::optional<coord::register_response> registration;
    coord_peer_set peers;
};

// Serialised as JSON ({"format":1,...}); parsing refuses anything else, naming what is wrong.
std::string coord_cache_json(const coord_cache& cache);
result<coord_cache> parse_coord_cache(std::string_view text);

result<void> save_coord_cache(const std::filesystem::path& file, const coord_cache& cache);
// No file: an empty optional (a first start). A file that cannot be read or parsed: an error.
result<std::optional<coord_cache>> load_coord_cache(const std::filesystem::path& file);

} // namespace meshfwd::control
