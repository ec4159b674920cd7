// rtnetlink helpers over libmnl (see netlink.h). Main/control thread only: each call opens its own
// socket, so calls never interleave answers, but they block and allocate.
#include "dataplane/netlink.h"

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace meshfwd::dataplane::netlink {

namespace {

// Room for a whole dump batch; the kernel sizes its dump messages to the reader's buffer up to
// 32 KiB, and libmnl fails with ENOSPC rather than truncate.
constexpr std::size_t receive_buffer_size = 32768;

struct socket_closer {
    void operator()(mnl_socket* s) const noexcept { mnl_socket_close(s); }
};
using socket_ptr = std::unique_ptr<mnl_socket, socket_closer>;

// A request under construction; the largest we build is an rtmsg with two addresses and an ifindex.
struct alignas(nlmsghdr) request_buffer {
    std::array<char, 512> bytes{};
};

// The kernel's answer to one request: 0 or a positive errno, and the full text for an error.
struct answer {
    int err = 0;
    std::string text;
};

std::string errno_text(int err) { return std::strerror(err); }

answer local_failure(const char* what, int err) { return {err, std::string(what) + ": " + errno_text(err)}; }

// A socket with extended acks on, so errors carry the kernel's own reason ("Nexthop device is not
// up") rather than just EINVAL, and capped acks so an error does not echo our request back.
answer open_socket(socket_ptr& out) {
    out.reset(mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC));
    if (!out) {
        return local_failure("cannot open a netlink socket", errno);
    }
    int one = 1;
    // Both are optional (Linux 4.12+); without them we still get the errno.
    (void)mnl_socket_setsockopt(out.get(), NETLINK_EXT_ACK, &one, sizeof(one));
    (void)mnl_socket_setsockopt(out.get(), NETLINK_CAP_ACK, &one, sizeof(one));
    // The kernel always answers a request, but never let a lost answer hang start-up.
    const timeval timeout{5, 0};
    (void)setsockopt(mnl_socket_get_fd(out.get()), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    if (mnl_socket_bind(out.get(), 0, MNL_SOCKET_AUTOPID) < 0) {
        return local_failure("cannot bind a netlink socket", errno);
    }
    return {};
}

int extack_attr(const nlattr* attr, void* data) {
    if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG && mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0) {
        *static_cast<std::string*>(data) = mnl_attr_get_str(attr);
    }
    return MNL_CB_OK;
}

// NLMSG_ERROR: error 0 is the ack; otherwise -errno, then (capped) the request header, then the
// extended-ack attributes when NLM_F_ACK_TLVS is set.
answer parse_error(const nlmsghdr* nlh) {
    if (mnl_nlmsg_get_payload_len(nlh) < sizeof(nlmsgerr)) {
        return {EBADMSG, "short netlink error message"};
    }
    const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
    answer a;
    a.err = -e->error;
    if (a.err == 0) {
        return a;
    }
    a.text = errno_text(a.err);
    if ((nlh->nlmsg_flags & NLM_F_ACK_TLVS) != 0) {
        std::size_t offset = sizeof(nlmsgerr);
        if ((nlh->nlmsg_flags & NLM_F_CAPPED) == 0 && e->msg.nlmsg_len >= sizeof(nlmsghdr)) {
            offset += e->msg.nlmsg_len - sizeof(nlmsghdr);
        }
        std::string message;
        if (mnl_nlmsg_size(offset) <= nlh->nlmsg_len) {
            (void)mnl_attr_parse(nlh, static_cast<unsigned>(offset), extack_attr, &message);
        }
        if (!message.empty()) {
            a.text += " (kernel: " + message + ")";
        }
    }
    return a;
}

// Sends one request with NLM_F_ACK and waits for its ack or error.
answer request(nlmsghdr* nlh) {
    socket_ptr sock;
    if (answer a = open_socket(sock); a.err != 0) {
        return a;
    }
    const unsigned portid = mnl_socket_get_portid(sock.get());
    nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    nlh->nlmsg_seq = 1;
    if (mnl_socket_sendto(sock.get(), nlh, nlh->nlmsg_len) < 0) {
        return local_failure("netlink send", errno);
    }
    std::vector<char> buffer(receive_buffer_size);
    for (;;) {
        const ssize_t n = mnl_socket_recvfrom(sock.get(), buffer.data(), buffer.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return local_failure("netlink receive", errno);
        }
        int left = static_cast<int>(n);
        for (auto* m = reinterpret_cast<const nlmsghdr*>(buffer.data()); mnl_nlmsg_ok(m, left);
             m = mnl_nlmsg_next(m, &left)) {
            if (m->nlmsg_seq != nlh->nlmsg_seq || (m->nlmsg_pid != 0 && m->nlmsg_pid != portid)) {
                continue;
            }
            if (m->nlmsg_type == NLMSG_ERROR) {
                return parse_error(m);
            }
        }
    }
}

// Sends one dump request and feeds every answer to cb until NLMSG_DONE.
result<void> dump(nlmsghdr* nlh, mnl_cb_t cb, void* data, const char* what) {
    socket_ptr sock;
    if (answer a = open_socket(sock); a.err != 0) {
        return make_error(std::string(what) + ": " + a.text);
    }
    const unsigned portid = mnl_socket_get_portid(sock.get());
    nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_DUMP;
    nlh->nlmsg_seq = 1;
    if (mnl_socket_sendto(sock.get(), nlh, nlh->nlmsg_len) < 0) {
        return make_error(std::string(what) + ": netlink send: " + errno_text(errno));
    }
    std::vector<char> buffer(receive_buffer_size);
    for (;;) {
        const ssize_t n = mnl_socket_recvfrom(sock.get(), buffer.data(), buffer.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return make_error(std::string(what) + ": netlink receive: " + errno_text(errno));
        }
        const int ret = mnl_cb_run(buffer.data(), static_cast<std::size_t>(n), nlh->nlmsg_seq, portid, cb, data);
        if (ret == MNL_CB_STOP) {
            return {};
        }
        if (ret < 0) {
            return make_error(std::string(what) + ": " + errno_text(errno));
        }
    }
}

int family_of(const ip_address& a) { return a.is_v4() ? AF_INET : AF_INET6; }

std::string on_link(int ifindex) {
    char name[IF_NAMESIZE] = {};
    std::string text = "ifindex " + std::to_string(ifindex);
    if (if_indextoname(static_cast<unsigned>(ifindex), name) != nullptr) {
        text += " (" + std::string(name) + ")";
    }
    return text;
}

result<void> set_link(int ifindex, const uint32_t* mtu, bool up) {
    request_buffer buf;
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf.bytes.data());
    nlh->nlmsg_type = RTM_NEWLINK;
    auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = ifindex;
    if (up) {
        ifi->ifi_flags = IFF_UP;
        ifi->ifi_change = IFF_UP;
    }
    if (mtu != nullptr) {
        mnl_attr_put_u32(nlh, IFLA_MTU, *mtu);
    }
    const answer a = request(nlh);
    if (a.err == 0) {
        return {};
    }
    std::string what = mtu != nullptr ? "set MTU " + std::to_string(*mtu) : std::string();
    if (up) {
        what += what.empty() ? "bring up" : " and bring up";
    }
    return make_error(what + " " + on_link(ifindex) + ": " + a.text);
}

// Attribute table for one message: index by attribute type; unknown types are skipped.
template <std::size_t N>
struct attr_table {
    std::array<const nlattr*, N> at{};
};

template <std::size_t N>
int collect_attr(const nlattr* attr, void* data) {
    auto* table = static_cast<attr_table<N>*>(data);
    const auto type = mnl_attr_get_type(attr);
    if (type < N) {
        table->at[type] = attr;
    }
    return MNL_CB_OK;
}

// An address attribute of the message's family; nullopt when its length does not match.
std::optional<ip_address> address_attr(const nlattr* attr, int family) {
    if (attr == nullptr) {
        return std::nullopt;
    }
    const std::size_t want = family == AF_INET ? 4 : 16;
    if (mnl_attr_get_payload_len(attr) != want) {
        return std::nullopt;
    }
    return ip_address::from_bytes({static_cast<const uint8_t*>(mnl_attr_get_payload(attr)), want});
}

ip_address zero_of(int family) { return family == AF_INET ? ip_address{} : ip_address::v6({}); }

int route_entry_cb(const nlmsghdr* nlh, void* data) {
    if (nlh->nlmsg_type != RTM_NEWROUTE || mnl_nlmsg_get_payload_len(nlh) < sizeof(rtmsg)) {
        return MNL_CB_OK;
    }
    const auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(nlh));
    if (rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6) {
        return MNL_CB_OK;
    }
    attr_table<RTA_MAX + 1> tb;
    if (mnl_attr_parse(nlh, sizeof(rtmsg), collect_attr<RTA_MAX + 1>, &tb) < 0) {
        return MNL_CB_OK;
    }
    ip_address dst = zero_of(rtm->rtm_family);
    if (tb.at[RTA_DST] != nullptr) {
        const auto a = address_attr(tb.at[RTA_DST], rtm->rtm_family);
        if (!a) {
            return MNL_CB_OK;
        }
        dst = *a;
    }
    auto prefix = ip_prefix::make(dst, rtm->rtm_dst_len);
    if (!prefix) {
        return MNL_CB_OK;
    }
    route_entry e;
    e.destination = *prefix;
    e.table = rtm->rtm_table;
    if (tb.at[RTA_TABLE] != nullptr && mnl_attr_get_payload_len(tb.at[RTA_TABLE]) == 4) {
        e.table = mnl_attr_get_u32(tb.at[RTA_TABLE]);
    }
    if (tb.at[RTA_OIF] != nullptr && mnl_attr_get_payload_len(tb.at[RTA_OIF]) == 4) {
        e.oif = static_cast<int>(mnl_attr_get_u32(tb.at[RTA_OIF]));
    }
    e.protocol = rtm->rtm_protocol;
    e.type = rtm->rtm_type;
    static_cast<std::vector<route_entry>*>(data)->push_back(e);
    return MNL_CB_OK;
}

struct address_dump {
    int ifindex = 0;
    std::vector<ip_prefix> out;
};

int address_entry_cb(const nlmsghdr* nlh, void* data) {
    auto* d = static_cast<address_dump*>(data);
    if (nlh->nlmsg_type != RTM_NEWADDR || mnl_nlmsg_get_payload_len(nlh) < sizeof(ifaddrmsg)) {
        return MNL_CB_OK;
    }
    const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
    if (static_cast<int>(ifa->ifa_index) != d->ifindex ||
        (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)) {
        return MNL_CB_OK;
    }
    attr_table<IFA_MAX + 1> tb;
    if (mnl_attr_parse(nlh, sizeof(ifaddrmsg), collect_attr<IFA_MAX + 1>, &tb) < 0) {
        return MNL_CB_OK;
    }
    // IFA_LOCAL is ours; IFA_ADDRESS is the peer on point-to-point links (IPv4) and the only one
    // IPv6 sends without a peer.
    auto a = address_attr(tb.at[IFA_LOCAL], ifa->ifa_family);
    if (!a) {
        a = address_attr(tb.at[IFA_ADDRESS], ifa->ifa_family);
    }
    if (!a) {
        return MNL_CB_OK;
    }
    if (auto p = ip_prefix::make(*a, ifa->ifa_prefixlen)) {
        d->out.push_back(*p);
    }
    return MNL_CB_OK;
}

} // namespace

result<void> set_link_mtu(int ifindex, uint32_t mtu) { return set_link(ifindex, &mtu, false); }

result<void> set_link_up(int ifindex) { return set_link(ifindex, nullptr, true); }

result<void> set_link_mtu_and_up(int ifindex, uint32_t mtu) { return set_link(ifindex, &mtu, true); }

result<void> add_address(int ifindex, const ip_prefix& address_with_length, bool nodad) {
    const ip_address& addr = address_with_length.address();
    const std::string what = "add address " + address_with_length.to_string() + " to " + on_link(ifindex);
    if (addr == zero_of(family_of(addr))) {
        return make_error(what + ": the unspecified address cannot be assigned");
    }
    if (address_with_length.length() == 0) {
        // The kernel would accept it and route the whole address family to this link.
        return make_error(what + ": prefix length 0 is not an interface address; give the network's "
                                 "length (e.g. 10.100.0.1/16 or fd00::1/64)");
    }
    request_buffer buf;
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf.bytes.data());
    nlh->nlmsg_type = RTM_NEWADDR;
    nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = static_cast<uint8_t>(family_of(addr));
    ifa->ifa_prefixlen = address_with_length.length();
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = static_cast<uint32_t>(ifindex);
    const auto bytes = addr.bytes();
    mnl_attr_put(nlh, IFA_LOCAL, bytes.size(), bytes.data());
    mnl_attr_put(nlh, IFA_ADDRESS, bytes.size(), bytes.data());
    if (nodad && addr.is_v6()) {
        ifa->ifa_flags = IFA_F_NODAD;
        mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NODAD);
    }
    const answer a = request(nlh);
    if (a.err == 0) {
        return {};
    }
    if (a.err == EEXIST) {
        // IPv6 says EEXIST for the same address with any prefix length: check the length matches.
        auto present = list_addresses(ifindex);
        if (present) {
            for (const ip_prefix& p : *present) {
                if (p == address_with_length) {
                    return {};
                }
            }
            for (const ip_prefix& p : *present) {
                if (p.address() == addr) {
                    return make_error(what + ": already assigned there as " + p.to_string());
                }
            }
        }
    }
    return make_error(what + ": " + a.text);
}

namespace {

// RTM_NEWROUTE / RTM_DELROUTE for a device route in the main table, as `ip route add|del P dev X`.
nlmsghdr* put_route(request_buffer& buf, uint16_t type, int ifindex, const ip_prefix& dst) {
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf.bytes.data());
    nlh->nlmsg_type = type;
    auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
    rtm->rtm_family = static_cast<uint8_t>(family_of(dst.address()));
    rtm->rtm_dst_len = dst.length();
    rtm->rtm_table = RT_TABLE_MAIN;
    rtm->rtm_type = RTN_UNICAST;
    if (type == RTM_NEWROUTE) {
        nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
        rtm->rtm_protocol = RTPROT_BOOT;
        rtm->rtm_scope = RT_SCOPE_LINK;
    } else {
        rtm->rtm_protocol = RTPROT_UNSPEC; // any protocol matches
        rtm->rtm_scope = RT_SCOPE_NOWHERE;
    }
    if (dst.length() > 0) {
        const auto bytes = dst.address().bytes();
        mnl_attr_put(nlh, RTA_DST, bytes.size(), bytes.data());
    }
    mnl_attr_put_u32(nlh, RTA_OIF, static_cast<uint32_t>(ifindex));
    return nlh;
}

} // namespace

result<void> add_route(int ifindex, const ip_prefix& destination) {
    const ip_prefix dst = destination.masked();
    const std::string what = "add route " + dst.to_string() + " via " + on_link(ifindex);
    request_buffer buf;
    const answer a = request(put_route(buf, RTM_NEWROUTE, ifindex, dst));
    if (a.err == 0) {
        return {};
    }
    if (a.err == EEXIST) {
        // EEXIST means "this prefix at this metric", whichever device it uses: look which.
        auto routes = list_routes(dst.address().family());
        if (!routes) {
            return make_error(what + ": " + a.text + "; " + routes.error_message());
        }
        int other = 0;
        for (const route_entry& r : *routes) {
            if (r.table != RT_TABLE_MAIN || r.destination != dst) {
                continue;
            }
            if (r.oif == ifindex) {
                return {};
            }
            other = r.oif;
        }
        if (other != 0) {
            return make_error(what + ": the prefix is already routed via " + on_link(other));
        }
    }
    return make_error(what + ": " + a.text);
}

result<void> remove_route(int ifindex, const ip_prefix& destination) {
    const ip_prefix dst = destination.masked();
    request_buffer buf;
    const answer a = request(put_route(buf, RTM_DELROUTE, ifindex, dst));
    if (a.err == 0 || a.err == ESRCH) {
        return {};
    }
    return make_error("remove route " + dst.to_string() + " via " + on_link(ifindex) + ": " + a.text);
}

result<std::vector<route_entry>> list_routes(ip_family family) {
    request_buffer buf;
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf.bytes.data());
    nlh->nlmsg_type = RTM_GETROUTE;
    auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
    rtm->rtm_family = family == ip_family::v4 ? AF_INET : AF_INET6;
    std::vector<route_entry> out;
    if (auto r = dump(nlh, route_entry_cb, &out, "list routes"); !r) {
        return make_error(r.error_message());
    }
    return out;
}

result<std::vector<ip_prefix>> list_addresses(int ifindex) {
    request_buffer buf;
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf.bytes.data());
    nlh->nlmsg_type = RTM_GETADDR;
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = AF_UNSPEC;
    address_dump d;
    d.ifindex = ifindex;
    if (auto r = dump(nlh, address_entry_cb, &d, "list addresses"); !r) {
        return make_error(r.error_message());
    }
    return std::move(d.out);
}

} // namespace meshfwd::dataplane::netlink
