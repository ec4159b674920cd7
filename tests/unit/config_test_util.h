// Helpers for the config tests: a fresh mkdtemp directory per test (removed afterwards), files
// written into it with a given mode, a node key, and error-line matching. Test threads only.
#pragma once

#include "control/config_yaml.h"
#include "crypto/x25519.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace meshfwd::test {

class config_dir : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(crypto::crypto_init());
        std::string tmpl = (std::filesystem::temp_directory_path() / "meshfwd-config-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        _dir = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        std::filesystem::remove_all(_dir, ec);
    }

    std::filesystem::path path(std::string_view name) const { return _dir / name; }

    void write(std::string_view name, std::string_view content, mode_t mode = 0644) {
        const auto p = path(name);
        std::filesystem::create_directories(p.parent_path());
        {
            std::ofstream out(p, std::ios::binary | std::ios::trunc);
            out << content;
        }
        ASSERT_EQ(::chmod(p.c_str(), mode), 0);
    }

    // A private key file (mode 0600) named `name`; returns its public key.
    crypto::public_key write_key(std::string_view name) {
        auto key = crypto::generate_private_key();
        write(name, crypto::key_to_base64(key.span()) + "\n", 0600);
        return crypto::derive_public_key(key);
    }

    static std::string new_public_key() {
        return crypto::key_to_base64(crypto::derive_public_key(crypto::generate_private_key()));
    }

    // Writes `text` as mesh.yaml and loads it.
    result<control::config> load(std::string_view text, bool init_key = false) {
        write("mesh.yaml", text);
        return control::load_config(path("mesh.yaml"), control::load_options{.init_key = init_key});
    }
    // As load(), for the schema alone: keys this version refuses (tap, gateway) are read too.
    result<control::config> load_schema(std::string_view text) {
        write("mesh.yaml", text);
        return control::load_config(path("mesh.yaml"), control::load_options{.schema_only = true});
    }

    // The error lines of a failed load, with the "<dir>/mesh.yaml:" prefix cut off so tests
    // read as "14:7: peers[1].public_key: ...".
    std::vector<std::string> errors(const result<control::config>& r) const {
        std::vector<std::string> out;
        if (r.ok()) {
            ADD_FAILURE() << "expected the config to be refused";
            return out;
        }
        const std::string prefix = path("mesh.yaml").string() + ":";
        const std::string& text = r.error_message();
        size_t start = 0;
        while (start < text.size()) {
            size_t end = text.find('\n', start);
            if (end == std::string::npos) {
                end = text.size();
            }
            std::string line = text.substr(start, end - start);
            if (line.starts_with(prefix)) {
                line = line.substr(prefix.size());
            }
            out.push_back(line);
            start = end + 1;
        }
        return out;
    }

    std::filesystem::path _dir;
};

// True when one of `lines` starts with `prefix`; on failure, the lines are shown.
inline ::testing::AssertionResult has_line(const std::vector<std::string>& lines, std::string_view prefix) {
    for (const auto& l : lines) {
        if (l.starts_with(prefix)) {
            return ::testing::AssertionSuccess();
        }
    }
    auto failure = ::testing::AssertionFailure() << "no error line starts with \"" << prefix << "\"; got:";
    for (const auto& l : lines) {
        failure << "\n  " << l;
    }
    return failure;
}

// True when one line starts with `prefix` and contains `part`.
inline ::testing::AssertionResult has_line(const std::vector<std::string>& lines, std::string_view prefix,
                                           std::string_view part) {
    for (const auto& l : lines) {
        if (l.starts_with(prefix) && l.find(part) != std::string::npos) {
            return ::testing::AssertionSuccess();
        }
    }
    auto failure = ::testing::AssertionFailure()
                   << "no error line starts with \"" << prefix << "\" and contains \"" << part << "\"; got:";
    for (const auto& l : lines) {
        failure << "\n  " << l;
    }
    return failure;
}

} // namespace meshfwd::test
