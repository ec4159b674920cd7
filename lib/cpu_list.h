// CPU lists as written on command lines and in sysfs ("2-5", "0,2,4-7"): parsing with clear
// errors and the compact form back. Used at startup to pick the cores workers are pinned to.
// Pure functions; any thread.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lib/result.h"

namespace meshfwd {

/// Parses a CPU list: comma-separated entries, each a CPU number ("3") or an inclusive range
/// ("4-7"); blanks around entries and around '-' are allowed. Every CPU must exist on this
/// machine (below sysconf(_SC_NPROCESSORS_CONF)) and be in this process's affinity mask.
/// @return the CPUs, sorted ascending, without duplicates; or an error naming the bad entry.
result<std::vector<unsigned>> parse_cpu_list(std::string_view text);

/// As above, but CPUs 0..n_cpus-1 are taken to exist and all are allowed (for tests and for
/// validating a list meant for another machine).
result<std::vector<unsigned>> parse_cpu_list(std::string_view text, unsigned n_cpus);

/// The CPUs this process may run on (sched_getaffinity), sorted ascending: what `taskset`,
/// cgroup cpusets and container limits leave it.
result<std::vector<unsigned>> allowed_cpus();

/// The compact form of a set of CPUs: "0-3,6". Input may be unsorted or hold duplicates;
/// an empty set gives "".
std::string format_cpu_list(std::span<const unsigned> cpus);

} // namespace meshfwd
