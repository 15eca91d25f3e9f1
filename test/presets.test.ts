import { describe, it, expect } from 'vitest';
import { PRESETS, presetFor, autoEpochs } from '../train/presets.js';

describe('presets', () => {
  const tiny = PRESETS.tiny;

  it('tiny: the built-in set gets drop path, other data not; region models keep their own recipe everywhere', () => {
    expect(presetFor(tiny, false, false).dropPath).toBe(0);
    expect(presetFor(tiny, false, true).dropPath).toBe(0.1);
    expect(presetFor(tiny, false, true).weightDecay).toBe(0.2);
    for (const builtIn of [false, true]) {
      const r = presetFor(tiny, true, builtIn);
      expect([r.size, r.augment, r.weightDecay, r.dropPath]).toEqual([96, 'flip', 0.05, 0]);
    }
    // Resolved: no override sets left for config.json; the official recipe has none.
    expect(Object.keys(presetFor(tiny, false, true)).filter((k) => k === 'builtIn' || k === 'region')).toEqual([]);
    expect(presetFor(PRESETS['gkgnet-s-576'], false, true)).toEqual(PRESETS['gkgnet-s-576']);
  });

  it('tiny epochs: about 36 000 images seen, 4 to 30; 25 on the built-in set', () => {
    expect([presetFor(tiny, false, true).epochs, presetFor(tiny, false, false).epochs]).toEqual([25, 'auto']);
    expect([autoEpochs(1500), autoEpochs(1200), autoEpochs(100), autoEpochs(50_000)]).toEqual([24, 30, 30, 4]);
  });
});
