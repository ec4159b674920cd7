// Generic YAML readers with located errors for the config loader. Loading thread only.
#include "control/config_reader.h"

#include "control/config_values.h"
#include "lib/units.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <utility>

namespace meshfwd::control {

const map_view::entry* map_view::find(std::string_view key) const {
    for (const auto& e : entries) {
        if (e.key == key) {
            return &e;
        }
    }
    return nullptr;
}

std::string join_path(const std::string& parent, std::string_view key) {
    return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

std::string index_path(const std::string& parent, size_t index) { return parent + "[" + std::to_string(index) + "]"; }

const char* kind_of(const YAML::Node& node) {
    switch (node.Type()) {
    case YAML::NodeType::Scalar:
        return "a scalar";
    case YAML::NodeType::Sequence:
        return "a list";
    case YAML::NodeType::Map:
        return "a mapping";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
        break;
    }
    return "nothing";
}

void config_reader::error_at(const YAML::Mark& mark, const std::string& path, std::string message) {
    // yaml-cpp marks are 0-based; a null mark (-1) means "no position": use the file start.
    const int line = mark.line >= 0 ? mark.line + 1 : 1;
    const int column = mark.column >= 0 ? mark.column + 1 : 1;
    _diags.push_back({line, column, path, std::move(message)});
}

void config_reader::warning_at(const YAML::Mark& mark, const std::string& path, std::string message) {
    const int line = mark.line >= 0 ? mark.line + 1 : 1;
    const int column = mark.column >= 0 ? mark.column + 1 : 1;
    _warnings.push_back({line, column, path, std::move(message)});
}

void config_reader::sort(std::vector<diagnostic>& diags) {
    // Stable: problems found at one position keep the order they were found in.
    std::stable_sort(diags.begin(), diags.end(), [](const diagnostic& a, const diagnostic& b) {
        return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
}

std::string config_reader::format(const diagnostic& d) const {
    std::string out = _file_name + ":" + std::to_string(d.line) + ":" + std::to_string(d.column) + ": ";
    if (!d.path.empty()) {
        out += d.path + ": ";
    }
    return out + d.message;
}

std::string config_reader::format_errors() {
    sort(_diags);
    std::string out;
    for (const auto& d : _diags) {
        if (!out.empty()) {
            out += '\n';
        }
        out += format(d);
    }
    return out;
}

std::vector<std::string> config_reader::format_warnings() {
    sort(_warnings);
    std::vector<std::string> out;
    for (const auto& d : _warnings) {
        out.push_back(format(d));
    }
    return out;
}

const YAML::Mark* config_reader::key_mark(const std::string& path) const {
    const auto it = _key_marks.find(path);
    return it == _key_marks.end() ? nullptr : &it->second;
}

std::optional<map_view> config_reader::section(const map_view& m, std::string_view key,
                                               std::span<const std::string_view> known) {
    if (const auto* e = present(m, key)) {
        return open_map(e->value, join_path(m.path, key), known);
    }
    return std::nullopt;
}

void config_reader::unknown_enum_value(const YAML::Node& node, const std::string& path, const std::string& text,
                                       std::span<const std::string_view> choices) {
    std::string message = "unknown value " + quote(text) + "; valid values: ";
    for (size_t i = 0; i < choices.size(); ++i) {
        message += (i ? ", " : "") + std::string(choices[i]);
    }
    if (auto guess = closest_name(text, choices)) {
        message += " (did you mean '" + std::string(*guess) + "'?)";
    }
    error_at(node.Mark(), path, message);
}

void config_reader::read_bool(const map_view& m, std::string_view key, bool& out) {
    read(m, key, out, [this](const YAML::Node& n, const std::string& p) { return as_bool(n, p); });
}

void config_reader::read_string(const map_view& m, std::string_view key, std::string& out) {
    read(m, key, out, [this](const YAML::Node& n, const std::string& p) { return as_string(n, p); });
}

void config_reader::read_duration(const map_view& m, std::string_view key, std::chrono::nanoseconds& out) {
    read(m, key, out, [this](const YAML::Node& n, const std::string& p) { return as_duration(n, p, false); });
}

std::optional<map_view> config_reader::open_map(const YAML::Node& node, const std::string& path,
                                               std::span<const std::string_view> known) {
    if (!node.IsMap()) {
        error_at(node.Mark(), path, std::string("expected a mapping, got ") + kind_of(node));
        return std::nullopt;
    }
    map_view m;
    m.mark = node.Mark();
    m.path = path;
    std::map<std::string, int> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
        const YAML::Node key = it->first;
        if (!key.IsScalar()) {
            error_at(key.Mark(), path, std::string("a key must be a plain name, got ") + kind_of(key));
            continue;
        }
        const std::string& name = key.Scalar();
        const std::string key_path = join_path(path, name);
        if (std::find(known.begin(), known.end(), name) == known.end()) {
            std::string message = "unknown key";
            if (auto guess = closest_name(name, known)) {
                message += "; did you mean '" + std::string(*guess) + "'?";
            } else {
                message += "; known keys here: ";
                for (size_t i = 0; i < known.size(); ++i) {
                    message += (i ? ", " : "") + std::string(known[i]);
                }
            }
            // Quoted form without the quotes: a key of control bytes must not reach the terminal raw.
            const std::string shown = quote(name);
            error_at(key.Mark(), join_path(path, shown.substr(1, shown.size() - 2)), message);
            continue;
        }
        const auto [pos, fresh] = seen.emplace(name, key.Mark().line + 1);
        if (!fresh) {
            error_at(key.Mark(), key_path, "duplicate key (first at line " + std::to_string(pos->second) + ")");
            continue;
        }
        _key_marks.emplace(key_path, key.Mark());
        m.entries.push_back({name, key, it->second});
    }
    return m;
}

// The value of `key` when present and not null (an empty value means "use the default").
const map_view::entry* config_reader::present(const map_view& m, std::string_view key) {
    const auto* e = m.find(key);
    return (e != nullptr && !e->value.IsNull()) ? e : nullptr;
}

const map_view::entry* config_reader::required(const map_view& m, std::string_view key) {
    const auto* e = m.find(key);
    if (e == nullptr) {
        error_at(m.mark, join_path(m.path, key), "required key is missing");
        return nullptr;
    }
    if (e->value.IsNull()) {
        error_at(e->key_node.Mark(), join_path(m.path, key), "required key has no value");
        return nullptr;
    }
    return e;
}

std::optional<std::string> config_reader::as_string(const YAML::Node& node, const std::string& path) {
    if (!node.IsScalar()) {
        error_at(node.Mark(), path, std::string("expected a scalar value, got ") + kind_of(node));
        return std::nullopt;
    }
    auto expanded = expand_env(node.Scalar());
    if (!expanded) {
        error_at(node.Mark(), path, expanded.error_message());
        return std::nullopt;
    }
    return std::move(*expanded);
}

std::optional<bool> config_reader::as_bool(const YAML::Node& node, const std::string& path) {
    auto text = as_string(node, path);
    if (!text) {
        return std::nullopt;
    }
    std::string lower = *text;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; });
    if (lower == "true" || lower == "yes" || lower == "on") {
        return true;
    }
    if (lower == "false" || lower == "no" || lower == "off") {
        return false;
    }
    error_at(node.Mark(), path, "expected true or false, got " + quote(*text));
    return std::nullopt;
}

// A whole number in [lo, hi]; `why` explains the range when it is not obvious.
std::optional<uint64_t> config_reader::as_uint(const YAML::Node& node, const std::string& path, uint64_t lo, uint64_t hi,
                                std::string_view why) {
    auto text = as_string(node, path);
    if (!text) {
        return std::nullopt;
    }
    uint64_t value = 0;
    const char* first = text->data();
    const char* last = first + text->size();
    const auto [end, ec] = std::from_chars(first, last, value);
    if (text->empty() || end != last || ec == std::errc::invalid_argument) {
        error_at(node.Mark(), path, "expected a whole number, got " + quote(*text));
        return std::nullopt;
    }
    if (ec == std::errc::result_out_of_range || value < lo || value > hi) {
        std::string message = *text + " is out of range " + std::to_string(lo) + ".." + std::to_string(hi);
        if (!why.empty()) {
            message += " (" + std::string(why) + ")";
        }
        error_at(node.Mark(), path, message);
        return std::nullopt;
    }
    return value;
}

std::optional<uint16_t> config_reader::as_port(const YAML::Node& node, const std::string& path) {
    auto v = as_uint(node, path, 1, 65535, "a UDP/TCP port");
    return v ? std::optional<uint16_t>(static_cast<uint16_t>(*v)) : std::nullopt;
}

std::optional<std::chrono::nanoseconds> config_reader::as_duration(const YAML::Node& node, const std::string& path, bool allow_zero) {
    auto text = as_string(node, path);
    if (!text) {
        return std::nullopt;
    }
    auto d = parse_duration(*text);
    if (!d) {
        std::string message = d.error_message();
        if (!text->empty() && std::all_of(text->begin(), text->end(), [](char c) { return c >= '0' && c <= '9'; })) {
            message += " (write " + *text + "s)";
        }
        error_at(node.Mark(), path, message);
        return std::nullopt;
    }
    if (!allow_zero && d->count() == 0) {
        error_at(node.Mark(), path, "must be longer than 0s");
        return std::nullopt;
    }
    return *d;
}


std::optional<ip_prefix> config_reader::as_prefix(const YAML::Node& node, const std::string& path) {
    auto text = as_string(node, path);
    if (!text) {
        return std::nullopt;
    }
    auto p = ip_prefix::parse(*text);
    if (!p) {
        error_at(node.Mark(), path, p.error_message());
        return std::nullopt;
    }
    return *p;
}

std::optional<endpoint> config_reader::as_endpoint(const YAML::Node& node, const std::string& path) {
    auto text = as_string(node, path);
    if (!text) {
        return std::nullopt;
    }
    auto e = endpoint::parse(*text);
    if (!e) {
        error_at(node.Mark(), path, e.error_message());
        return std::nullopt;
    }
    return *e;
}

std::optional<std::vector<item>> config_reader::as_list(const YAML::Node& node, const std::string& path) {
    if (!node.IsSequence()) {
        std::string message = std::string("expected a list, got ") + kind_of(node);
        if (node.IsScalar()) {
            message += "; write [" + node.Scalar() + "] for a list of one";
        }
        error_at(node.Mark(), path, message);
        return std::nullopt;
    }
    std::vector<item> out;
    size_t i = 0;
    for (const auto& element : node) {
        out.push_back({element, index_path(path, i)});
        ++i;
    }
    return out;
}

} // namespace meshfwd::control
