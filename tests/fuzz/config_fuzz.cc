// Fuzz target for the mesh.yaml loader: arbitrary bytes as a config file must give a config or
// an error, never a crash, hang or leak. Single-threaded (libFuzzer or standalone_main.cc).
//
// load_config reads a file, so the input is written to one temp file per process, reused for
// every input. That directory also holds a valid key file a.key (mode 0600) and a preshared
// key b.psk, which the seeds name, so inputs get past key loading into the cross-section
// checks. init_key stays false: the fuzzer never creates files.
#include "control/config_yaml.h"
#include "crypto/x25519.h"

#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

class fuzz_dir {
public:
    fuzz_dir() {
        if (!meshfwd::crypto::crypto_init()) {
            std::abort();
        }
        std::string tmpl = (std::filesystem::temp_directory_path() / "meshfwd-config-fuzz-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) {
            std::perror("mkdtemp");
            std::abort();
        }
        _dir = tmpl;
        _config = _dir / "mesh.yaml";
        write_key("a.key");
        write_key("b.psk");
        // For ${VAR} in seeds; FUZZ_UNSET stays unset.
        ::setenv("FUZZ_VAR", "fuzz", 1);
    }
    ~fuzz_dir() {
        std::error_code ec;
        std::filesystem::remove_all(_dir, ec);
    }
    fuzz_dir(const fuzz_dir&) = delete;
    fuzz_dir& operator=(const fuzz_dir&) = delete;

    const std::filesystem::path& config() const { return _config; }

private:
    void write_key(const char* name) {
        const auto path = _dir / name;
        {
            std::ofstream out(path, std::ios::binary | std::ios::trunc);
            out << meshfwd::crypto::key_to_base64(meshfwd::crypto::generate_private_key().span()) << '\n';
        }
        if (::chmod(path.c_str(), 0600) != 0) {
            std::abort();
        }
    }

    std::filesystem::path _dir;
    std::filesystem::path _config;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const fuzz_dir dir;
    {
        std::ofstream out(dir.config(), std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    }
    auto cfg = meshfwd::control::load_config(dir.config(), meshfwd::control::load_options{});
    // Touch the result either way so the whole message or config is built.
    if (cfg.ok()) {
        return cfg->peers.size() > 1000000 ? 1 : 0;
    }
    return cfg.error_message().empty() ? 1 : 0;
}
