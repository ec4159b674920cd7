// Names of the config enums as written in mesh.yaml. Any thread.
#include "control/config.h"

namespace meshfwd::control {

const char* to_string(device_type v) noexcept {
    switch (v) {
    case device_type::tun:
        return "tun";
    case device_type::tap:
        return "tap";
    }
    return "?";
}

const char* to_string(poll_mode v) noexcept {
    switch (v) {
    case poll_mode::adaptive:
        return "adaptive";
    case poll_mode::busy:
        return "busy";
    }
    return "?";
}

const char* to_string(port_type v) noexcept {
    switch (v) {
    case port_type::uring:
        return "uring";
    case port_type::dpdk:
        return "dpdk";
    }
    return "?";
}

const char* to_string(l4_protocol v) noexcept {
    switch (v) {
    case l4_protocol::tcp:
        return "tcp";
    case l4_protocol::udp:
        return "udp";
    }
    return "?";
}

const char* to_string(turn_transport v) noexcept {
    switch (v) {
    case turn_transport::udp:
        return "udp";
    case turn_transport::tcp:
        return "tcp";
    }
    return "?";
}

std::string coord_server::url() const {
    const bool v6 = address.host.find(':') != std::string::npos;
    return std::string(tls ? "https://" : "http://") + (v6 ? "[" + address.host + "]" : address.host) + ":" +
           std::to_string(address.port);
}

} // namespace meshfwd::control
