// CPU list parsing and formatting (see cpu_list.h). Pure functions; any thread.
#include "lib/cpu_list.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <functional>

namespace meshfwd {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

// Any CPU number past this is absurd; checking it first keeps huge ranges from being expanded
// and keeps the arithmetic far from overflow.
constexpr uint64_t max_cpu_number = 1u << 20;

result<unsigned> parse_cpu_number(std::string_view s) {
    if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return make_error("'" + std::string(s) + "' is not a CPU number");
    }
    uint64_t v = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || ptr != s.data() + s.size() || v > max_cpu_number) {
        return make_error("CPU number " + std::string(s) + " is too large");
    }
    return static_cast<unsigned>(v);
}

// Checks one CPU against what exists; returns the error message or "" when it is usable.
using cpu_check = std::function<std::string(unsigned)>;

result<std::vector<unsigned>> parse_with(std::string_view text, const cpu_check& check) {
    const std::string_view whole = trim(text);
    if (whole.empty()) {
        return make_error("CPU list is empty");
    }
    std::vector<unsigned> cpus;
    std::string_view rest = whole;
    while (true) {
        const size_t comma = rest.find(',');
        const bool last = comma == std::string_view::npos;
        const std::string_view entry = trim(rest.substr(0, comma));
        if (entry.empty()) {
            if (last) {
                return make_error("CPU list '" + std::string(whole) + "' ends with a comma");
            }
            return make_error("CPU list '" + std::string(whole) + "' has an empty entry");
        }
        unsigned lo = 0;
        unsigned hi = 0;
        const size_t dash = entry.find('-');
        if (dash == std::string_view::npos) {
            auto n = parse_cpu_number(entry);
            if (!n) {
                return make_error(n.error_message());
            }
            lo = hi = *n;
        } else {
            const std::string_view a = trim(entry.substr(0, dash));
            const std::string_view b = trim(entry.substr(dash + 1));
            if (a.empty() || b.empty()) {
                return make_error("range '" + std::string(entry) + "' is missing a bound");
            }
            auto first = parse_cpu_number(a);
            if (!first) {
                return make_error(first.error_message());
            }
            auto second = parse_cpu_number(b);
            if (!second) {
                return make_error(second.error_message());
            }
            lo = *first;
            hi = *second;
            if (lo > hi) {
                return make_error("range " + std::to_string(lo) + "-" + std::to_string(hi) +
                                  " is reversed");
            }
        }
        // Check both ends before expanding so a huge range fails fast without allocating.
        for (const unsigned cpu : {lo, hi}) {
            if (std::string msg = check(cpu); !msg.empty()) {
                return make_error(std::move(msg));
            }
        }
        for (unsigned cpu = lo; cpu <= hi; ++cpu) {
            if (std::string msg = check(cpu); !msg.empty()) {
                return make_error(std::move(msg));
            }
            cpus.push_back(cpu);
        }
        if (last) {
            break;
        }
        rest = rest.substr(comma + 1);
    }
    std::sort(cpus.begin(), cpus.end());
    cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
    return cpus;
}

std::string existing_range(unsigned n_cpus) {
    if (n_cpus == 1) {
        return "CPU 0";
    }
    return "CPUs 0-" + std::to_string(n_cpus - 1);
}

} // namespace

result<std::vector<unsigned>> parse_cpu_list(std::string_view text, unsigned n_cpus) {
    return parse_with(text, [n_cpus](unsigned cpu) -> std::string {
        if (cpu >= n_cpus) {
            return "CPU " + std::to_string(cpu) + " does not exist (this machine has " +
                   existing_range(n_cpus) + ")";
        }
        return {};
    });
}

result<std::vector<unsigned>> allowed_cpus() {
    const long configured = sysconf(_SC_NPROCESSORS_CONF);
    if (configured <= 0) {
        return make_error("cannot count this machine's CPUs");
    }
    const auto n_cpus = static_cast<unsigned>(configured);
    // A dynamically sized set: CPU_SETSIZE (1024) is too small on the largest machines.
    const size_t set_size = CPU_ALLOC_SIZE(n_cpus);
    cpu_set_t* allowed = CPU_ALLOC(n_cpus);
    if (allowed == nullptr) {
        return make_error("cannot allocate a CPU set");
    }
    CPU_ZERO_S(set_size, allowed);
    const bool have_mask = sched_getaffinity(0, set_size, allowed) == 0;
    std::vector<unsigned> allowed_list;
    if (have_mask) {
        for (unsigned cpu = 0; cpu < n_cpus; ++cpu) {
            if (CPU_ISSET_S(cpu, set_size, allowed)) {
                allowed_list.push_back(cpu);
            }
        }
    }
    CPU_FREE(allowed);
    if (!have_mask) {
        return make_error("cannot read this process's CPU affinity");
    }
    return allowed_list;
}

result<std::vector<unsigned>> parse_cpu_list(std::string_view text) {
    const long configured = sysconf(_SC_NPROCESSORS_CONF);
    if (configured <= 0) {
        return make_error("cannot count this machine's CPUs");
    }
    const auto n_cpus = static_cast<unsigned>(configured);
    auto allowed = allowed_cpus();
    if (!allowed) {
        return make_error(allowed.error_message());
    }
    const std::vector<unsigned>& allowed_list = *allowed;
    return parse_with(text, [&](unsigned cpu) -> std::string {
        if (cpu >= n_cpus) {
            return "CPU " + std::to_string(cpu) + " does not exist (this machine has " +
                   existing_range(n_cpus) + ")";
        }
        if (!std::binary_search(allowed_list.begin(), allowed_list.end(), cpu)) {
            return "CPU " + std::to_string(cpu) + " is offline or not allowed for this process " +
                   "(allowed: " + format_cpu_list(allowed_list) + ")";
        }
        return {};
    });
}

std::string format_cpu_list(std::span<const unsigned> cpus) {
    std::vector<unsigned> sorted(cpus.begin(), cpus.end());
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    std::string out;
    for (size_t i = 0; i < sorted.size();) {
        size_t j = i;
        while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) {
            ++j;
        }
        if (!out.empty()) {
            out += ',';
        }
        out += std::to_string(sorted[i]);
        if (j > i) {
            out += '-';
            out += std::to_string(sorted[j]);
        }
        i = j + 1;
    }
    return out;
}

} // namespace meshfwd
