// Dynamic loss scaling (torch.amp.GradScaler's algorithm) inside the fused AdamW step, as torch's
// fused optimizers take grad_scale and found_inf: the scale, the growth tracker, the found-inf flag
// and the per-parameter step counts stay on the GPU, so a recorded step (engine/replay.ts) replays
// every decision. The found-inf flag is adamw.wgsl's non-finite flag of the unscaled gradients' norm.
//   unscale: gradients × 1/scale over a flat gradient bucket, before the norm (clipping and the flag
//            see unscaled gradients, as after scaler.unscale_);
//   gate:    per slot: count the step unless inf/NaN was found, and turn the host's (active,
//            1 − lr·wd, lr) into adamw.wgsl's (active and finite, 1 − lr·wd, lr / (1 − β1^t),
//            sqrt(1 − β2^t)), t the slot's own count (torch's capturable/fused bias corrections);
//   update:  the scale and the growth tracker (torch's _amp_update_scale_).

const WG: u32 = 256u;

struct Params {
  n: u32,               // unscale: elements in the bucket; gate: slots
  growth_interval: u32,
  beta1: f32,
  beta2: f32,
  growth_factor: f32,
  backoff_factor: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
// (scale, growth tracker: successive finite steps since the scale last changed, a whole number)
@group(0) @binding(1) var<storage, read_write> scaler: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;
// adamw.wgsl's (norm, clip scale, non-finite flag) of this step
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> hyper: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> steps: array<f32>;

@compute @workgroup_size(WG)
fn unscale(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  grad[i] = grad[i] * (1.0 / scaler[0]);
}

@compute @workgroup_size(64)
fn gate(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= p.n) { return; }
  let h = hyper[i];
  let take = h.x != 0.0 && stats[2] == 0.0;
  if (take) { steps[i] += 1.0; }
  let t = steps[i];
  hyper[i] = vec4f(select(0.0, 1.0, take), h.y, h.z / (1.0 - pow(p.beta1, t)), sqrt(1.0 - pow(p.beta2, t)));
}

@compute @workgroup_size(1)
fn update() {
  if (stats[2] != 0.0) {
    scaler[0] = scaler[0] * p.backoff_factor;
    scaler[1] = 0.0;
    return;
  }
  let successful = scaler[1] + 1.0;
  if (successful >= f32(p.growth_interval)) {
    let grown = scaler[0] * p.growth_factor;
    // Exponent bits all ones: a scale that would overflow keeps its value.
    if ((bitcast<u32>(grown) & 0x7f800000u) != 0x7f800000u) { scaler[0] = grown; }
    scaler[1] = 0.0;
  } else {
    scaler[1] = successful;
  }
}
