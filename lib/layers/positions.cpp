// The sinusoidal position table, computed in double like transformers' numpy code, stored as float.
#include "layers/positions.h"

#include <cmath>

namespace tolk {

Tensor sinusoidal_positions(int64_t n_positions, int64_t d_model) {
    TOLK_CHECK(n_positions > 0 && d_model > 0, "sinusoidal positions need positive sizes, got [", n_positions, ",",
               d_model, "]");
    Tensor table({n_positions, d_model});  // [n_positions, d_model]
    const int64_t n_sin = (d_model + 1) / 2;  // columns j = 0, 2, 4, ... of the angle matrix
    const int64_t n_cos = d_model / 2;        // columns j = 1, 3, 5, ...
    float* out = table.f32();
    for (int64_t pos = 0; pos < n_positions; ++pos) {
        float* row = out + pos * d_model;
        for (int64_t i = 0; i < n_sin; ++i) {
            const double angle = static_cast<double>(pos) /
                                 std::pow(10000.0, static_cast<double>(2 * i) / static_cast<double>(d_model));
            row[i] = static_cast<float>(std::sin(angle));
        }
        for (int64_t i = 0; i < n_cos; ++i) {
            // Column 2i + 1 of the angle matrix: floor((2i + 1) / 2) = i, the same frequency as sine column i.
            const double angle = static_cast<double>(pos) /
                                 std::pow(10000.0, static_cast<double>(2 * i) / static_cast<double>(d_model));
            row[n_sin + i] = static_cast<float>(std::cos(angle));
        }
    }
    return table;
}

}  // namespace tolk
