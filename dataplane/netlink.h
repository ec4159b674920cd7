// rtnetlink helpers (libmnl): link MTU/up, interface addresses, device routes, and dumps to read
// them back. Used by tun_device at start-up and on reload, and by the gateway code. Each call opens
// one NETLINK_ROUTE socket, sends one request and waits for the kernel's answer, so these are for
// the main/control thread only (they allocate and block briefly); never call them per packet.
//
// Errors carry the errno text and, when the kernel sent an extended ack, its message:
//   "File exists (kernel: Nexthop has invalid gateway)". Callers add what and where.
#pragma once

#include "lib/ip_address.h"
#include "lib/result.h"

#include <cstdint>
#include <vector>

namespace meshfwd::dataplane::netlink {

// RTM_NEWLINK on ifindex: set the MTU; bring the link up; or both in one message.
result<void> set_link_mtu(int ifindex, uint32_t mtu);
result<void> set_link_up(int ifindex);
result<void> set_link_mtu_and_up(int ifindex, uint32_t mtu);

// RTM_NEWADDR: address_with_length as `ip addr add 10.100.0.1/16 dev X` (local = address).
// nodad sets IFA_F_NODAD (IPv6: usable at once, no duplicate-address detection; ignored for
// IPv4). The same address already on the same link is success (idempotent on reload).
result<void> add_address(int ifindex, const ip_prefix& address_with_length, bool nodad);

// RTM_NEWROUTE like `ip route add PREFIX dev X`: main table, RTPROT_BOOT, scope link, no gateway.
// Host bits of destination are cleared first (the kernel refuses them for IPv4). When the kernel
// answers EEXIST, the route table is read back: the same prefix via this ifindex is success; the
// prefix via another device is an error naming that ifindex.
result<void> add_route(int ifindex, const ip_prefix& destination);

// RTM_DELROUTE for the prefix via ifindex in the main table. A route that is not there (ESRCH)
// is success: the wanted state is reached (idempotent on reload).
result<void> remove_route(int ifindex, const ip_prefix& destination);

// One route of a dump (RTM_GETROUTE). oif is 0 for routes without one (multipath, blackhole).
struct route_entry {
    ip_prefix destination;
    int oif = 0;
    uint32_t table = 0;
    uint8_t protocol = 0; // RTPROT_*
    uint8_t type = 0;     // RTN_*
};

// Every route of one family in every table (filter by table/oif as needed).
result<std::vector<route_entry>> list_routes(ip_family family);

// Addresses (with their prefix length) on ifindex, IPv4 and IPv6.
result<std::vector<ip_prefix>> list_addresses(int ifindex);

} // namespace meshfwd::dataplane::netlink
