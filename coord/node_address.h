// Addresses every node can compute: the network's ULA /48 (fd + 40 bits of a hash of the network
// id) and a node's IPv6 inside it (the low 80 bits from a hash of its public key), as Yggdrasil
// and Mycelium derive addresses from keys. Pure functions: any thread.
#pragma once

#include <string_view>

#include "coord/store.h"
#include "lib/ip_address.h"

namespace meshfwd::coord {

ip_prefix network_ula_prefix(std::string_view network_id);      // fdxx:xxxx:xxxx::/48
ip_address node_ipv6(std::string_view network_id, const node_key& key);
// The same address from a prefix already computed (or received): the first 48 bits of `ula`,
// then the key's 80 bits. node_ipv6(id, k) == node_ipv6_in(network_ula_prefix(id), k).
ip_address node_ipv6_in(const ip_prefix& ula, const node_key& key);

} // namespace meshfwd::coord
