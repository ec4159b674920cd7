// Durations ("30s", "1h30m", "250ms") and sizes ("1500", "4K", "16MiB") as written in mesh.yaml
// and on command lines. Pure functions; any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "lib/result.h"

namespace meshfwd {

/// Parses a duration: one or more <integer><unit> parts, summed ("1h30m"). Units: ns, us, ms,
/// s, m, h. A unit is required (a bare "30" is an error); no sign, no fractions, no inner
/// blanks. Errors for negative, overflowing (past ~292 years) and malformed input.
result<std::chrono::nanoseconds> parse_duration(std::string_view text);

/// The shortest exact form, largest unit first: "5m", "1h30m", "250ms", "1s500ms", "0s".
/// parse_duration() reads it back to the same value (negative values get a leading '-',
/// which parse_duration refuses).
std::string format_duration(std::chrono::nanoseconds d);

/// Parses a byte size: an integer with an optional binary suffix: K/k/KiB, M/MiB, G/GiB, T/TiB
/// (multiples of 1024; suffix letters are case-insensitive), or B. Decimal-looking suffixes
/// (KB, MB) are refused as ambiguous. Errors for overflow and malformed input.
result<uint64_t> parse_size(std::string_view text);

/// The compact exact form: the largest binary suffix that divides the value: "1500", "4K", "16M".
std::string format_size(uint64_t bytes);

} // namespace meshfwd
