// Fuzz target for coord/protocol: the first byte picks one of the parsers, the rest is the body.
// Must never crash or throw; whatever parses must serialise and parse back to the same text.
// Single-threaded.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "coord/protocol.h"

namespace {

void check(bool ok) {
    if (!ok) {
        std::abort();
    }
}

// parse -> to_json -> parse -> to_json gives the same text twice.
template <typename Parse, typename Write>
void round_trip(std::string_view body, Parse parse, Write write) {
    auto first = parse(body);
    if (!first) {
        check(!first.error_message().empty());
        return;
    }
    const std::string text = write(*first);
    auto second = parse(text);
    check(second.ok());
    check(write(*second) == text);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace meshfwd::coord;
    if (size == 0) {
        return 0;
    }
    const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
    switch (data[0] % 9) {
    case 0:
        round_trip(body, parse_create_network, [](const auto& v) { return to_json(v); });
        break;
    case 1:
        round_trip(body, parse_register, [](const auto& v) { return to_json(v); });
        break;
    case 2:
        round_trip(body, parse_heartbeat, [](const auto& v) { return to_json(v); });
        break;
    case 3:
        round_trip(body, parse_subscribe, [](const auto& v) { return to_json(v); });
        break;
    case 4:
        round_trip(body, parse_register_response, [](const auto& v) { return to_json(v); });
        break;
    case 5:
        round_trip(body, parse_event_message, [](const auto& v) { return to_json(v); });
        break;
    case 6:
        round_trip(body, parse_peer_list, [](const auto& v) { return peer_list_json(v); });
        break;
    case 7:
        round_trip(body, parse_network_view, [](const auto& v) { return to_json(v); });
        round_trip(body, parse_network_list, [](const auto& v) { return network_list_json(v); });
        break;
    default:
        round_trip(body, parse_options_json, [](const auto& v) { return options_json(v); });
        (void)valid_id(body);
        (void)parse_key(body);
        (void)parse_network_cidr(body);
        break;
    }
    return 0;
}
