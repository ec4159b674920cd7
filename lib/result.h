// result<T>: a value or an error message, for slow-path code that must explain failures
// (parsers, config, setup). Not for the packet path, which counts errors instead. Any thread.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace meshfwd {

struct error {
    std::string message;
};

template <typename T>
class [[nodiscard]] result {
public:
    result(T value) : _v(std::in_place_index<0>, std::move(value)) {}
    result(error err) : _v(std::in_place_index<1>, std::move(err)) {}

    explicit operator bool() const noexcept { return _v.index() == 0; }
    bool ok() const noexcept { return _v.index() == 0; }

    T& value() & { return std::get<0>(_v); }
    const T& value() const& { return std::get<0>(_v); }
    T&& value() && { return std::get<0>(std::move(_v)); }
    T* operator->() { return &std::get<0>(_v); }
    const T* operator->() const { return &std::get<0>(_v); }
    T& operator*() & { return std::get<0>(_v); }
    const T& operator*() const& { return std::get<0>(_v); }

    const std::string& error_message() const { return std::get<1>(_v).message; }

private:
    std::variant<T, error> _v;
};

// result<void>
template <>
class [[nodiscard]] result<void> {
public:
    result() = default;
    result(error err) : _err(std::move(err)), _failed(true) {}
    explicit operator bool() const noexcept { return !_failed; }
    bool ok() const noexcept { return !_failed; }
    const std::string& error_message() const { return _err.message; }

private:
    error _err;
    bool _failed = false;
};

inline error make_error(std::string message) { return error{std::move(message)}; }

} // namespace meshfwd
