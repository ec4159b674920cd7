// Duration and size parsing and formatting (see units.h). Pure functions; any thread.
#include "lib/units.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>

namespace meshfwd {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) {
        s.remove_prefix(1);
    }
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
        s.remove_suffix(1);
    }
    return s;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Reads the leading digits of s into *out; false when the number does not fit in 64 bits.
bool read_number(std::string_view& s, uint64_t* out) {
    uint64_t v = 0;
    while (!s.empty() && is_digit(s.front())) {
        const auto d = static_cast<uint64_t>(s.front() - '0');
        if (__builtin_mul_overflow(v, 10u, &v) || __builtin_add_overflow(v, d, &v)) {
            return false;
        }
        s.remove_prefix(1);
    }
    *out = v;
    return true;
}

struct duration_unit {
    std::string_view name;
    int64_t ns;
};

constexpr std::array<duration_unit, 6> duration_units{{
    {"h", 3'600'000'000'000},
    {"m", 60'000'000'000},
    {"s", 1'000'000'000},
    {"ms", 1'000'000},
    {"us", 1'000},
    {"ns", 1},
}};

bool equals_ignore_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
            return false;
        }
    }
    return true;
}

} // namespace

result<std::chrono::nanoseconds> parse_duration(std::string_view text) {
    const std::string_view s = trim(text);
    const std::string quoted = "duration '" + std::string(s) + "'";
    if (s.empty()) {
        return make_error("duration is empty");
    }
    if (s.front() == '-') {
        return make_error(quoted + " must not be negative");
    }
    if (std::all_of(s.begin(), s.end(), is_digit)) {
        return make_error(quoted + " needs a unit: ms, s, m, h");
    }
    std::string_view rest = s;
    uint64_t total = 0;
    while (!rest.empty()) {
        if (!is_digit(rest.front())) {
            return make_error(quoted + " is not valid: expected a number followed by a unit (ms, s, m, h)");
        }
        uint64_t n = 0;
        if (!read_number(rest, &n)) {
            return make_error(quoted + " is too large");
        }
        if (!rest.empty() && (rest.front() == '.' || rest.front() == ',')) {
            return make_error(quoted + " has a fraction; write it in a smaller unit (1500ms, not 1.5s)");
        }
        size_t unit_len = 0;
        while (unit_len < rest.size() && is_alpha(rest[unit_len])) {
            ++unit_len;
        }
        const std::string_view unit = rest.substr(0, unit_len);
        if (unit.empty()) {
            return make_error(quoted + " needs a unit after " + std::to_string(n) + ": ms, s, m, h");
        }
        const duration_unit* found = nullptr;
        for (const auto& u : duration_units) {
            if (u.name == unit) {
                found = &u;
            }
        }
        if (found == nullptr) {
            return make_error(quoted + " has an unknown unit '" + std::string(unit) +
                              "' (use ns, us, ms, s, m, h)");
        }
        uint64_t part = 0;
        if (__builtin_mul_overflow(n, static_cast<uint64_t>(found->ns), &part) ||
            __builtin_add_overflow(total, part, &total) ||
            total > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
            return make_error(quoted + " is too large");
        }
        rest.remove_prefix(unit_len);
    }
    return std::chrono::nanoseconds(static_cast<int64_t>(total));
}

std::string format_duration(std::chrono::nanoseconds d) {
    int64_t ns = d.count();
    if (ns == 0) {
        return "0s";
    }
    std::string out;
    // Work on the magnitude in unsigned arithmetic: -INT64_MIN does not fit in int64_t.
    uint64_t left = static_cast<uint64_t>(ns);
    if (ns < 0) {
        out = "-";
        left = 0 - left;
    }
    for (const auto& u : duration_units) {
        const auto unit_ns = static_cast<uint64_t>(u.ns);
        const uint64_t n = left / unit_ns;
        if (n != 0) {
            out += std::to_string(n);
            out += u.name;
            left -= n * unit_ns;
        }
    }
    return out;
}

namespace {

struct size_suffix {
    std::string_view short_name;
    std::string_view long_name;
    unsigned shift;
};

constexpr std::array<size_suffix, 5> size_suffixes{{
    {"B", "B", 0},
    {"K", "KiB", 10},
    {"M", "MiB", 20},
    {"G", "GiB", 30},
    {"T", "TiB", 40},
}};

} // namespace

result<uint64_t> parse_size(std::string_view text) {
    const std::string_view s = trim(text);
    const std::string quoted = "size '" + std::string(s) + "'";
    if (s.empty()) {
        return make_error("size is empty");
    }
    if (s.front() == '-') {
        return make_error(quoted + " must not be negative");
    }
    if (!is_digit(s.front())) {
        return make_error(quoted + " is not valid: expected a number with an optional suffix K, M, G");
    }
    std::string_view rest = s;
    uint64_t n = 0;
    if (!read_number(rest, &n)) {
        return make_error(quoted + " is too large");
    }
    if (!rest.empty() && (rest.front() == '.' || rest.front() == ',')) {
        return make_error(quoted + " has a fraction; write it in a smaller unit (1536K, not 1.5M)");
    }
    // One blank between number and suffix ("4 KiB") is common enough to allow.
    if (!rest.empty() && rest.front() == ' ') {
        rest.remove_prefix(1);
    }
    if (rest.empty()) {
        return n;
    }
    for (const auto& suffix : size_suffixes) {
        if (equals_ignore_case(rest, suffix.short_name) || equals_ignore_case(rest, suffix.long_name)) {
            if (suffix.shift != 0 && n > (std::numeric_limits<uint64_t>::max() >> suffix.shift)) {
                return make_error(quoted + " is too large");
            }
            return n << suffix.shift;
        }
    }
    if (rest.size() == 2 && (rest[1] == 'B' || rest[1] == 'b') &&
        std::string_view("kKmMgGtT").find(rest[0]) != std::string_view::npos) {
        return make_error(quoted + " is ambiguous: write " + std::string(1, rest[0]) + " or " +
                          std::string(1, static_cast<char>(std::toupper(static_cast<unsigned char>(rest[0])))) +
                          "iB (multiples of 1024)");
    }
    return make_error(quoted + " has an unknown suffix '" + std::string(rest) +
                      "' (use K/KiB, M/MiB, G/GiB, T/TiB)");
}

std::string format_size(uint64_t bytes) {
    if (bytes == 0) {
        return "0";
    }
    for (auto it = size_suffixes.rbegin(); it != size_suffixes.rend(); ++it) {
        const uint64_t unit = uint64_t{1} << it->shift;
        if (it->shift != 0 && bytes % unit == 0) {
            return std::to_string(bytes / unit) + std::string(it->short_name);
        }
    }
    return std::to_string(bytes);
}

} // namespace meshfwd
