// Named reasons from one X-macro list: MESHFWD_DEFINE_REASONS(enum_name, LIST) turns
//   #define LIST(X) X(ok, "accepted") X(truncated, "shorter than the message") ...
// into `enum class enum_name : uint8_t`, the count `n_<enum_name>s`, and constexpr
// `to_string(enum_name)` (the identifier) and `describe(enum_name)` (the text). Drop counters
// index arrays by these enums; names and texts feed metrics and error messages. Any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#define MESHFWD_REASON_ENUMERATOR(name, text) name,
#define MESHFWD_REASON_NAME(name, text) std::string_view(#name),
#define MESHFWD_REASON_TEXT(name, text) std::string_view(text),
#define MESHFWD_REASON_ONE(name, text) +1

#define MESHFWD_DEFINE_REASONS(enum_name, LIST)                                                   \
    enum class enum_name : uint8_t { LIST(MESHFWD_REASON_ENUMERATOR) };                          \
    inline constexpr std::size_t n_##enum_name##s = 0 LIST(MESHFWD_REASON_ONE);                   \
    inline constexpr std::array<std::string_view, n_##enum_name##s> enum_name##_names = {         \
        LIST(MESHFWD_REASON_NAME)};                                                              \
    inline constexpr std::array<std::string_view, n_##enum_name##s> enum_name##_texts = {         \
        LIST(MESHFWD_REASON_TEXT)};                                                              \
    [[nodiscard]] constexpr std::string_view to_string(enum_name r) noexcept {                   \
        const auto i = static_cast<std::size_t>(r);                                              \
        return i < n_##enum_name##s ? enum_name##_names[i] : std::string_view("?");              \
    }                                                                                            \
    [[nodiscard]] constexpr std::string_view describe(enum_name r) noexcept {                    \
        const auto i = static_cast<std::size_t>(r);                                              \
        return i < n_##enum_name##s ? enum_name##_texts[i] : std::string_view("?");              \
    }
