// dst[slot·n + i] = src[i]: store a small tensor into slot `slot` of a ring buffer, the slot read
// from a GPU buffer so that a recorded training step (engine/replay.ts) can replay it unchanged.

struct Params {
  n: u32,
  slots: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read> slot: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  let s = slot[0];
  if (i < p.n && s < p.slots) { dst[s * p.n + i] = src[i]; }
}
