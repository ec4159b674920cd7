// Schema-agnostic reading of a yaml-cpp tree with located errors, for the config loader
// (config_yaml.cc, which holds the schema). Every reader records a problem as
// "line:col: key.path: message" and returns nothing instead of stopping, so one pass finds them
// all. Internal to control/; one reader per load, on the loading thread.
#pragma once

#include "lib/ip_address.h"

#include <yaml-cpp/yaml.h>

#include <array>
#include <chrono>
#include <map>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace meshfwd::control {

template <typename E>
struct enum_name {
    std::string_view name;
    E value;
};

// One mapping's entries in file order.
struct map_view {
    struct entry {
        std::string key;
        YAML::Node key_node;
        YAML::Node value;
    };
    YAML::Mark mark;
    std::string path;
    std::vector<entry> entries;

    const entry* find(std::string_view key) const;
};

// A list element with its path ("peers[2]").
struct item {
    YAML::Node node;
    std::string path;
};

std::string join_path(const std::string& parent, std::string_view key);
std::string index_path(const std::string& parent, size_t index);
// "a scalar", "a list", "a mapping" or "nothing", for "expected X, got Y".
const char* kind_of(const YAML::Node& node);

class config_reader {
public:
    explicit config_reader(std::string file_name) : _file_name(std::move(file_name)) {}

    // `mark` is yaml-cpp's (0-based; a null mark means the file start); `path` may be empty.
    void error_at(const YAML::Mark& mark, const std::string& path, std::string message);
    // A problem that does not make the file invalid (a key this version accepts but ignores):
    // reported as "file:line:col: path: message" as errors are, but the config still loads.
    void warning_at(const YAML::Mark& mark, const std::string& path, std::string message);
    bool has_errors() const noexcept { return !_diags.empty(); }
    // Every error, sorted by position, one per line: "file:line:col: path: message".
    std::string format_errors();
    // Every warning, the same way, one string each.
    std::vector<std::string> format_warnings();
    // Where the key `path` ("mesh.stun", "gateway.forwards") was written, if a mapping opened
    // with open_map held it; for checks that run on the finished config.
    const YAML::Mark* key_mark(const std::string& path) const;

    // The mapping's entries; errors for a non-mapping, non-scalar keys, unknown keys (with a
    // "did you mean") and duplicate keys, which are left out.
    std::optional<map_view> open_map(const YAML::Node& node, const std::string& path,
                                     std::span<const std::string_view> known);
    // The value of `key` when present and not null (an empty value means "use the default").
    static const map_view::entry* present(const map_view& m, std::string_view key);
    // As present(), with an error when the key is missing or empty.
    const map_view::entry* required(const map_view& m, std::string_view key);
    // The section mapping under `key`, if present.
    std::optional<map_view> section(const map_view& m, std::string_view key, std::span<const std::string_view> known);

    // Scalars, ${VAR}-expanded, then converted; nothing (and an error) when they do not fit.
    std::optional<std::string> as_string(const YAML::Node& node, const std::string& path);
    std::optional<bool> as_bool(const YAML::Node& node, const std::string& path);
    // A whole number in [lo, hi]; `why` explains the range when it is not obvious.
    std::optional<uint64_t> as_uint(const YAML::Node& node, const std::string& path, uint64_t lo, uint64_t hi,
                                    std::string_view why = {});
    std::optional<uint16_t> as_port(const YAML::Node& node, const std::string& path);
    std::optional<std::chrono::nanoseconds> as_duration(const YAML::Node& node, const std::string& path,
                                                        bool allow_zero);
    std::optional<ip_prefix> as_prefix(const YAML::Node& node, const std::string& path);
    std::optional<endpoint> as_endpoint(const YAML::Node& node, const std::string& path);
    std::optional<std::vector<item>> as_list(const YAML::Node& node, const std::string& path);

    template <typename E, size_t N>
    std::optional<E> as_enum(const YAML::Node& node, const std::string& path, const std::array<enum_name<E>, N>& names) {
        auto text = as_string(node, path);
        if (!text) {
            return std::nullopt;
        }
        std::array<std::string_view, N> choices{};
        for (size_t i = 0; i < N; ++i) {
            if (names[i].name == *text) {
                return names[i].value;
            }
            choices[i] = names[i].name;
        }
        unknown_enum_value(node, path, *text, choices);
        return std::nullopt;
    }

    // Sets `out` from `key` if present and valid; absent or invalid keeps the default.
    template <typename T, typename Parse>
    void read(const map_view& m, std::string_view key, T& out, Parse&& parse) {
        if (const auto* e = present(m, key)) {
            if (auto v = parse(e->value, join_path(m.path, key))) {
                out = std::move(*v);
            }
        }
    }
    void read_bool(const map_view& m, std::string_view key, bool& out);
    void read_string(const map_view& m, std::string_view key, std::string& out);
    void read_duration(const map_view& m, std::string_view key, std::chrono::nanoseconds& out);
    template <typename E, size_t N>
    void read_enum(const map_view& m, std::string_view key, E& out, const std::array<enum_name<E>, N>& names) {
        read(m, key, out, [&](const YAML::Node& n, const std::string& p) { return as_enum(n, p, names); });
    }

private:
    struct diagnostic {
        int line;
        int column;
        std::string path;
        std::string message;
    };

    void unknown_enum_value(const YAML::Node& node, const std::string& path, const std::string& text,
                            std::span<const std::string_view> choices);

    static void sort(std::vector<diagnostic>& diags);
    std::string format(const diagnostic& d) const;

    std::string _file_name;
    std::vector<diagnostic> _diags;
    std::vector<diagnostic> _warnings;
    std::map<std::string, YAML::Mark, std::less<>> _key_marks;
};

} // namespace meshfwd::control
