// A Conv2d followed by an eval-mode BatchNorm2d as one convolution, for inference: with
// r = 1/√(running_var + eps), the folded weight is w · (γ·r) per output channel and the folded bias
// (b − running_mean)·r·γ + β, in the order torch.nn.utils.fuse_conv_bn_weights computes them. One
// invocation per weight value; the first of each output channel also writes that channel's bias.

struct Params {
  cout: u32,
  fan_in: u32,      // weight values per output channel: Cin/groups · kh · kw
  eps: f32,
  has_bias: u32,    // 0: the conv has no bias (conv_bias is bound to any [Cout] tensor, unread)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> conv_weight: array<f32>;
@group(0) @binding(2) var<storage, read> conv_bias: array<f32>;
@group(0) @binding(3) var<storage, read> bn_weight: array<f32>;
@group(0) @binding(4) var<storage, read> bn_bias: array<f32>;
@group(0) @binding(5) var<storage, read> running_mean: array<f32>;
@group(0) @binding(6) var<storage, read> running_var: array<f32>;
@group(0) @binding(7) var<storage, read_write> weight_out: array<f32>;
@group(0) @binding(8) var<storage, read_write> bias_out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.cout * p.fan_in) { return; }
  let co = i / p.fan_in;
  let r = inverseSqrt(running_var[co] + p.eps);
  weight_out[i] = conv_weight[i] * (bn_weight[co] * r);
  if (i % p.fan_in == 0u) {
    let b = select(0.0, conv_bias[co], p.has_bias != 0u);
    bias_out[co] = (b - running_mean[co]) * r * bn_weight[co] + bn_bias[co];
  }
}
