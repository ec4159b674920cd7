// Test helpers: load known-answer files from tests/data/ and convert hex. Test threads only.
//
// MESHFWD_TEST_DATA_DIR is set by tests/meson.build (test_args). Loaders fail the current test
// (ADD_FAILURE) and return an empty value when a file is missing or malformed, so a broken
// checkout shows up as a failure rather than as zero cases silently passing.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#ifndef MESHFWD_TEST_DATA_DIR
#error "MESHFWD_TEST_DATA_DIR must be defined (tests/meson.build test_args)"
#endif

namespace meshfwd::test {

inline std::string data_path(std::string_view name) {
    return std::string(MESHFWD_TEST_DATA_DIR) + "/" + std::string(name);
}

// The whole file as bytes; empty (and a test failure) when it cannot be read.
inline std::string read_data_file(std::string_view name) {
    std::ifstream in(data_path(name), std::ios::binary);
    if (!in) {
        ADD_FAILURE() << "cannot open test data file " << data_path(name);
        return {};
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// Parsed JSON; null (and a test failure) on a missing or malformed file.
inline nlohmann::json load_json(std::string_view name) {
    const std::string text = read_data_file(name);
    if (text.empty()) {
        return nullptr;
    }
    nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) {
        ADD_FAILURE() << "malformed JSON in " << data_path(name);
        return nullptr;
    }
    return doc;
}

inline int hex_digit(char c) noexcept {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// Strict hex decoding (even length, hex digits only); nullopt otherwise.
inline std::optional<std::vector<uint8_t>> try_from_hex(std::string_view hex) {
    if (hex.size() % 2 != 0) {
        return std::nullopt;
    }
    std::vector<uint8_t> out(hex.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
        const int hi = hex_digit(hex[2 * i]);
        const int lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return std::nullopt;
        }
        out[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    return out;
}

// Hex decoding for trusted test data: a malformed string fails the test and yields empty.
inline std::vector<uint8_t> from_hex(std::string_view hex) {
    auto bytes = try_from_hex(hex);
    if (!bytes) {
        ADD_FAILURE() << "malformed hex in test data: " << hex;
        return {};
    }
    return *bytes;
}

// Exactly N bytes of hex into a fixed array; a wrong length fails the test (array is zeros).
template <std::size_t N>
std::array<uint8_t, N> from_hex_array(std::string_view hex) {
    std::array<uint8_t, N> out{};
    const std::vector<uint8_t> bytes = from_hex(hex);
    if (bytes.size() != N) {
        ADD_FAILURE() << "expected " << N << " bytes of hex, got " << bytes.size() << ": " << hex;
        return out;
    }
    std::copy(bytes.begin(), bytes.end(), out.begin());
    return out;
}

inline std::string to_hex(std::span<const uint8_t> bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const uint8_t b : bytes) {
        out.push_back(digits[b >> 4]);
        out.push_back(digits[b & 0xf]);
    }
    return out;
}

// Shorthand for a JSON string field decoded from hex.
inline std::vector<uint8_t> hex_field(const nlohmann::json& object, const char* key) {
    return from_hex(object.at(key).get<std::string>());
}

} // namespace meshfwd::test
