// control/uapi_server: the socket file (mode, stale and live sockets, removal), requests handed to
// the "control thread" (this test's main thread calling poll()), several requests on one
// connection, and refusals answered without the control thread (truncated, oversized).
#include "control/uapi_server.h"

#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

namespace meshfwd::control {
namespace {

namespace fs = std::filesystem;

class UapiServer : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/uapi-server-test.XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        base = tmpl;
        dir = base / "wireguard";
    }
    void TearDown() override { fs::remove_all(base); }

    std::unique_ptr<uapi_server> start(const std::string& name = "wgt0") {
        auto s = uapi_server::start(
            name,
            [this](uapi::request& r) {
                ++handled;
                if (std::holds_alternative<uapi::get_request>(r)) {
                    return std::string("listen_port=7\nerrno=0\n\n");
                }
                last_set_port = std::get<uapi::set_request>(r).listen_port.value_or(0);
                return uapi::format_errno(0);
            },
            dir);
        EXPECT_TRUE(s.ok()) << s.error_message();
        return s.ok() ? std::move(*s) : nullptr;
    }

    int connect_to(const fs::path& p) {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p.c_str());
        if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
            ::close(fd);
            return -1;
        }
        return fd;
    }

    // Sends `text` (then shuts the write side when `close_write`), serving the server's queue from
    // this thread meanwhile, and returns everything the server wrote until it closed or `want`
    // bytes arrived.
    std::string exchange(uapi_server& s, const std::string& text, bool close_write, std::size_t want = 0) {
        const int fd = connect_to(s.path());
        EXPECT_GE(fd, 0);
        std::thread writer([&] {
            std::size_t off = 0;
            while (off < text.size()) {
                const ssize_t n = ::send(fd, text.data() + off, text.size() - off, MSG_NOSIGNAL);
                if (n <= 0) {
                    break;  // the server may refuse (and close) before reading everything
                }
                off += static_cast<std::size_t>(n);
            }
            if (close_write) {
                ::shutdown(fd, SHUT_WR);
            }
        });
        std::string got;
        for (int i = 0; i < 2000; ++i) {  // 10 s at most
            pollfd fds[2] = {{s.wake_fd(), POLLIN, 0}, {fd, POLLIN, 0}};
            ::poll(fds, 2, 5);
            if (fds[0].revents & POLLIN) {
                s.poll();
            }
            if (fds[1].revents & (POLLIN | POLLHUP)) {
                char buf[4096];
                const ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n <= 0) {
                    break;
                }
                got.append(buf, static_cast<std::size_t>(n));
                if (want != 0 && got.size() >= want) {
                    break;
                }
            }
        }
        writer.join();
        ::close(fd);
        return got;
    }

    fs::path base, dir;
    std::atomic<int> handled{0};
    uint16_t last_set_port = 0;
};

TEST_F(UapiServer, SocketModeAndDirectory) {
    auto s = start();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->path(), dir / "wgt0.sock");
    struct stat st{};
    ASSERT_EQ(::stat(s->path().c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(::stat(dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    s.reset();
    EXPECT_FALSE(fs::exists(dir / "wgt0.sock"));  // removed at the end
}

TEST_F(UapiServer, LiveSocketRefusedStaleReplaced) {
    auto s = start();
    ASSERT_TRUE(s);
    auto second = uapi_server::start("wgt0", [](uapi::request&) { return std::string(); }, dir);
    ASSERT_FALSE(second.ok());
    EXPECT_NE(second.error_message().find("in use"), std::string::npos) << second.error_message();
    s.reset();
    // A stale socket file (nothing listening) is replaced.
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", (dir / "wgt0.sock").c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    ::close(fd);
    auto third = start();
    EXPECT_TRUE(third);
    EXPECT_FALSE(uapi_server::start("bad/name", [](uapi::request&) { return std::string(); }, dir).ok());
}

TEST_F(UapiServer, GetAndSetOnOneConnection) {
    auto s = start();
    ASSERT_TRUE(s);
    const std::string want = "listen_port=7\nerrno=0\n\nerrno=0\n\n";
    const std::string got = exchange(*s, "get=1\n\nset=1\nlisten_port=9\n\n", false, want.size());
    EXPECT_EQ(got, want);
    EXPECT_EQ(handled.load(), 2);
    EXPECT_EQ(last_set_port, 9);
}

TEST_F(UapiServer, RefusalsNeverReachTheControlThread) {
    auto s = start();
    ASSERT_TRUE(s);
    EXPECT_EQ(exchange(*s, "set=1\nlisten_port=70000\n\n", false, 10), "errno=22\n\n");
    EXPECT_EQ(exchange(*s, "set=1\nlisten_port=1\n", true), "errno=71\n\n");  // truncated
    EXPECT_EQ(exchange(*s, "bogus\n\n", false, 10), "errno=71\n\n");
    std::string huge(uapi::max_request_bytes + 100000, 'x');
    EXPECT_EQ(exchange(*s, huge, true), "errno=90\n\n");
    EXPECT_EQ(handled.load(), 0);
    // And the server still answers afterwards.
    EXPECT_EQ(exchange(*s, "get=1\n\n", false, 23), "listen_port=7\nerrno=0\n\n");
}

}  // namespace
}  // namespace meshfwd::control
