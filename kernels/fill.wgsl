// Fill a buffer with one 32-bit pattern (zeros, ones, any f32/i32 constant, an f16 one twice):
// `main` one word per invocation; `main4` for sizes that are whole vec4s, PER vec4s per invocation
// (consecutive invocations take consecutive vec4s in each round), since a CPU adapter stores lane by
// lane and a vec4 store amortises that loop over 4 values (bench/RESULTS.md).

struct Params {
  n: u32,       // words (main) or vec4s (main4)
  value: u32,
}

override PER: u32 = 1u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read_write> out4: array<vec4u>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < p.n) { out[i] = p.value; }
}

@compute @workgroup_size(64)
fn main4(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lane: u32) {
  let first = (wg.x + wg.y * nwg.x) * 64u * PER + lane;
  for (var k = 0u; k < PER; k++) {
    let i = first + k * 64u;
    if (i >= p.n) { return; }
    out4[i] = vec4u(p.value);
  }
}
