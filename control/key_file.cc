// Key file reading and creation. Any thread; blocking I/O (start-up only).
#include "control/key_file.h"

#include "crypto/x25519.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace meshfwd::control {

namespace {

// A key file is 45 bytes; anything much larger is not one, and reading it whole would be silly.
constexpr size_t max_key_file_size = 256;

std::string shown(const std::filesystem::path& path) { return path.string(); }

std::string errno_text(int err) { return std::strerror(err); }

// Closes on every exit path.
class fd_guard {
public:
    explicit fd_guard(int fd) noexcept : _fd(fd) {}
    ~fd_guard() {
        if (_fd >= 0) {
            ::close(_fd);
        }
    }
    fd_guard(const fd_guard&) = delete;
    fd_guard& operator=(const fd_guard&) = delete;
    int get() const noexcept { return _fd; }
    // Reports close() errors, which matter after writing.
    int release_and_close() noexcept {
        const int rc = ::close(_fd);
        _fd = -1;
        return rc;
    }

private:
    int _fd;
};

std::string mode_text(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

} // namespace

result<crypto::secret32> read_key_file(const std::filesystem::path& path) {
    // O_NONBLOCK: a FIFO in place of the key must not hang start-up; we refuse it below anyway.
    const int raw_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (raw_fd < 0) {
        const int err = errno;
        return make_error("cannot open key file " + shown(path) + ": " + errno_text(err));
    }
    fd_guard fd(raw_fd);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        const int err = errno;
        return make_error("cannot stat key file " + shown(path) + ": " + errno_text(err));
    }
    if (!S_ISREG(st.st_mode)) {
        return make_error("key file " + shown(path) + " is not a regular file");
    }
    if ((st.st_mode & 077) != 0) {
        return make_error("key file " + shown(path) + " is mode " + mode_text(st.st_mode) +
                          "; must not be accessible by group or others (chmod 600)");
    }
    if (st.st_size > static_cast<off_t>(max_key_file_size)) {
        return make_error("key file " + shown(path) + " is " + std::to_string(st.st_size) +
                          " bytes; expected one base64 key as `wg genkey` writes it");
    }

    std::array<char, max_key_file_size + 1> buf{};
    crypto::wipe_on_exit wipe_buf(buf);
    size_t used = 0;
    while (used < buf.size()) {
        const ssize_t n = ::read(fd.get(), buf.data() + used, buf.size() - used);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            const int err = errno;
            return make_error("cannot read key file " + shown(path) + ": " + errno_text(err));
        }
        if (n == 0) {
            break;
        }
        used += static_cast<size_t>(n);
    }
    // The content itself is never quoted back: it may be a key with one typo.
    auto decoded = crypto::key_from_base64(std::string_view(buf.data(), used));
    if (!decoded) {
        if (used == 0) {
            return make_error("key file " + shown(path) + " is empty");
        }
        return make_error("key file " + shown(path) +
                          " does not hold one base64 key (44 characters, as `wg genkey` writes it)");
    }
    crypto::wipe_on_exit wipe_decoded(*decoded);
    return crypto::secret32(std::span<const uint8_t, 32>(*decoded));
}

result<crypto::secret32> create_private_key_file(const std::filesystem::path& path) {
    if (!crypto::crypto_init()) {
        return make_error("cannot initialise libsodium to generate a key");
    }
    const int raw_fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (raw_fd < 0) {
        const int err = errno;
        return make_error("cannot create key file " + shown(path) + ": " + errno_text(err));
    }
    fd_guard fd(raw_fd);
    // The umask can only remove bits, but say exactly what we mean regardless of it.
    if (::fchmod(fd.get(), 0600) != 0) {
        const int err = errno;
        ::unlink(path.c_str());
        return make_error("cannot set mode 0600 on key file " + shown(path) + ": " + errno_text(err));
    }
    crypto::secret32 key = crypto::generate_private_key();
    std::string text = crypto::key_to_base64(key.span()) + "\n";
    size_t done = 0;
    int write_err = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            write_err = errno;
            break;
        }
        done += static_cast<size_t>(n);
    }
    sodium_memzero(text.data(), text.size());
    if (write_err == 0 && ::fsync(fd.get()) != 0) {
        write_err = errno;
    }
    if (fd.release_and_close() != 0 && write_err == 0) {
        write_err = errno;
    }
    if (write_err != 0) {
        // A half-written key file would be refused next time anyway; do not leave it behind.
        ::unlink(path.c_str());
        return make_error("cannot write key file " + shown(path) + ": " + errno_text(write_err));
    }
    return key;
}

} // namespace meshfwd::control
