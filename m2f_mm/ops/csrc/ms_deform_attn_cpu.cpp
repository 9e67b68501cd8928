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
  const scalar_t x0f = std::floor(x), y0f = std::floor(y);
  c.fx = x - x0f;
  c.fy = y - y0f;
  // NaN / huge coordinates: every corner is outside (grid_sample samples zeros there too).
  const bool finite = std::isfinite(x0f) && std::isfinite(y0f) && std::abs(x0f) < 1e9 && std::abs(y0f) < 1e9;
  const int64_t x0 = finite ? static_cast<int64_t>(x0f) : -2, y0 = finite ? static_cast<int64_t>(y0f) : -2;
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

void check_inputs(const at::Tensor& value, const at::Tensor& loc, const at::Tensor& attn) {
  TORCH_CHECK(value.dim() == 4, "value must be [B, Nv, H, C]");
  TORCH_CHECK(loc.dim() == 6 && loc.size(5) == 2, "sampling_loc must be [B, Nq, H, L, P, 2]");
  TORCH_CHECK(attn.dim() == 5, "attn_weight must be [B, Nq, H, L, P]");
  TORCH_CHECK(value.device().is_cpu() && loc.device().is_cpu() && attn.device().is_cpu(),
              "m2f_mm::ms_deform_attn is the CPU kernel");
  TORCH_CHECK(value.scalar_type() == loc.scalar_type() && value.scalar_type() == attn.scalar_type(),
              "value, sampling_loc and attn_weight must share one dtype");
}

at::Tensor forward(const at::Tensor& value_in, const at::Tensor& spatial_shapes,
                   const at::Tensor& level_start_index, const at::Tensor& loc_in,
                   const at::Tensor& attn_in) {
  check_inputs(value_in, loc_in, attn_in);
  const auto value = value_in.contiguous();
  const auto loc = loc_in.contiguous();
  const auto attn = attn_in.contiguous();
  const int64_t batch = value.size(0), num_value = value.size(1), heads = value.size(2),
                channels = value.size(3);
  const int64_t num_query = loc.size(1), num_levels = loc.size(3), num_points = loc.size(4);
  const Levels lv = read_levels(spatial_shapes, level_start_index);
  TORCH_CHECK(static_cast<int64_t>(lv.h.size()) == num_levels, "spatial_shapes has the wrong level count");
  auto out = at::zeros({batch, num_query, heads * channels}, value.options());
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "ms_deform_attn_forward", [&] {
    const scalar_t* v = value.data_ptr<scalar_t>();
    const scalar_t* lp = loc.data_ptr<scalar_t>();
    const scalar_t* ap = attn.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, batch * num_query, 16, [&](int64_t begin, int64_t end) {
      for (int64_t bq = begin; bq < end; ++bq) {
        const int64_t b = bq / num_query;
        for (int64_t h = 0; h < heads; ++h) {
          scalar_t* acc = op + (bq * heads + h) * channels;
          const int64_t sp = (bq * heads + h) * num_levels * num_points;
          for (int64_t l = 0; l < num_levels; ++l) {
            for (int64_t p = 0; p < num_points; ++p) {
              const int64_t s = sp + l * num_points + p;
              const auto c = corners<scalar_t>(lp[2 * s], lp[2 * s + 1], lv.h[l], lv.w[l], lv.start[l]);
              const scalar_t a = ap[s];
              for (int k = 0; k < 4; ++k) {
                if (c.index[k] < 0) continue;
                const scalar_t w = a * c.weight[k];
                const scalar_t* row = v + ((b * num_value + c.index[k]) * heads + h) * channels;
                for (int64_t ch = 0; ch < channels; ++ch) acc[ch] += w * row[ch];
              }
            }
          }
        }
      }
    });
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
  const int64_t batch = value.size(0), num_value = value.size(1), heads = value.size(2),
                channels = value.size(3);
  const int64_t num_query = loc.size(1), num_levels = loc.size(3), num_points = loc.size(4);
  TORCH_CHECK(grad_out.numel() == batch * num_query * heads * channels, "grad_out has the wrong size");
  const Levels lv = read_levels(spatial_shapes, level_start_index);
  auto grad_value = at::zeros_like(value);
  auto grad_loc = at::empty_like(loc);
  auto grad_attn = at::empty_like(attn);
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "ms_deform_attn_backward", [&] {
    const scalar_t* v = value.data_ptr<scalar_t>();
    const scalar_t* lp = loc.data_ptr<scalar_t>();
    const scalar_t* ap = attn.data_ptr<scalar_t>();
    const scalar_t* gp = grad_out.data_ptr<scalar_t>();
    scalar_t* gv = grad_value.data_ptr<scalar_t>();
    scalar_t* gl = grad_loc.data_ptr<scalar_t>();
    scalar_t* ga = grad_attn.data_ptr<scalar_t>();
    at::parallel_for(0, batch * heads, 1, [&](int64_t begin, int64_t end) {
      for (int64_t bh = begin; bh < end; ++bh) {
        const int64_t b = bh / heads, h = bh % heads;
        for (int64_t q = 0; q < num_query; ++q) {
          const int64_t bq = b * num_query + q;
          const scalar_t* g = gp + (bq * heads + h) * channels;
          const int64_t sp = (bq * heads + h) * num_levels * num_points;
          for (int64_t l = 0; l < num_levels; ++l) {
            for (int64_t p = 0; p < num_points; ++p) {
              const int64_t s = sp + l * num_points + p;
              const auto c = corners<scalar_t>(lp[2 * s], lp[2 * s + 1], lv.h[l], lv.w[l], lv.start[l]);
              const scalar_t a = ap[s];
              scalar_t dot[4] = {0, 0, 0, 0};  // <grad_out, value at corner k>
              for (int k = 0; k < 4; ++k) {
                if (c.index[k] < 0) continue;
                const int64_t off = ((b * num_value + c.index[k]) * heads + h) * channels;
                const scalar_t* row = v + off;
                scalar_t* grow = gv + off;
                const scalar_t w = a * c.weight[k];
                scalar_t d = 0;
                for (int64_t ch = 0; ch < channels; ++ch) {
                  d += g[ch] * row[ch];
                  grow[ch] += w * g[ch];
                }
                dot[k] = d;
              }
              ga[s] = c.weight[0] * dot[0] + c.weight[1] * dot[1] + c.weight[2] * dot[2] +
                      c.weight[3] * dot[3];
              // d weight / d x and / d y of the corners (x0,y0), (x1,y0), (x0,y1), (x1,y1);
              // x = loc_x * W - 0.5, so d/d loc_x carries a factor W (and H for y).
              const scalar_t gx = (1 - c.fy) * (dot[1] - dot[0]) + c.fy * (dot[3] - dot[2]);
              const scalar_t gy = (1 - c.fx) * (dot[2] - dot[0]) + c.fx * (dot[3] - dot[1]);
              gl[2 * s] = a * gx * static_cast<scalar_t>(lv.w[l]);
              gl[2 * s + 1] = a * gy * static_cast<scalar_t>(lv.h[l]);
            }
          }
        }
      }
    });
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
