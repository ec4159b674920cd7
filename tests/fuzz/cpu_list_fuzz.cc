// Fuzz target for lib/cpu_list and lib/units: arbitrary bytes as text into parse_cpu_list
// (64 CPUs), parse_duration and parse_size. Must never crash; what parses must survive
// format -> parse unchanged. Single-threaded.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lib/cpu_list.h"
#include "lib/units.h"

namespace {

void check(bool ok) {
    if (!ok) {
        std::abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    if (auto cpus = meshfwd::parse_cpu_list(text, 64)) {
        check(!cpus->empty());
        for (size_t i = 0; i < cpus->size(); ++i) {
            check((*cpus)[i] < 64);
            check(i == 0 || (*cpus)[i - 1] < (*cpus)[i]);
        }
        auto again = meshfwd::parse_cpu_list(meshfwd::format_cpu_list(*cpus), 64);
        check(again.ok() && *again == *cpus);
    } else {
        check(!cpus.error_message().empty());
    }

    if (auto d = meshfwd::parse_duration(text)) {
        check(d->count() >= 0);
        auto again = meshfwd::parse_duration(meshfwd::format_duration(*d));
        check(again.ok() && *again == *d);
    } else {
        check(!d.error_message().empty());
    }

    if (auto s = meshfwd::parse_size(text)) {
        auto again = meshfwd::parse_size(meshfwd::format_size(*s));
        check(again.ok() && *again == *s);
    } else {
        check(!s.error_message().empty());
    }
    return 0;
}
