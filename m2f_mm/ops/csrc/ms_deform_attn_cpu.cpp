// Multi-scale deformable attention on CPU: forward and backward, registered as torch custom ops
// m2f_mm::ms_deform_attn_forward / m2f_mm::ms_deform_attn_backward (autograd and the fake kernel
// are attached from Python, see m2f_mm/ops/ms_deform_attn.py).
//
// Shapes: value [B, Nv, H, C] (all levels' tokens, level l at level_start_index[l], row-major
// H_l x W_l), spatial_shapes [L, 2] (H_l, W_l), sampling_loc [B, Nq, H, L, P, 2] normalised
// (x, y), attn_weight [B, Nq, H, L, P], output [B, Nq, H * C].
//
// Sampling is grid_sample's bilinear rule with align_corners=False and zero padding: pixel
// coordinates x = loc_x * W_l - 0.5, y = loc_y * H_l - 0.5 (computed as grid_sample does); each of the four corners contributes
// only when it lies inside the map. The forward pass parallelises over (batch, query); the
// backward pass over (batch, head), because every query of one (batch, head) scatters into the
// same value rows, so no two threads ever write to the same gradient element.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <c10/util/irange.h>
#include <torch/library.h>

#include <cmath>
#include <tuple>
#include <vector>

namespace {

struct Levels {
  std::vector<int64_t> h, w, start;
};

Levels read_levels(const at::Tensor& spatial_shapes, const at::Tensor& level_start_index) {
  auto shapes = spatial_shapes.to(at::kLong).contiguous();
  auto starts = level_start_index.to(at::kLong).contiguous();
  const int64_t num_levels = shapes.size(0);
  Levels lv;
  const int64_t* s = shapes.data_ptr<int64_t>();
  const int64_t* st = starts.data_ptr<int64_t>();
  for (int64_t l = 0; l < num_levels; ++l) {
    lv.h.push_back(s[2 * l]);
    lv.w.push_back(s[2 * l + 1]);
    lv.start.push_back(st[l]);
  }
  return lv;
}

// The four bilinear corners of one sampling point: flat token index (or -1 when outside the
// map) and the bilinear weight; (fx, fy) are kept for the location gradient.
template <typename scalar_t>
struct Corners {
  int64_t index[4];
  scalar_t weight[4];
  scalar_t fx, fy;
};

template <typename scalar_t>
inline Corners<scalar_t> corners(scalar_t loc_x, scalar_t loc_y, int64_t height, int64_t width,
                                 int64_t start) {
  Corners<scalar_t> c;
  // The arithmetic of mmcv's path (grid = 2 * loc - 1) and of grid_sample's unnormalisation
  // ((grid + 1) * size / 2 - 0.5), step by step, so floor() picks the same corners even for
  // points within rounding distance of a pixel centre (where the location gradient jumps).
  const scalar_t gx = scalar_t(2) * loc_x - scalar_t(1), gy = scalar_t(2) * loc_y - scalar_t(1);
  const scalar_t x = (gx + scalar_t(1)) * (static_cast<scalar_t>(width) / 2) - scalar_t(0.5);
  const scalar_t y = (gy + scalar_t(1)) * (static_cast<scalar_t>(height) / 2) - scalar_t(0.5);
  // NaN / huge coordinates: every corner is outside (grid_sample samples zeros there too).
  // (Comparisons with NaN are false.)
  const bool finite = x > scalar_t(-1e9) && x < scalar_t(1e9) && y > scalar_t(-1e9) && y < scalar_t(1e9);
  // floor by truncation: no libm call on the default x86-64 target
  int64_t x0 = finite ? static_cast<int64_t>(x) : -2, y0 = finite ? static_cast<int64_t>(y) : -2;
  x0 -= finite && static_cast<scalar_t>(x0) > x;
  y0 -= finite && static_cast<scalar_t>(y0) > y;
  c.fx = finite ? x - static_cast<scalar_t>(x0) : scalar_t(0);
  c.fy = finite ? y - static_cast<scalar_t>(y0) : scalar_t(0);
  const scalar_t wx[2] = {scalar_t(1) - c.fx, c.fx};
  const scalar_t wy[2] = {scalar_t(1) - c.fy, c.fy};
  for (int k = 0; k < 4; ++k) {
    const int64_t xc = x0 + (k & 1), yc = y0 + (k >> 1);
    const bool inside = xc >= 0 && xc < width && yc >= 0 && yc < height;
    c.index[k] = inside ? start + yc * width + xc : -1;
    c.weight[k] = wx[k & 1] * wy[k >> 1];
  }
  return c;
}

// out += w * row over C channels (restrict: the rows never alias, so the loop vectorises).
template <typename scalar_t>
inline void axpy(scalar_t* __restrict__ out, const scalar_t* __restrict__ row, scalar_t w, int64_t channels) {
  for (int64_t ch = 0; ch < channels; ++ch) out[ch] += w * row[ch];
}

// returns <g, row> and does grad_row += w * g, in one pass over C channels.
template <typename scalar_t>
inline scalar_t dot_axpy(scalar_t* __restrict__ grad_row, const scalar_t* __restrict__ row,
                         const scalar_t* __restrict__ g, scalar_t w, int64_t channels) {
  scalar_t d = 0;
#pragma omp simd reduction(+ : d)
  for (int64_t ch = 0; ch < channels; ++ch) {
    d += g[ch] * row[ch];
    grad_row[ch] += w * g[ch];
  }
  return d;
}

// Everything the loops read, as raw pointers and sizes.
template <typename scalar_t>
struct Args {
  const scalar_t* value;     // [B, Nv, H, C]
  const scalar_t* loc;       // [B, Nq, H, L, P, 2]
  const scalar_t* attn;      // [B, Nq, H, L, P]
  const scalar_t* grad_out;  // [B, Nq, H, C] (backward)
  scalar_t* out;             // forward output, or grad_value in backward
  scalar_t* grad_loc;
  scalar_t* grad_attn;
  int64_t batch, num_value, heads, channels, num_query, num_levels, num_points;
  const int64_t *h, *w, *start;  // per level
};

// Forward for rows bq in [begin, end) of the flattened (batch, query) axis.
template <typename scalar_t>
inline __attribute__((always_inline)) void forward_rows(const Args<scalar_t>& a, int64_t begin, int64_t end) {
  const int64_t H = a.heads, C = a.channels, L = a.num_levels, P = a.num_points;
  for (int64_t bq = begin; bq < end; ++bq) {
    const int64_t b = bq / a.num_query;
    for (int64_t h = 0; h < H; ++h) {
      scalar_t* acc = a.out + (bq * H + h) * C;
      const int64_t sp = (bq * H + h) * L * P;
      for (int64_t l = 0; l < L; ++l) {
        for (int64_t p = 0; p < P; ++p) {
          const int64_t s = sp + l * P + p;
          const auto c = corners<scalar_t>(a.loc[2 * s], a.loc[2 * s + 1], a.h[l], a.w[l], a.start[l]);
          for (int k = 0; k < 4; ++k) {
            if (c.index[k] < 0) continue;
            axpy(acc, a.value + ((b * a.num_value + c.index[k]) * H + h) * C, a.attn[s] * c.weight[k], C);
          }
        }
      }
    }
  }
}

// Backward for (batch, head) pairs bh in [begin, end): all gradient rows of one pair are written
// by one thread only.
template <typename scalar_t>
inline __attribute__((always_inline)) void backward_rows(const Args<scalar_t>& a, int64_t begin, int64_t end) {
  const int64_t H = a.heads, C = a.channels, L = a.num_levels, P = a.num_points;
  for (int64_t bh = begin; bh < end; ++bh) {
    const int64_t b = bh / H, h = bh % H;
    for (int64_t q = 0; q < a.num_query; ++q) {
      const int64_t bq = b * a.num_query + q;
      const scalar_t* g = a.grad_out + (bq * H + h) * C;
      const int64_t sp = (bq * H + h) * L * P;
      for (int64_t l = 0; l < L; ++l) {
        for (int64_t p = 0; p < P; ++p) {
          const int64_t s = sp + l * P + p;
          const auto c = corners<scalar_t>(a.loc[2 * s], a.loc[2 * s + 1], a.h[l], a.w[l], a.start[l]);
          const scalar_t wgt = a.attn[s];
          scalar_t dot[4] = {0, 0, 0, 0};  // <grad_out, value at corner k>
          for (int k = 0; k < 4; ++k) {
            if (c.index[k] < 0) continue;
            const int64_t off = ((b * a.num_value + c.index[k]) * H + h) * C;
            dot[k] = dot_axpy(a.out + off, a.value + off, g, wgt * c.weight[k], C);
          }
          a.grad_attn[s] = c.weight[0] * dot[0] + c.weight[1] * dot[1] + c.weight[2] * dot[2] +
                           c.weight[3] * dot[3];
          // d weight / d x and / d y of the corners (x0,y0), (x1,y0), (x0,y1), (x1,y1);
          // x = loc_x * W - 0.5, so d/d loc_x carries a factor W (and H for y).
          const scalar_t gx = (1 - c.fy) * (dot[1] - dot[0]) + c.fy * (dot[3] - dot[2]);
          const scalar_t gy = (1 - c.fx) * (dot[2] - dot[0]) + c.fx * (dot[3] - dot[1]);
          a.grad_loc[2 * s] = wgt * gx * static_cast<scalar_t>(a.w[l]);
          a.grad_loc[2 * s + 1] = wgt * gy * static_cast<scalar_t>(a.h[l]);
        }
      }
    }
  }
}

// float, the hot case, gets AVX-512 / AVX2+FMA clones picked at load time on x86-64 (the default
// target has neither); the results differ from the default clone only by rounding.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define M2F_CLONES __attribute__((target_clones("arch=skylake-avx512", "arch=haswell", "default")))
#else
#define M2F_CLONES
#endif

M2F_CLONES void forward_rows_f32(const Args<float>& a, int64_t begin, int64_t end) { forward_rows(a, begin, end); }
M2F_CLONES void backward_rows_f32(const Args<float>& a, int64_t begin, int64_t end) { backward_rows(a, begin, end); }
void forward_range(const Args<float>& a, int64_t begin, int64_t end) { forward_rows_f32(a, begin, end); }
void backward_range(const Args<float>& a, int64_t begin, int64_t end) { backward_rows_f32(a, begin, end); }
void forward_range(const Args<double>& a, int64_t begin, int64_t end) { forward_rows(a, begin, end); }
void backward_range(const Args<double>& a, int64_t begin, int64_t end) { backward_rows(a, begin, end); }

void check_inputs(const at::Tensor& value, const at::Tensor& loc, const at::Tensor& attn) {
  TORCH_CHECK(value.dim() == 4, "value must be [B, Nv, H, C]");
  TORCH_CHECK(loc.dim() == 6 && loc.size(5) == 2, "sampling_loc must be [B, Nq, H, L, P, 2]");
  TORCH_CHECK(attn.dim() == 5, "attn_weight must be [B, Nq, H, L, P]");
  TORCH_CHECK(value.device().is_cpu() && loc.device().is_cpu() && attn.device().is_cpu(),
              "m2f_mm::ms_deform_attn is the CPU kernel");
  TORCH_CHECK(value.scalar_type() == loc.scalar_type() && value.scalar_type() == attn.scalar_type(),
              "value, sampling_loc and attn_weight must share one dtype");
  TORCH_CHECK(value.scalar_type() == at::kFloat || value.scalar_type() == at::kDouble,
              "m2f_mm::ms_deform_attn runs in float32 or float64");
}

template <typename scalar_t>
Args<scalar_t> make_args(const at::Tensor& value, const at::Tensor& loc, const at::Tensor& attn, const Levels& lv) {
  Args<scalar_t> a{};
  a.value = value.data_ptr<scalar_t>();
  a.loc = loc.data_ptr<scalar_t>();
  a.attn = attn.data_ptr<scalar_t>();
  a.batch = value.size(0);
  a.num_value = value.size(1);
  a.heads = value.size(2);
  a.channels = value.size(3);
  a.num_query = loc.size(1);
  a.num_levels = loc.size(3);
  a.num_points = loc.size(4);
  a.h = lv.h.data();
  a.w = lv.w.data();
  a.start = lv.start.data();
  TORCH_CHECK(static_cast<int64_t>(lv.h.size()) == a.num_levels, "spatial_shapes has the wrong level count");
  return a;
}

at::Tensor forward(const at::Tensor& value_in, const at::Tensor& spatial_shapes,
                   const at::Tensor& level_start_index, const at::Tensor& loc_in,
                   const at::Tensor& attn_in) {
  check_inputs(value_in, loc_in, attn_in);
  const auto value = value_in.contiguous();
  const auto loc = loc_in.contiguous();
  const auto attn = attn_in.contiguous();
  const Levels lv = read_levels(spatial_shapes, level_start_index);
  auto out = at::zeros({value.size(0), loc.size(1), value.size(2) * value.size(3)}, value.options());
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "ms_deform_attn_forward", [&] {
    auto a = make_args<scalar_t>(value, loc, attn, lv);
    a.out = out.data_ptr<scalar_t>();
    at::parallel_for(0, a.batch * a.num_query, 16,
                     [&](int64_t begin, int64_t end) { forward_range(a, begin, end); });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> backward(const at::Tensor& grad_out_in,
                                                        const at::Tensor& value_in,
                                                        const at::Tensor& spatial_shapes,
                                                        const at::Tensor& level_start_index,
                                                        const at::Tensor& loc_in,
                                                        const at::Tensor& attn_in) {
  check_inputs(value_in, loc_in, attn_in);
  const auto value = value_in.contiguous();
  const auto loc = loc_in.contiguous();
  const auto attn = attn_in.contiguous();
  const auto grad_out = grad_out_in.to(value.scalar_type()).contiguous();
  TORCH_CHECK(grad_out.numel() == loc.size(0) * loc.size(1) * value.size(2) * value.size(3),
              "grad_out has the wrong size");
  const Levels lv = read_levels(spatial_shapes, level_start_index);
  auto grad_value = at::zeros_like(value);
  auto grad_loc = at::empty_like(loc);
  auto grad_attn = at::empty_like(attn);
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "ms_deform_attn_backward", [&] {
    auto a = make_args<scalar_t>(value, loc, attn, lv);
    a.grad_out = grad_out.data_ptr<scalar_t>();
    a.out = grad_value.data_ptr<scalar_t>();
    a.grad_loc = grad_loc.data_ptr<scalar_t>();
    a.grad_attn = grad_attn.data_ptr<scalar_t>();
    at::parallel_for(0, a.batch * a.heads, 1,
                     [&](int64_t begin, int64_t end) { backward_range(a, begin, end); });
  });
  return std::make_tuple(grad_value, grad_loc, grad_attn);
}

}  // namespace

TORCH_LIBRARY(m2f_mm, m) {
  m.def("ms_deform_attn_forward(Tensor value, Tensor spatial_shapes, Tensor level_start_index, "
        "Tensor sampling_loc, Tensor attn_weight) -> Tensor");
  m.def("ms_deform_attn_backward(Tensor grad_output, Tensor value, Tensor spatial_shapes, "
        "Tensor level_start_index, Tensor sampling_loc, Tensor attn_weight) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(m2f_mm, CPU, m) {
  m.impl("ms_deform_attn_forward", &forward);
  m.impl("ms_deform_attn_backward", &backward);
}
