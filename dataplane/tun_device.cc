// TUN device set-up (see tun_device.h). Main/control thread only.
#include "dataplane/tun_device.h"

#include "dataplane/netlink.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

// UDP segmentation offload flags (Linux 6.2); older uapi headers lack them.
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

namespace meshfwd::dataplane {

namespace {

// The kernel's limits for a TUN device (drivers/net/tun.c MIN_MTU/MAX_MTU; MAX_TAP_QUEUES).
constexpr uint32_t min_mtu = 68;
constexpr uint32_t max_mtu = 65535;
constexpr uint32_t min_ipv6_mtu = 1280;
constexpr unsigned max_queues = 256;

std::string errno_text(int err) { return std::strerror(err); }

// Checked here so the user reads what is wrong instead of TUNSETIFF's bare EINVAL (the same
// rules as the kernel's dev_valid_name).
result<void> check_name(const std::string& name) {
    if (name.empty()) {
        return make_error("tun device name is empty");
    }
    if (name.size() >= IFNAMSIZ) {
        return make_error("tun device name \"" + name + "\" has " + std::to_string(name.size()) +
                          " characters; Linux allows at most " + std::to_string(IFNAMSIZ - 1));
    }
    if (name == "." || name == "..") {
        return make_error("tun device name \"" + name + "\" is not a valid interface name");
    }
    const auto bad = std::find_if(name.begin(), name.end(), [](char c) {
        return c == '/' || c == ':' || c == ' ' || (c >= '\t' && c <= '\r') || c == '\0';
    });
    if (bad != name.end()) {
        return make_error("tun device name \"" + name + "\" contains '" + std::string(1, *bad) +
                          "' (not allowed: '/', ':' or white space)");
    }
    return {};
}

result<void> check_mtu(const std::string& name, uint32_t mtu) {
    if (mtu < min_mtu || mtu > max_mtu) {
        return make_error("tun " + name + ": MTU " + std::to_string(mtu) + " is out of range (" +
                          std::to_string(min_mtu) + ".." + std::to_string(max_mtu) + ")");
    }
    return {};
}

std::string tunsetiff_hint(int err, unsigned queue) {
    switch (err) {
    case EPERM:
        return " (creating a TUN device needs CAP_NET_ADMIN)";
    case EBUSY:
        // Queue 0 asks with IFF_TUN_EXCL, which fails this way when the name is taken.
        return queue == 0 ? " (a network device of that name already exists; meshfwd creates its own, "
                            "so pick another name or remove it)"
                          : "";
    case EINVAL:
        return " (the name is taken by a device that is not a multi-queue TUN)";
    default:
        return "";
    }
}

} // namespace

result<tun_device> tun_device::create(const tun_options& options) {
    if (auto r = check_name(options.name); !r) {
        return make_error(r.error_message());
    }
    if (options.queues == 0 || options.queues > max_queues) {
        return make_error("tun " + options.name + ": " + std::to_string(options.queues) +
                          " queues requested; a TUN device has 1.." + std::to_string(max_queues));
    }
    if (auto r = check_mtu(options.name, options.mtu); !r) {
        return make_error(r.error_message());
    }

    tun_device dev;
    dev._name = options.name;
    dev._vnet_hdr = options.vnet_hdr;
    dev._fds.reserve(options.queues);
    const short base_flags =
        static_cast<short>(IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE | (options.vnet_hdr ? IFF_VNET_HDR : 0));
    for (unsigned i = 0; i < options.queues; ++i) {
        // Blocking on purpose: io_uring does the waiting; close-on-exec so helpers we spawn do not
        // keep the device alive.
        const int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            const int err = errno;
            return make_error("tun " + dev._name + ": cannot open /dev/net/tun: " + errno_text(err));
        }
        dev._fds.push_back(fd); // owned from here: an early return closes it and drops the device
        ifreq ifr{};
        std::memcpy(ifr.ifr_name, dev._name.data(), dev._name.size());
        // The first queue must create the device, never attach to someone else's of the same name.
        ifr.ifr_flags = static_cast<short>(base_flags | (i == 0 ? IFF_TUN_EXCL : 0));
        if (::ioctl(fd, TUNSETIFF, &ifr) < 0) {
            const int err = errno;
            return make_error("tun " + dev._name + ": TUNSETIFF for queue " + std::to_string(i) + " of " +
                              std::to_string(options.queues) + " failed: " + errno_text(err) +
                              tunsetiff_hint(err, i));
        }
        if (i == 0) {
            // "%d" in the name is expanded by the kernel; later queues attach by the real name.
            dev._name.assign(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
        }
    }
    dev._ifindex = static_cast<int>(if_nametoindex(dev._name.c_str()));
    if (dev._ifindex == 0) {
        return make_error("tun " + dev._name + ": created but its ifindex cannot be read: " + errno_text(errno));
    }

    if (options.vnet_hdr) {
        // Vnet header size and offloads belong to the device, not the queue: set them once.
        int size = static_cast<int>(tun_vnet_hdr_size);
        if (::ioctl(dev._fds[0], TUNSETVNETHDRSZ, &size) < 0) {
            return make_error("tun " + dev._name + ": TUNSETVNETHDRSZ " + std::to_string(size) +
                              " failed: " + errno_text(errno));
        }
        // Widest first; kernels before 6.2 refuse the USO bits with EINVAL.
        constexpr unsigned long with_uso = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6;
        constexpr unsigned long without_uso = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
        if (::ioctl(dev._fds[0], TUNSETOFFLOAD, with_uso) == 0) {
            dev._offloads = {true, true, true, true};
        } else if (::ioctl(dev._fds[0], TUNSETOFFLOAD, without_uso) == 0) {
            dev._offloads = {true, true, true, false};
        } else {
            // Plain packets still work; the header then only ever says "no offload".
            (void)::ioctl(dev._fds[0], TUNSETOFFLOAD, 0UL);
            dev._offloads = {};
        }
    }

    if (auto r = netlink::set_link_mtu(dev._ifindex, options.mtu); !r) {
        return make_error("tun " + dev._name + ": " + r.error_message());
    }
    dev._mtu = options.mtu;
    return dev;
}

tun_device::tun_device(tun_device&& other) noexcept
    : _fds(std::exchange(other._fds, {})), _name(std::move(other._name)),
      _ifindex(std::exchange(other._ifindex, 0)), _mtu(std::exchange(other._mtu, 0)),
      _offloads(std::exchange(other._offloads, {})), _vnet_hdr(std::exchange(other._vnet_hdr, false)) {}

tun_device& tun_device::operator=(tun_device&& other) noexcept {
    if (this != &other) {
        close_all();
        _fds = std::exchange(other._fds, {});
        _name = std::move(other._name);
        _ifindex = std::exchange(other._ifindex, 0);
        _mtu = std::exchange(other._mtu, 0);
        _offloads = std::exchange(other._offloads, {});
        _vnet_hdr = std::exchange(other._vnet_hdr, false);
    }
    return *this;
}

tun_device::~tun_device() { close_all(); }

void tun_device::close_all() noexcept {
    // The last close unregisters the (non-persistent) device; reverse order is not required but
    // mirrors creation.
    for (auto it = _fds.rbegin(); it != _fds.rend(); ++it) {
        ::close(*it);
    }
    _fds.clear();
}

result<void> tun_device::set_mtu_and_up(uint32_t mtu) {
    if (auto r = check_mtu(_name, mtu); !r) {
        return r;
    }
    if (auto r = netlink::set_link_mtu_and_up(_ifindex, mtu); !r) {
        return make_error("tun " + _name + ": " + r.error_message());
    }
    _mtu = mtu;
    return {};
}

result<void> tun_device::add_address(const ip_prefix& address_with_length) {
    if (address_with_length.address().is_v6() && _mtu < min_ipv6_mtu) {
        // The kernel switches IPv6 off on links below 1280 and would answer with a bare error.
        return make_error("tun " + _name + ": add address " + address_with_length.to_string() +
                          ": IPv6 needs an MTU of at least " + std::to_string(min_ipv6_mtu) + ", the device has " +
                          std::to_string(_mtu));
    }
    if (auto r = netlink::add_address(_ifindex, address_with_length, true); !r) {
        return make_error("tun " + _name + ": " + r.error_message());
    }
    return {};
}

result<void> tun_device::add_route(const ip_prefix& destination) {
    if (auto r = netlink::add_route(_ifindex, destination); !r) {
        return make_error("tun " + _name + ": " + r.error_message());
    }
    return {};
}

result<void> tun_device::remove_route(const ip_prefix& destination) {
    if (auto r = netlink::remove_route(_ifindex, destination); !r) {
        return make_error("tun " + _name + ": " + r.error_message());
    }
    return {};
}

} // namespace meshfwd::dataplane
