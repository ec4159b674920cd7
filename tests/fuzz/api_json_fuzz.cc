// Fuzz target for the API's JSON consumers: arbitrary bytes, parsed as JSON when they are JSON,
// go to meshctl's format_status / format_peers and to control::prometheus_text. None may throw or
// crash; a refusal must say why; metrics text must stay line-structured. Single-threaded.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "control/metrics_text.h"
// The fuzz targets link the control library but not meshctl's, so the formatters are compiled in
// here (the kernel's selftests do the same); the unit tests link meshctl_lib as usual.
#include "tools/meshctl_api.h"

namespace {

void check(bool ok) {
    if (!ok) {
        std::abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using nlohmann::json;
    const std::string text(reinterpret_cast<const char*>(data), size);
    // Bytes as numbers too: the age and size formatters take any value.
    int64_t a = 0, b = 0;
    std::memcpy(&a, text.data(), std::min(size, sizeof(a)));
    if (size > sizeof(a)) {
        std::memcpy(&b, text.data() + sizeof(a), std::min(size - sizeof(a), sizeof(b)));
    }
    check(!meshfwd::meshctl::format_handshake_age(a, b).empty());
    check(!meshfwd::meshctl::format_bytes(static_cast<uint64_t>(a)).empty());
    check(!meshfwd::meshctl::format_duration_words(static_cast<uint64_t>(b)).empty());

    const json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded()) {
        return 0;
    }
    if (auto s = meshfwd::meshctl::format_status(doc); !s) {
        check(!s.error_message().empty());
    }
    if (auto p = meshfwd::meshctl::format_peers(doc, b); !p) {
        check(!p.error_message().empty());
    }
    const std::string metrics = meshfwd::control::prometheus_text(doc, doc);
    check(!metrics.empty() && metrics.back() == '\n');
    // Label values are escaped, so every line is a comment or a sample starting with a name.
    for (size_t at = 0; at < metrics.size();) {
        const size_t end = metrics.find('\n', at);
        check(metrics.compare(at, 1, "#") == 0 || metrics.compare(at, 8, "meshfwd_") == 0);
        at = end + 1;
    }
    return 0;
}
