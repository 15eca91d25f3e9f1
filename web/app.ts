// The demo page: train a preset on the built-in data with live loss / val mAP / img/s and
// pause/resume, predict on a dropped image with the model's KNN graphs overlaid, run the block
// fixtures' parity, and `/?selftest=1` (web/selftest.ts, a contract with outside scripts).
import { MODELS, BLOCK_FIXTURES, Trainer, startEngine, runFixtureParity, neighboursOf, type GraphView } from './session.js';
import { CLASSES, syntheticSet, syntheticSample, rasterize, normalize, type PageSample } from './data.js';
import { runSelftest } from './selftest.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const logEl = $<HTMLPreElement>('log');
function log(line: string): void {
  logEl.textContent += `${line}\n`;
  logEl.scrollTop = logEl.scrollHeight;
  console.log(line);
}

// ------------------------------------------------------------------ charts (plain canvas)

function drawChart(canvas: HTMLCanvasElement, series: { x: number; y: number }[], colour: string, yLabel: (v: number) => string): void {
  const ctx = canvas.getContext('2d')!;
  const { width: W, height: H } = canvas;
  ctx.clearRect(0, 0, W, H);
  const pad = { l: 46, r: 10, t: 10, b: 22 };
  ctx.strokeStyle = '#ccd';
  ctx.strokeRect(pad.l, pad.t, W - pad.l - pad.r, H - pad.t - pad.b);
  if (series.length === 0) return;
  const xs = series.map((p) => p.x);
  const ys = series.map((p) => p.y);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (y1 - y0 < 1e-9) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const px = (x: number) => pad.l + ((x - x0) / (x1 - x0)) * (W - pad.l - pad.r);
  const py = (y: number) => H - pad.b - ((y - y0) / (y1 - y0)) * (H - pad.t - pad.b);
  ctx.fillStyle = '#556';
  ctx.font = '11px system-ui';
  for (const v of [y0, (y0 + y1) / 2, y1]) ctx.fillText(yLabel(v), 2, py(v) + 4);
  ctx.fillText(String(x0), pad.l, H - 6);
  ctx.fillText(String(x1), W - pad.r - 24, H - 6);
  ctx.strokeStyle = colour;
  ctx.lineWidth = 2;
  ctx.beginPath();
  series.forEach((p, i) => (i ? ctx.lineTo(px(p.x), py(p.y)) : ctx.moveTo(px(p.x), py(p.y))));
  ctx.stroke();
  if (series.length < 30) {
    ctx.fillStyle = colour;
    for (const p of series) ctx.fillRect(px(p.x) - 2, py(p.y) - 2, 4, 4);
  }
}

// ------------------------------------------------------------------ training

let trainer: Trainer | null = null;
let paused = false;
let running = false;
let resumeWaiter: (() => void) | null = null;
const lossSeries: { x: number; y: number }[] = [];
const mapSeries: { x: number; y: number }[] = [];
let valSet: PageSample[] = [];

function setStatus(text: string): void {
  $('status').textContent = text;
}

async function train(): Promise<void> {
  const preset = $<HTMLSelectElement>('preset').value;
  const count = Number($<HTMLSelectElement>('count').value);
  const epochs = Math.max(1, Math.min(50, Number($<HTMLInputElement>('epochs').value) || 1));
  const p = MODELS[preset];
  running = true;
  $<HTMLButtonElement>('start').disabled = true;
  $<HTMLButtonElement>('pause').disabled = false;
  lossSeries.length = 0;
  mapSeries.length = 0;
  try {
    setStatus(`generating ${count} + ${count / 4} images in the page…`);
    const trainSet = await syntheticSet('train', count, p.size, (n) => setStatus(`generating train images: ${n}/${count}`));
    valSet = await syntheticSet('val', count / 4, p.size);
    const perEpoch = Math.floor(count / p.batch);
    trainer?.release();
    trainer = new Trainer(preset, perEpoch * epochs);
    log(`training ${preset} on ${count} images, batch ${p.batch}, ${epochs} epochs`);
    let seen = 0;
    let t0 = performance.now();
    let timeTrained = 0;
    for (let epoch = 0; epoch < epochs; epoch++) {
      // A fixed shuffle per epoch.
      const order = trainSet.map((_, i) => i).sort((a, b) => ((a * 7919 + epoch * 104729) % count) - ((b * 7919 + epoch * 104729) % count));
      for (let s = 0; s < perEpoch; s++) {
        if (paused) {
          timeTrained += performance.now() - t0;
          setStatus(`paused at step ${trainer.step} (epoch ${epoch + 1})`);
          await new Promise<void>((r) => (resumeWaiter = r));
          t0 = performance.now();
        }
        const batch = order.slice(s * p.batch, (s + 1) * p.batch).map((i) => trainSet[i]);
        const loss = await trainer.trainStep(batch);
        seen += batch.length;
        lossSeries.push({ x: trainer.step, y: loss });
        drawChart($('lossChart'), lossSeries, '#3b5bdb', (v) => v.toFixed(2));
        const ips = seen / ((timeTrained + performance.now() - t0) / 1000);
        setStatus(`epoch ${epoch + 1}/${epochs}  step ${trainer.step}  loss ${loss.toFixed(4)}  ${ips.toFixed(1)} img/s${mapSeries.length ? `  val mAP ${mapSeries[mapSeries.length - 1].y.toFixed(1)}` : ''}`);
      }
      timeTrained += performance.now() - t0;
      const map = await trainer.evaluate(valSet);
      t0 = performance.now();
      mapSeries.push({ x: epoch + 1, y: map * 100 });
      drawChart($('mapChart'), mapSeries, '#2b8a3e', (v) => v.toFixed(1));
      log(`epoch ${epoch + 1}: loss ${lossSeries[lossSeries.length - 1].y.toFixed(4)}, val mAP ${(map * 100).toFixed(2)}, ${(seen / (timeTrained / 1000)).toFixed(1)} img/s`);
    }
    setStatus(`done: ${trainer.step} steps, val mAP ${mapSeries[mapSeries.length - 1].y.toFixed(2)}. Predict below to see the graphs.`);
  } catch (e) {
    setStatus(`error: ${(e as Error).message}`);
    log(String((e as Error).stack ?? e));
  } finally {
    running = false;
    paused = false;
    $<HTMLButtonElement>('start').disabled = false;
    $<HTMLButtonElement>('pause').disabled = true;
    $<HTMLButtonElement>('pause').textContent = 'Pause';
  }
}

function togglePause(): void {
  if (!running) return;
  paused = !paused;
  $<HTMLButtonElement>('pause').textContent = paused ? 'Resume' : 'Pause';
  if (!paused) {
    resumeWaiter?.();
    resumeWaiter = null;
  }
}

// ------------------------------------------------------------------ prediction and graphs

let current: { rgb: Uint8ClampedArray; size: number; graphs: GraphView[]; scores: Float32Array } | null = null;
let clicked: number | null = null;

async function ensureModel(): Promise<Trainer> {
  if (!trainer) {
    log('no trained model yet: predicting with a freshly initialised gkgnet-tiny (train first for meaningful scores)');
    trainer = new Trainer('gkgnet-tiny', 1);
  }
  return trainer;
}

async function predictImage(rgb: Uint8ClampedArray): Promise<void> {
  const t = await ensureModel();
  const { scores, graphs } = await t.predictWithGraphs(normalize(rgb, t.size));
  current = { rgb, size: t.size, graphs, scores };
  clicked = null;
  const graphSel = $<HTMLSelectElement>('graph');
  graphSel.innerHTML = '';
  graphs.forEach((g, i) => {
    if (g.cross) return;
    const side = Math.round(Math.sqrt(g.queries));
    graphSel.add(new Option(`${g.path.replace(/\.graph_conv$/, '')} (${side}×${side}, k=${g.k})`, String(i)));
  });
  fillGroups();
  const labelSel = $<HTMLSelectElement>('label');
  labelSel.innerHTML = '';
  labelSel.add(new Option('—', ''));
  CLASSES.forEach((c, i) => labelSel.add(new Option(`${c} (${(scores[i] * 100).toFixed(1)}%)`, String(i))));
  const order = CLASSES.map((_, i) => i).sort((a, b) => scores[b] - scores[a]);
  $('scores').innerHTML = order.map((i) => `<li>${CLASSES[i]} ${(scores[i] * 100).toFixed(1)}%<span style="width:${Math.round(scores[i] * 120)}px"></span></li>`).join('');
  render();
}

function selectedGraph(): GraphView | null {
  const v = $<HTMLSelectElement>('graph').value;
  return current && v !== '' ? current.graphs[Number(v)] : null;
}

function fillGroups(): void {
  const g = selectedGraph();
  const sel = $<HTMLSelectElement>('group');
  sel.innerHTML = '';
  for (let i = 0; i < (g?.groups ?? 1); i++) sel.add(new Option(`group ${i + 1} of ${g?.groups ?? 1}`, String(i)));
}

function render(): void {
  const canvas = $<HTMLCanvasElement>('view');
  const ctx = canvas.getContext('2d')!;
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!current) return;
  const { rgb, size } = current;
  const img = new ImageData(size, size);
  for (let i = 0, j = 0; j < rgb.length; i += 4, j += 3) {
    img.data[i] = rgb[j];
    img.data[i + 1] = rgb[j + 1];
    img.data[i + 2] = rgb[j + 2];
    img.data[i + 3] = 255;
  }
  const tmp = document.createElement('canvas');
  tmp.width = tmp.height = size;
  tmp.getContext('2d')!.putImageData(img, 0, 0);
  ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
  const group = Number($<HTMLSelectElement>('group').value || 0);
  const cell = (index: number, count: number) => {
    const side = Math.round(Math.sqrt(count));
    const w = canvas.width / side;
    return { x: (index % side) * w, y: Math.floor(index / side) * w, w };
  };
  // A label's cross-level graph: the patches it is linked to, at every stage.
  const label = $<HTMLSelectElement>('label').value;
  if (label !== '') {
    for (const g of current.graphs.filter((x) => x.cross)) {
      for (let gr = 0; gr < g.groups; gr++) {
        for (const m of neighboursOf(g, gr, Number(label))) {
          const c = cell(m, g.sources);
          ctx.fillStyle = 'rgba(255, 170, 0, 0.28)';
          ctx.fillRect(c.x, c.y, c.w, c.w);
          ctx.strokeStyle = '#f59f00';
          ctx.strokeRect(c.x + 1, c.y + 1, c.w - 2, c.w - 2);
        }
      }
    }
  }
  const g = selectedGraph();
  if (g && clicked !== null) {
    const q = cell(clicked, g.queries);
    for (const m of neighboursOf(g, Math.min(group, g.groups - 1), clicked)) {
      const c = cell(m, g.sources);
      ctx.fillStyle = 'rgba(59, 91, 219, 0.35)';
      ctx.fillRect(c.x, c.y, c.w, c.w);
      ctx.strokeStyle = '#fff';
      ctx.beginPath();
      ctx.moveTo(q.x + q.w / 2, q.y + q.w / 2);
      ctx.lineTo(c.x + c.w / 2, c.y + c.w / 2);
      ctx.stroke();
    }
    ctx.strokeStyle = '#e03131';
    ctx.lineWidth = 3;
    ctx.strokeRect(q.x + 1, q.y + 1, q.w - 2, q.w - 2);
    ctx.lineWidth = 1;
  }
}

function onViewClick(ev: MouseEvent): void {
  const g = selectedGraph();
  if (!g) return;
  const canvas = $<HTMLCanvasElement>('view');
  const r = canvas.getBoundingClientRect();
  const side = Math.round(Math.sqrt(g.queries));
  const x = Math.floor(((ev.clientX - r.left) / r.width) * side);
  const y = Math.floor(((ev.clientY - r.top) / r.height) * side);
  clicked = Math.min(side - 1, Math.max(0, y)) * side + Math.min(side - 1, Math.max(0, x));
  render();
}

async function predictFile(file: File): Promise<void> {
  try {
    const size = trainer?.size ?? 64;
    const bitmap = await createImageBitmap(file);
    await predictImage(await rasterize(bitmap, size));
    log(`predicted ${file.name}`);
  } catch (e) {
    log(`cannot predict ${file.name}: ${(e as Error).message}`);
  }
}

let sampleIndex = 0;
async function predictSample(): Promise<void> {
  const s = await syntheticSample('val', sampleIndex++ % 300, trainer?.size ?? 64);
  await predictImage(s.rgb);
  log(`val image ${sampleIndex - 1}: true labels ${CLASSES.filter((_, i) => s.labels[i] > 0).join(', ')}`);
}

// ------------------------------------------------------------------ parity

async function parity(): Promise<void> {
  const button = $<HTMLButtonElement>('runParity');
  button.disabled = true;
  const body = $('parityTable').querySelector('tbody')!;
  body.innerHTML = '';
  for (const name of BLOCK_FIXTURES) {
    try {
      const t0 = performance.now();
      const reports = await runFixtureParity(name);
      for (const f of reports) {
        const row = body.insertRow();
        row.innerHTML = `<td>${f.file}</td><td>${f.mode}</td><td class="${f.pass ? 'pass' : 'fail'}">${f.pass ? 'pass' : 'FAIL'}</td><td>${f.worst.rel_err.toExponential(2)}</td><td>${f.worst.tol.toExponential(0)}</td><td>${f.worst.tensor}</td>`;
      }
      log(`parity ${name}: ${reports.every((f) => f.pass) ? 'pass' : 'FAIL'} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } catch (e) {
      const row = body.insertRow();
      row.innerHTML = `<td>${name}</td><td></td><td class="fail">error</td><td colspan="3">${(e as Error).message}</td>`;
    }
  }
  button.disabled = false;
}

// ------------------------------------------------------------------ start

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  if (params.get('selftest') === '1') {
    document.title = 'selftest running';
    const r = await runSelftest(log);
    (window as unknown as { webvigSelftest: unknown }).webvigSelftest = r;
    $('adapter').textContent = r.adapter ?? 'no adapter';
    setStatus(r.pass ? `selftest pass: loss ${r.firstLoss?.toFixed(4)} → ${r.lastLoss?.toFixed(4)} in ${r.steps} steps; parity worst ${r.parityWorstError?.toExponential(2)}` : `selftest fail: ${r.reason}`);
    log(JSON.stringify(r));
    document.title = r.pass ? 'selftest pass' : `selftest fail: ${r.reason}`;
    return;
  }
  for (const [key, p] of Object.entries(MODELS)) $<HTMLSelectElement>('preset').add(new Option(p.label, key));
  drawChart($('lossChart'), [], '#3b5bdb', String);
  drawChart($('mapChart'), [], '#2b8a3e', String);
  $('start').addEventListener('click', () => void train());
  $('pause').addEventListener('click', togglePause);
  $('sample').addEventListener('click', () => void predictSample());
  $('runParity').addEventListener('click', () => void parity());
  $('graph').addEventListener('change', () => {
    fillGroups();
    render();
  });
  $('group').addEventListener('change', render);
  $('label').addEventListener('change', render);
  $('view').addEventListener('click', onViewClick);
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer?.files[0];
    if (f) void predictFile(f);
  });
  $<HTMLInputElement>('file').addEventListener('change', (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) void predictFile(f);
  });
  try {
    const info = await startEngine();
    $('adapter').textContent = `${info.adapter} · ${info.limits.maxComputeInvocationsPerWorkgroup} invocations/workgroup · ${info.features.join(', ') || 'no optional features'}`;
  } catch (e) {
    $('adapter').textContent = `no WebGPU: ${(e as Error).message}`;
  }
}

void main();
