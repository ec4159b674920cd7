// Text-to-value parsers for mesh.yaml scalars that lib/ has no parser for (server URLs, MAC
// addresses, names), `${VAR}` expansion, and the "did you mean" helper. Pure functions; any
// thread. Errors carry no location: the loader (config_yaml.cc) prefixes file:line:col: path.
#pragma once

#include "control/config.h"
#include "lib/result.h"

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace meshfwd::control {

// Replaces every `${NAME}` with the environment variable NAME and `$$` with `$`. A `$` followed
// by anything else stays as it is. Errors: an unset variable (named), `${` without `}`, a name
// that is not [A-Za-z_][A-Za-z0-9_]*.
[[nodiscard]] result<std::string> expand_env(std::string_view text);

// "host:port" or "[v6-literal]:port"; without a port, `default_port` if given, else an error.
// Host names are checked for shape only (RFC 1123 labels); they are resolved later.
[[nodiscard]] result<host_port> parse_host_port(std::string_view text, std::optional<uint16_t> default_port);

// A meshcoord server: http://host[:port] (default 80), https://host[:port] (443), or host:port
// (http; the port is required, there is no well-known one). A trailing "/" is accepted; any
// other path is refused (the API's paths are fixed).
[[nodiscard]] result<coord_server> parse_coord_server(std::string_view text);

// stun:host[:port] | stuns:host[:port] (RFC 7064).
[[nodiscard]] result<stun_server> parse_stun_url(std::string_view text);
// turn:host[:port][?transport=udp|tcp] | turns:... (RFC 7065). Credentials are left empty.
[[nodiscard]] result<turn_server> parse_turn_url(std::string_view text);

// Six colon-separated hex octets; must be unicast (the I/G bit clear), since a TAP interface
// with a multicast address cannot receive unicast frames.
[[nodiscard]] result<std::array<uint8_t, 6>> parse_mac_address(std::string_view text);

// A UDP port range "52000-52063" (or one port "52000"): 1..65535, first <= last.
[[nodiscard]] result<port_range> parse_port_range(std::string_view text);

// Identifiers such as network_id and forward names: 1..max_len of [A-Za-z0-9._-].
[[nodiscard]] result<void> check_identifier(std::string_view text, size_t max_len);
// A Linux interface name: 1..15 bytes (IFNAMSIZ - 1), no '/', ':' or blanks, not "." or "..".
[[nodiscard]] result<void> check_interface_name(std::string_view text);

// Levenshtein distance, for suggestions.
[[nodiscard]] size_t edit_distance(std::string_view a, std::string_view b);
// The candidate closest to `word` if it is close enough to be a likely typo.
[[nodiscard]] std::optional<std::string_view> closest_name(std::string_view word,
                                                           std::span<const std::string_view> candidates);

// `text` for an error message: quoted, non-printable bytes escaped, long values cut short.
[[nodiscard]] std::string quote(std::string_view text);

} // namespace meshfwd::control
