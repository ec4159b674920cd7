// Driver for fuzz targets in builds without libFuzzer: replays every file of the seed corpus
// given as argv[1], then feeds bounded pseudo-random inputs and single-byte mutations of the
// seeds. Deterministic (fixed seed), so a failure reproduces. Single-threaded.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
    std::vector<std::vector<uint8_t>> seeds;
    if (argc > 1 && std::filesystem::is_directory(argv[1])) {
        for (const auto& entry : std::filesystem::directory_iterator(argv[1])) {
            if (!entry.is_regular_file()) {
                continue;
            }
            std::ifstream in(entry.path(), std::ios::binary);
            seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        }
    }
    for (const auto& seed : seeds) {
        LLVMFuzzerTestOneInput(seed.data(), seed.size());
    }
    std::mt19937_64 rng(0x6d657368666664ULL);
    std::vector<uint8_t> buf;
    constexpr int random_inputs = 20000;
    for (int i = 0; i < random_inputs; ++i) {
        if (!seeds.empty() && (i & 1)) {
            buf = seeds[rng() % seeds.size()];
            const int flips = 1 + static_cast<int>(rng() % 4);
            for (int f = 0; f < flips && !buf.empty(); ++f) {
                buf[rng() % buf.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
            }
            if (!buf.empty() && rng() % 4 == 0) {
                buf.resize(rng() % buf.size());
            }
        } else {
            buf.resize(rng() % 512);
            for (auto& b : buf) {
                b = static_cast<uint8_t>(rng());
            }
        }
        LLVMFuzzerTestOneInput(buf.data(), buf.size());
    }
    std::printf("fuzz replay: %zu seeds, %d generated inputs, no crash\n", seeds.size(), random_inputs);
    return 0;
}
