// What this version of meshfwd acts on. The schema (config_yaml.cc) accepts every key of the
// design, including features not built yet; check_supported() runs at the end of every load
// (so `meshfwd --check`, start-up and SIGHUP reload apply the same rules) and either refuses
// such a key (an error: it changes security or reachability, or the node could not run) or
// warns that it is ignored. Loading thread only; internal to control/.
#pragma once

#include "control/config.h"
#include "control/config_reader.h"
#include "lib/result.h"

#include <cstddef>
#include <cstdint>

namespace meshfwd::control {

// Records errors and warnings on `reader` for the keys of `cfg` this version does not act on.
// (The MTU needs no check here: the data plane carries every MTU the schema accepts, up to
// crypto::limits::max_mtu.)
void check_supported(const config& cfg, config_reader& reader);

// The checks that need the number of workers (known from --cores once the file is loaded):
// dataplane.lane_ports must hold a port per worker. meshfwd runs it for --check and at start.
[[nodiscard]] result<void> check_workers(const config& cfg, size_t n_workers);

} // namespace meshfwd::control
