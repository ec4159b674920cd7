// Internal to coord/: strict reading of JSON objects for protocol.cc and node_token.cc. Errors
// are thrown as field_error inside a parse and turned into result errors by parse_body, which
// also catches whatever nlohmann or the allocator throws, so no parser throws to its caller.
// Pure functions: any thread.
#pragma once

#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/result.h"

namespace meshfwd::coord::detail {

using json = nlohmann::ordered_json;

inline constexpr int max_depth = 16;

class field_error : public std::exception {
public:
    explicit field_error(std::string message) : _message(std::move(message)) {}
    const char* what() const noexcept override { return _message.c_str(); }

private:
    std::string _message;
};

[[noreturn]] inline void fail(const std::string& path, std::string_view what) {
    throw field_error(path + ": " + std::string(what));
}

inline std::string child(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
}
inline std::string element(const std::string& path, std::size_t i) {
    return path + "[" + std::to_string(i) + "]";
}

// Parses with duplicate keys and excessive nesting refused (nlohmann keeps the last duplicate
// silently, which lets two readers of one body disagree).
inline json parse_json(std::string_view body) {
    std::vector<std::unordered_set<std::string>> open_objects;
    auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
        if (depth > max_depth) {
            throw field_error("body: nested deeper than " + std::to_string(max_depth) + " levels");
        }
        switch (event) {
        case json::parse_event_t::object_start:
            open_objects.emplace_back();
            break;
        case json::parse_event_t::key:
            if (!open_objects.empty() && !open_objects.back().insert(parsed.get<std::string>()).second) {
                throw field_error("body: duplicate field \"" + parsed.get<std::string>() + "\"");
            }
            break;
        case json::parse_event_t::object_end:
            if (!open_objects.empty()) {
                open_objects.pop_back();
            }
            break;
        default:
            break;
        }
        return true;
    };
    return json::parse(body.begin(), body.end(), callback, true, false);
}

template <typename F>
auto parse_body(std::string_view body, std::size_t limit, F&& read) -> result<decltype(read(json()))> {
    if (body.size() > limit) {
        return make_error("body: larger than " + std::to_string(limit) + " bytes");
    }
    try {
        const json doc = parse_json(body);
        return read(doc);
    } catch (const field_error& e) {
        return make_error(e.what());
    } catch (const json::parse_error& e) {
        return make_error("body: not valid JSON (at byte " + std::to_string(e.byte) + ")");
    } catch (const std::exception& e) {
        return make_error(std::string("body: ") + e.what());
    }
}

// Reads one JSON object: every field must be asked for, or finish() names it as unknown.
class object_reader {
public:
    object_reader(const json& value, std::string path) : _value(value), _path(std::move(path)) {
        if (!value.is_object()) {
            fail(_path.empty() ? "body" : _path, "must be a JSON object");
        }
    }

    const json* get(std::string_view key) {
        _known.emplace(key);
        const auto it = _value.find(std::string(key));
        return it == _value.end() ? nullptr : &*it;
    }
    const json& need(std::string_view key) {
        const json* v = get(key);
        if (v == nullptr) {
            fail(child(_path, key), "required");
        }
        return *v;
    }
    std::string path(std::string_view key) const { return child(_path, key); }

    void finish() const {
        for (auto it = _value.begin(); it != _value.end(); ++it) {
            if (_known.count(it.key()) == 0) {
                fail(child(_path, it.key()), "unknown field");
            }
        }
    }

private:
    const json& _value;
    std::string _path;
    std::unordered_set<std::string> _known;
};

// Text: bounded, no control characters (they end up in logs and terminals).
inline std::string as_text(const json& v, const std::string& path, std::size_t max_len) {
    if (!v.is_string()) {
        fail(path, "must be a string");
    }
    const auto& s = v.get_ref<const std::string&>();
    if (s.size() > max_len) {
        fail(path, "longer than " + std::to_string(max_len) + " bytes");
    }
    for (const char c : s) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            fail(path, "contains a control character");
        }
    }
    return s;
}

inline bool as_bool(const json& v, const std::string& path) {
    if (!v.is_boolean()) {
        fail(path, "must be true or false");
    }
    return v.get<bool>();
}

inline int64_t as_int(const json& v, const std::string& path, int64_t lo, int64_t hi) {
    if (!v.is_number_integer()) {
        fail(path, "must be an integer");
    }
    if (v.is_number_unsigned()) {
        const uint64_t u = v.get<uint64_t>();
        if (u > static_cast<uint64_t>(hi) || (lo > 0 && u < static_cast<uint64_t>(lo))) {
            fail(path, "out of range " + std::to_string(lo) + "..." + std::to_string(hi));
        }
        return static_cast<int64_t>(u);
    }
    const int64_t i = v.get<int64_t>();
    if (i < lo || i > hi) {
        fail(path, "out of range " + std::to_string(lo) + "..." + std::to_string(hi));
    }
    return i;
}

template <typename F>
void for_each_element(const json& v, const std::string& path, std::size_t max_len, F&& each) {
    if (!v.is_array()) {
        fail(path, "must be an array");
    }
    if (v.size() > max_len) {
        fail(path, "more than " + std::to_string(max_len) + " entries");
    }
    for (std::size_t i = 0; i < v.size(); ++i) {
        each(v[i], element(path, i));
    }
}

} // namespace meshfwd::coord::detail
