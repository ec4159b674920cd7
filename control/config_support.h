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

// The largest mesh.device.mtu the data plane carries: a packet of this size plus the TUN
// header fits one pool buffer (dataplane/packet_pool.h).
uint32_t max_supported_mtu() noexcept;

// Records errors and warnings on `reader` for the keys of `cfg` this version does not act on.
// `mtu_mark`: where mesh.device.mtu was written (or the mesh section when it was not).
void check_supported(const config& cfg, config_reader& reader, const YAML::Mark& mtu_mark);

// The checks that need the number of workers (known from --cores once the file is loaded):
// dataplane.lane_ports must hold a port per worker. meshfwd runs it for --check and at start.
[[nodiscard]] result<void> check_workers(const config& cfg, size_t n_workers);

} // namespace meshfwd::control
