// Key files through load_config (node.private_key_file, peers[].preshared_key_file) and
// control/key_file directly: creation with --init-key, missing, bad mode, bad content. Test
// thread only.
#include "config_test_util.h"

#include "control/key_file.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>
#include <iterator>

namespace meshfwd::test {
namespace {

class config_key_file_test : public config_dir {
protected:
    static constexpr const char* node_yaml = "node:\n  private_key_file: keys/a.key\n  address: 10.100.0.1/16\n";

    std::string read(std::string_view name) const {
        std::ifstream in(path(name), std::ios::binary);
        return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    }
};

TEST_F(config_key_file_test, init_key_creates_a_0600_wg_genkey_file) {
    std::filesystem::create_directories(path("keys"));
    auto cfg = load(node_yaml, true);
    ASSERT_TRUE(cfg.ok()) << cfg.error_message();

    struct stat st {};
    ASSERT_EQ(::stat(path("keys/a.key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    const std::string text = read("keys/a.key");
    ASSERT_EQ(text.size(), 45u);
    EXPECT_EQ(text.back(), '\n');
    auto key = crypto::key_from_base64(text);
    ASSERT_TRUE(key.has_value());
    // Clamped as `wg genkey` does.
    EXPECT_EQ((*key)[0] & 7, 0);
    EXPECT_EQ((*key)[31] & 0xc0, 0x40);
    crypto::secret32 secret{std::span<const uint8_t, 32>(*key)};
    EXPECT_EQ(cfg->node.public_key, crypto::derive_public_key(secret));

    // A second load reads the same key instead of replacing it.
    auto again = load(node_yaml, true);
    ASSERT_TRUE(again.ok()) << again.error_message();
    EXPECT_EQ(again->node.public_key, cfg->node.public_key);
    EXPECT_EQ(read("keys/a.key"), text);
}

TEST_F(config_key_file_test, init_key_creates_nothing_for_an_invalid_config) {
    std::filesystem::create_directories(path("keys"));
    auto cfg = load(std::string(node_yaml) + "  listen_port: 0\n", true);
    ASSERT_FALSE(cfg.ok());
    EXPECT_FALSE(std::filesystem::exists(path("keys/a.key")));
}

TEST_F(config_key_file_test, missing_key_file_without_init_key) {
    const auto lines = errors(load(node_yaml));
    EXPECT_TRUE(has_line(lines, "2:21: node.private_key_file: key file " + path("keys/a.key").string() +
                                    " does not exist; pass --init-key to create it"));
}

TEST_F(config_key_file_test, path_is_relative_to_the_config_not_the_cwd) {
    write_key("keys/a.key");
    const auto cwd = std::filesystem::current_path();
    std::filesystem::current_path("/");
    auto cfg = load(node_yaml);
    std::filesystem::current_path(cwd);
    ASSERT_TRUE(cfg.ok()) << cfg.error_message();
    EXPECT_EQ(cfg->node.private_key_file, path("keys/a.key"));
}

TEST_F(config_key_file_test, group_or_world_accessible_key_refused) {
    write_key("keys/a.key");
    ASSERT_EQ(::chmod(path("keys/a.key").c_str(), 0644), 0);
    EXPECT_TRUE(has_line(errors(load(node_yaml)),
                         "2:21: node.private_key_file: key file " + path("keys/a.key").string() +
                             " is mode 0644; must not be accessible by group or others (chmod 600)"));
    ASSERT_EQ(::chmod(path("keys/a.key").c_str(), 0620), 0);
    EXPECT_TRUE(has_line(errors(load(node_yaml)), "2:21: node.private_key_file: ", "is mode 0620"));
}

TEST_F(config_key_file_test, bad_content_refused_without_echoing_it) {
    write("keys/a.key", "not-a-key-SECRETISH\n", 0600);
    auto cfg = load(node_yaml);
    EXPECT_TRUE(has_line(errors(cfg), "2:21: node.private_key_file: ", "does not hold one base64 key"));
    EXPECT_EQ(cfg.error_message().find("SECRETISH"), std::string::npos);

    // Two keys in one file, and a 31-byte key, are refused too.
    const std::string key = crypto::key_to_base64(crypto::generate_private_key().span());
    write("keys/a.key", key + "\n" + key + "\n", 0600);
    EXPECT_TRUE(has_line(errors(load(node_yaml)), "2:21: node.private_key_file: ", "does not hold one base64 key"));
    write("keys/a.key", "", 0600);
    EXPECT_TRUE(has_line(errors(load(node_yaml)), "2:21: node.private_key_file: ", "is empty"));
}

TEST_F(config_key_file_test, surrounding_whitespace_is_accepted) {
    auto secret = crypto::generate_private_key();
    write("keys/a.key", "  \n" + crypto::key_to_base64(secret.span()) + " \r\n\n", 0600);
    auto cfg = load(node_yaml);
    ASSERT_TRUE(cfg.ok()) << cfg.error_message();
    EXPECT_EQ(cfg->node.public_key, crypto::derive_public_key(secret));
}

TEST_F(config_key_file_test, directory_instead_of_key_refused) {
    std::filesystem::create_directories(path("keys/a.key"));
    EXPECT_TRUE(has_line(errors(load(node_yaml)), "2:21: node.private_key_file: ", "is not a regular file"));
}

TEST_F(config_key_file_test, preshared_key_file_is_read_and_never_created) {
    write_key("keys/a.key");
    const std::string peer = "peers:\n  - public_key: " + new_public_key() +
                             "\n    allowed_ips: []\n    preshared_key_file: keys/b.psk\n";
    auto missing = load(std::string(node_yaml) + peer, true);
    EXPECT_TRUE(has_line(errors(missing), "7:25: peers[0].preshared_key_file: cannot open key file"));
    EXPECT_FALSE(std::filesystem::exists(path("keys/b.psk")));

    write("keys/b.psk", crypto::key_to_base64(crypto::generate_private_key().span()) + "\n", 0640);
    EXPECT_TRUE(has_line(errors(load(std::string(node_yaml) + peer)), "7:25: peers[0].preshared_key_file: ",
                         "is mode 0640"));
    ASSERT_EQ(::chmod(path("keys/b.psk").c_str(), 0600), 0);
    auto cfg = load(std::string(node_yaml) + peer);
    ASSERT_TRUE(cfg.ok()) << cfg.error_message();
    EXPECT_TRUE(cfg->peers[0].preshared_key.has_value());
}

TEST_F(config_key_file_test, create_private_key_file_never_overwrites) {
    write("k", "precious\n", 0600);
    auto r = control::create_private_key_file(path("k"));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error_message().find("File exists"), std::string::npos) << r.error_message();
    EXPECT_EQ(read("k"), "precious\n");
}

TEST_F(config_key_file_test, read_key_file_round_trips) {
    auto created = control::create_private_key_file(path("k"));
    ASSERT_TRUE(created.ok()) << created.error_message();
    auto read_back = control::read_key_file(path("k"));
    ASSERT_TRUE(read_back.ok()) << read_back.error_message();
    EXPECT_TRUE(*read_back == *created);
}

} // namespace
} // namespace meshfwd::test
