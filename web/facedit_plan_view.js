// Drawing of a FacEDiT edit plan (EditPlan.to_dict() from facedit/edits.py) on a 2D canvas context.
//
// No imports and no side effects: the frontend loads every .js under web/ as an extension, which for this
// module does nothing; facedit_plan.js imports it, and the tests run it under Node with a stub context.
//
// Geometry: one time axis in seconds for all rows. Video frame i covers [i / fps, (i + 1) / fps); source
// frames sit on the original speech's axis, target frames on the edited speech's axis (as in the plan).
//
// The panel, top to bottom: title and "source -> target frames @ fps"; the original words (edit spans
// shaded in their type's colour); the source frames; the band mapping source frames to target frames
// (copied stretches faint, edits in colour); the target frames (edit spans in colour, context margin
// yellow, copied grey) with the infill runs as a red line under them; the edited words; the time axis;
// the legend; the plan's warnings.

export const EDIT_TYPES = ['substitution', 'insertion', 'deletion', 'generation'];
export const PLAN_FORMAT = 'facedit.edit_plan';
export const PLAN_VERSION = 1;
export const MIN_WIDTH = 480;

export const COLORS = { // Okabe-Ito, as facedit/plan_preview.py
  substitution: '#E69F00',
  insertion: '#009E73',
  deletion: '#D55E00',
  generation: '#56B4E9',
  context: '#F0E442',
  infill: '#FF5A5A',
  word: '#596069',
  frame: '#474C54',
  track: 'rgba(255,255,255,0.05)',
  copied: 'rgba(255,255,255,0.08)',
  panel: '#161E28',
  border: '#3B4048',
  text: '#E8EAED',
  muted: '#9AA0A6',
  warning: '#F5B94A',
  tooltip: '#2B3038',
};

const FONT = 'Arial, Helvetica, sans-serif';
const PAD = 8;
const GUTTER = 56;
const MAX_WARNING_LINES = 6;

export class PlanError extends Error {}

// ------------------------------------------------------------------------------------------- validation

function fail(what, expected, got) {
  let shown;
  try { shown = JSON.stringify(got); } catch { shown = String(got); }
  if (shown === undefined) shown = String(got);
  if (shown.length > 60) shown = shown.slice(0, 57) + '...';
  throw new PlanError(`${what}: expected ${expected}, got ${shown}`);
}

function num(value, what, min = -Infinity) {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) fail(what, `a number >= ${min}`, value);
  return value;
}

function int(value, what, min, max = Infinity) {
  if (!Number.isInteger(value) || value < min || value > max) fail(what, `an integer in ${min}..${max}`, value);
  return value;
}

function list(value, what) {
  if (!Array.isArray(value)) fail(what, 'a list', value);
  return value;
}

function str(value, what) {
  if (typeof value !== 'string') fail(what, 'a string', value);
  return value;
}

function pair(value, what, check) {
  if (!Array.isArray(value) || value.length !== 2) fail(what, 'a pair [start, end]', value);
  const [a, b] = [check(value[0], `${what}[0]`), check(value[1], `${what}[1]`)];
  if (b < a) fail(what, 'start <= end', value);
  return [a, b];
}

function words(value, what) {
  if (value === undefined || value === null) return [];
  return list(value, what).map((rawWord, i) => {
    if (!rawWord || typeof rawWord !== 'object') fail(`${what}[${i}]`, 'an object {word, start, end}', rawWord);
    const start = num(rawWord.start, `${what}[${i}].start`, 0);
    const end = num(rawWord.end, `${what}[${i}].end`, start);
    return {
      text: str(rawWord.word, `${what}[${i}].word`),
      start, end,
      interpolated: rawWord.interpolated === true,
    };
  });
}

/** A checked copy of a plan dict, or a PlanError that names the first bad field. */
export function normalizePlan(raw) {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) fail('plan', 'an object', raw);
  if (raw.format !== PLAN_FORMAT) fail('plan.format', `'${PLAN_FORMAT}'`, raw.format);
  if (raw.version !== PLAN_VERSION) fail('plan.version', String(PLAN_VERSION), raw.version);
  const mode = raw.mode;
  if (mode !== 'edit' && mode !== 'generate') fail('plan.mode', "'edit' or 'generate'", mode);
  const fps = num(raw.fps, 'plan.fps', 0);
  if (fps === 0) fail('plan.fps', 'a number > 0', fps);
  const sourceFrames = int(raw.source_frames, 'plan.source_frames', 1);
  const targetFrames = int(raw.target_frames, 'plan.target_frames', 1);
  const sourceTime = list(raw.source_time, 'plan.source_time');
  if (sourceTime.length !== targetFrames) fail('plan.source_time', `${targetFrames} entries`, `${sourceTime.length} entries`);
  sourceTime.forEach((t, k) => num(t, `plan.source_time[${k}]`, 0));
  const infillRuns = list(raw.infill_runs, 'plan.infill_runs').map((r, i) => {
    const [a, b] = pair(r, `plan.infill_runs[${i}]`, (v, w) => int(v, w, 0, targetFrames));
    if (a === b) fail(`plan.infill_runs[${i}]`, 'a non-empty run', r);
    return [a, b];
  });
  const edits = list(raw.edits, 'plan.edits').map((rawEdit, i) => {
    const w = `plan.edits[${i}]`;
    if (!rawEdit || typeof rawEdit !== 'object') fail(w, 'an object', rawEdit);
    if (!EDIT_TYPES.includes(rawEdit.type)) fail(`${w}.type`, EDIT_TYPES.join('|'), rawEdit.type);
    const clamped = rawEdit.margin_clamped === undefined ? [0, 0] : list(rawEdit.margin_clamped, `${w}.margin_clamped`);
    return {
      type: rawEdit.type,
      originalSpanS: pair(rawEdit.original_span_s, `${w}.original_span_s`, (v, x) => num(v, x, 0)),
      editedSpanS: pair(rawEdit.edited_span_s, `${w}.edited_span_s`, (v, x) => num(v, x, 0)),
      sourceSpan: pair(rawEdit.source_span, `${w}.source_span`, (v, x) => int(v, x, 0, sourceFrames)),
      targetSpan: pair(rawEdit.target_span, `${w}.target_span`, (v, x) => int(v, x, 0, targetFrames)),
      maskSpan: pair(rawEdit.mask_span, `${w}.mask_span`, (v, x) => int(v, x, 0, targetFrames)),
      originalWords: list(rawEdit.original_words ?? [], `${w}.original_words`).map((s, j) => str(s, `${w}.original_words[${j}]`)),
      editedWords: list(rawEdit.edited_words ?? [], `${w}.edited_words`).map((s, j) => str(s, `${w}.edited_words[${j}]`)),
      marginClamped: clamped.map((v, j) => int(v, `${w}.margin_clamped[${j}]`, 0)),
    };
  });
  return {
    mode, fps, sourceFrames, targetFrames, sourceTime, infillRuns, edits,
    contextFrames: int(raw.context_frames, 'plan.context_frames', 0),
    originalDurationS: num(raw.original_duration_s, 'plan.original_duration_s', 0),
    editedDurationS: num(raw.edited_duration_s, 'plan.edited_duration_s', 0),
    originalWords: words(raw.original_words, 'plan.original_words'),
    editedWords: words(raw.edited_words, 'plan.edited_words'),
    warnings: list(raw.warnings ?? [], 'plan.warnings').map((s, i) => str(s, `plan.warnings[${i}]`)),
  };
}

// ------------------------------------------------------------------------------------------- frame classes

/** Per target frame: the index of the edit whose target span holds it, -1 inside the margin, -2 copied. */
export function targetFrameClasses(plan) {
  const cls = new Int32Array(plan.targetFrames).fill(-2);
  for (const [a, b] of plan.infillRuns) cls.fill(-1, a, b);
  plan.edits.forEach((e, i) => cls.fill(i, e.targetSpan[0], e.targetSpan[1]));
  return cls;
}

function runsOf(values) {
  const runs = [];
  for (let k = 0; k < values.length; k++) {
    if (runs.length && runs[runs.length - 1].value === values[k]) runs[runs.length - 1].end = k + 1;
    else runs.push({ value: values[k], start: k, end: k + 1 });
  }
  return runs;
}

export function planSummary(plan) {
  const infill = plan.infillRuns.reduce((s, [a, b]) => s + b - a, 0);
  const counts = {};
  for (const e of plan.edits) counts[e.type] = (counts[e.type] || 0) + 1;
  const kinds = Object.entries(counts).map(([t, n]) => (n > 1 ? `${n} ${t}s` : t)).join(', ');
  const frames = `${plan.sourceFrames} → ${plan.targetFrames} frames @ ${fmtNum(plan.fps)} fps`;
  let detail;
  if (plan.mode === 'generate') {
    detail = `prompt ${plan.sourceFrames} frame${plan.sourceFrames === 1 ? '' : 's'} · speech ` +
      `${fmtS(plan.editedDurationS)} · ${infill} frames generated`;
  } else {
    detail = `${fmtS(plan.originalDurationS)} → ${fmtS(plan.editedDurationS)} · ${plan.edits.length} ` +
      `edit${plan.edits.length === 1 ? '' : 's'}${kinds ? ` (${kinds})` : ''} · infill ${infill} frames, ` +
      `context ±${plan.contextFrames}`;
  }
  return { title: plan.mode === 'generate' ? 'Generation plan' : 'Edit plan', frames, detail, infill };
}

function fmtNum(x) { return Number.isInteger(x) ? String(x) : String(Math.round(x * 1000) / 1000); }
function fmtS(x) { return `${x.toFixed(2)} s`; }
function fmtT(x) { return x.toFixed(3); }

// ------------------------------------------------------------------------------------------- layout

/** Text width without a context (used for sizing before the first draw). */
export function approxMeasure(text, font) {
  const px = Number((/(\d+)px/.exec(font) || [0, 11])[1]);
  return text.length * px * (/bold/.test(font) ? 0.6 : 0.55);
}

function fit(text, width, font, measure) {
  if (measure(text, font) <= width) return text;
  let lo = 0, hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (measure(text.slice(0, mid) + '…', font) <= width) lo = mid; else hi = mid - 1;
  }
  return lo ? text.slice(0, lo) + '…' : '';
}

function wrap(text, width, font, measure) {
  const lines = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    const next = line ? `${line} ${word}` : word;
    if (line && measure(next, font) > width) { lines.push(line); line = word; } else line = next;
  }
  if (line) lines.push(line);
  return lines.map(l => fit(l, width, font, measure));
}

const F = {
  title: `bold 12px ${FONT}`, frames: `bold 12px ${FONT}`, detail: `11px ${FONT}`, label: `10px ${FONT}`,
  word: `10px ${FONT}`, small: `9px ${FONT}`, tooltip: `11px ${FONT}`, tooltipBold: `bold 11px ${FONT}`,
};

function niceStep(tMax, laneW) {
  for (const s of [0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600]) if (laneW * s / tMax >= 46) return s;
  return 1200;
}

/** Positions of everything in panel coordinates (origin at the panel's top left) for a panel `width` wide. */
export function layoutPlan(plan, width, measure = approxMeasure) {
  const W = Math.max(width, 200);
  const x0 = PAD + GUTTER, x1 = W - PAD - 6;
  const laneW = Math.max(x1 - x0, 40);
  const tMax = Math.max(plan.originalDurationS, plan.editedDurationS, plan.sourceFrames / plan.fps,
    plan.targetFrames / plan.fps, 1e-3);
  const sx = t => x0 + (t / tMax) * laneW;
  const summary = planSummary(plan);
  let y = PAD;
  const header = { y, h: 31 };
  y += header.h + 4;
  const origLane = { y, h: 18 };
  y += origLane.h + 3;
  const srcStrip = { y, h: 7 };
  y += srcStrip.h;
  const band = { y, h: 26 };
  y += band.h;
  const tgtStrip = { y, h: 9 };
  const infillLine = { y: y + tgtStrip.h + 1, h: 2 };
  y += tgtStrip.h + 5;
  const editLane = { y, h: 18 };
  y += editLane.h + 2;
  const axis = { y, h: 14, step: niceStep(tMax, laneW) };
  y += axis.h + 4;

  const legendItems = [];
  const present = new Set(plan.edits.map(e => e.type));
  for (const t of EDIT_TYPES) if (present.has(t)) legendItems.push({ kind: 'swatch', color: COLORS[t], text: t });
  const cls = targetFrameClasses(plan);
  const srcEdit = new Int32Array(plan.sourceFrames).fill(-1);
  plan.edits.forEach((e, i) => srcEdit.fill(i, e.sourceSpan[0], e.sourceSpan[1]));
  const srcRuns = runsOf(Array.from(srcEdit, i => (i >= 0 ? COLORS[plan.edits[i].type] : COLORS.frame)));
  const tgtRuns = runsOf(Array.from(cls, c => (c >= 0 ? COLORS[plan.edits[c].type] : c === -1 ? COLORS.context : COLORS.frame)));
  const copiedRuns = runsOf(Array.from(cls, c => c === -2)).filter(r => r.value);
  if (cls.some(c => c === -1)) legendItems.push({ kind: 'swatch', color: COLORS.context, text: 'context margin' });
  legendItems.push({ kind: 'swatch', color: COLORS.frame, text: 'copied' });
  if (plan.infillRuns.length) legendItems.push({ kind: 'line', color: COLORS.infill, text: 'infill (generated)' });
  let lx = PAD, ly = y;
  for (const item of legendItems) {
    const w = 14 + measure(item.text, F.label) + 12;
    if (lx + w > W - PAD && lx > PAD) { lx = PAD; ly += 14; }
    Object.assign(item, { x: lx, y: ly, w });
    lx += w;
  }
  y = ly + 16;

  let warningLines = [];
  for (const text of plan.warnings) warningLines.push(...wrap(`⚠ ${text}`, W - 2 * PAD, F.detail, measure));
  if (warningLines.length > MAX_WARNING_LINES) {
    const more = warningLines.length - (MAX_WARNING_LINES - 1);
    warningLines = [...warningLines.slice(0, MAX_WARNING_LINES - 1), `… ${more} more line(s): see the node's output`];
  }
  const warnings = { y, lines: warningLines, lineH: 14 };
  y += warningLines.length * warnings.lineH + (warningLines.length ? 2 : 0);

  return {
    plan, width: W, height: Math.ceil(y + PAD - 4), x0, x1: x0 + laneW, laneW, tMax, sx, summary, cls, srcRuns, tgtRuns,
    copiedRuns,
    header, origLane, srcStrip, band, tgtStrip, infillLine, editLane, axis, legendItems, warnings,
  };
}

/** Height of the error panel for `message`. */
export function errorLayout(message, width, measure = approxMeasure) {
  const lines = wrap(`⚠ FacEDiT plan not drawn: ${message}`, Math.max(width, 200) - 2 * PAD - 4, F.detail, measure);
  return { error: true, width: Math.max(width, 200), lines, height: PAD * 2 + lines.length * 14 };
}

// ------------------------------------------------------------------------------------------- hit testing

function wordLines(word, lane, edits, spanKey) {
  const e = edits.find(ed => { const m = (word.start + word.end) / 2; return m >= ed[spanKey][0] && m <= ed[spanKey][1]; });
  const lines = [`"${word.text}"  ${fmtT(word.start)}–${fmtT(word.end)} s (${lane})`];
  if (e) lines.push(`part of a ${e.type}`);
  if (word.interpolated) lines.push('time interpolated from its neighbours');
  return lines;
}

function editLines(e, plan) {
  const q = ws => (ws.length ? `"${ws.join(' ')}"` : '∅');
  const dur = ([a, b]) => `${(b - a).toFixed(2)} s`;
  const lines = [e.originalWords.length || e.editedWords.length
    ? `${e.type}: ${q(e.originalWords)} → ${q(e.editedWords)}`
    : `${e.type}: ${dur(e.originalSpanS)} → ${dur(e.editedSpanS)} of speech`];
  lines.push(`${fmtT(e.originalSpanS[0])}–${fmtT(e.originalSpanS[1])} s → ${fmtT(e.editedSpanS[0])}–${fmtT(e.editedSpanS[1])} s`);
  lines.push(`source frames [${e.sourceSpan[0]}, ${e.sourceSpan[1]}) → target frames [${e.targetSpan[0]}, ${e.targetSpan[1]})`);
  lines.push(`generated (with ±${plan.contextFrames} context): [${e.maskSpan[0]}, ${e.maskSpan[1]})`);
  if (e.marginClamped[0] || e.marginClamped[1]) lines.push(`context cut by the clip ends: ${e.marginClamped.join(' / ')} frames`);
  return lines;
}

function inRow(py, row, slack = 0) { return py >= row.y - slack && py < row.y + row.h + slack; }

/** What is under panel point (px, py): {lines: [...], box?: {x, y, w, h}} or null. */
export function hitTest(L, px, py) {
  if (!L || L.error) return null;
  const { plan, sx } = L;
  if (px < L.x0 - 2 || px > L.x1 + 2) return null;
  const t = ((px - L.x0) / L.laneW) * L.tMax;
  if (inRow(py, L.tgtStrip, 2) || inRow(py, L.infillLine, 1)) {
    const k = Math.floor(t * plan.fps);
    if (k < 0 || k >= plan.targetFrames) return null;
    const c = L.cls[k];
    const what = c >= 0 ? `generated (${plan.edits[c].type})` : c === -1 ? 'generated (context margin)' : 'copied from the source';
    const box = { x: sx(k / plan.fps), y: L.tgtStrip.y, w: sx((k + 1) / plan.fps) - sx(k / plan.fps), h: L.tgtStrip.h };
    return { box, lines: [`target frame ${k} (${fmtT(k / plan.fps)} s)`, `from source frame ${fmtNum(plan.sourceTime[k])}`, what] };
  }
  if (inRow(py, L.srcStrip, 2)) {
    const i = Math.floor(t * plan.fps);
    if (i < 0 || i >= plan.sourceFrames) return null;
    const e = plan.edits.find(ed => i >= ed.sourceSpan[0] && i < ed.sourceSpan[1]);
    const box = { x: sx(i / plan.fps), y: L.srcStrip.y, w: sx((i + 1) / plan.fps) - sx(i / plan.fps), h: L.srcStrip.h };
    return { box, lines: [`source frame ${i} (${fmtT(i / plan.fps)} s)`, e ? `replaced by the ${e.type}` : 'kept (may shift in time)'] };
  }
  for (const [row, ws, lane, key] of [[L.origLane, plan.originalWords, plan.mode === 'generate' ? 'prompt' : 'original', 'originalSpanS'],
    [L.editLane, plan.editedWords, plan.mode === 'generate' ? 'speech' : 'edited', 'editedSpanS']]) {
    if (!inRow(py, row)) continue;
    const w = ws.find(wd => px >= sx(wd.start) - 1 && px <= sx(wd.end) + 1);
    if (w) {
      const box = { x: sx(w.start), y: row.y + 2, w: Math.max(sx(w.end) - sx(w.start), 1.5), h: row.h - 4 };
      return { box, lines: wordLines(w, lane, plan.edits, key) };
    }
    const e = plan.edits.find(ed => px >= sx(ed[key][0]) - 2 && px <= sx(ed[key][1]) + 2);
    if (e) return { lines: editLines(e, plan) };
    return null;
  }
  if (inRow(py, L.band)) {
    const f = (py - L.band.y) / L.band.h;
    for (const e of plan.edits) {
      const a = sx(e.sourceSpan[0] / plan.fps) * (1 - f) + sx(e.targetSpan[0] / plan.fps) * f;
      const b = sx(e.sourceSpan[1] / plan.fps) * (1 - f) + sx(e.targetSpan[1] / plan.fps) * f;
      if (px >= a - 3 && px <= b + 3) return { lines: editLines(e, plan) };
    }
  }
  return null;
}

// ------------------------------------------------------------------------------------------- drawing

function roundRect(ctx, x, y, w, h, r) {
  ctx.beginPath();
  if (ctx.roundRect) ctx.roundRect(x, y, w, h, Math.min(r, w / 2, h / 2));
  else ctx.rect(x, y, w, h);
}

function text(ctx, s, x, y, font, color, align = 'left') {
  ctx.font = font;
  ctx.fillStyle = color;
  ctx.textAlign = align;
  ctx.textBaseline = 'middle';
  ctx.fillText(s, x, y);
}

function alpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
}

function drawWordLane(ctx, L, row, ws, spanKey, durationS, label, measure, lowQuality) {
  const { plan, sx } = L;
  text(ctx, label, PAD + GUTTER - 6, row.y + row.h / 2, F.label, COLORS.muted, 'right');
  ctx.fillStyle = COLORS.track;
  ctx.fillRect(sx(0), row.y, sx(durationS) - sx(0), row.h);
  for (const e of plan.edits) {
    const [a, b] = e[spanKey];
    ctx.fillStyle = alpha(COLORS[e.type], 0.28);
    ctx.fillRect(sx(a), row.y - 1, Math.max(sx(b) - sx(a), 2), row.h + 2);
  }
  for (const w of ws) {
    const m = (w.start + w.end) / 2;
    const e = plan.edits.find(ed => m >= ed[spanKey][0] && m <= ed[spanKey][1]);
    const x = sx(w.start), wpx = Math.max(sx(w.end) - x, 1.5);
    roundRect(ctx, x, row.y + 2, wpx, row.h - 4, 3);
    ctx.fillStyle = e ? COLORS[e.type] : COLORS.word;
    ctx.fill();
    if (w.interpolated) {
      ctx.setLineDash([3, 2]);
      ctx.strokeStyle = COLORS.text;
      ctx.lineWidth = 1;
      ctx.stroke();
      ctx.setLineDash([]);
    }
    if (!lowQuality && wpx > 12) {
      const s = fit(w.text, wpx - 4, F.word, measure);
      if (s) text(ctx, s, x + wpx / 2, row.y + row.h / 2 + 0.5, F.word, e ? '#111' : COLORS.text, 'center');
    }
  }
  if (!ws.length && !lowQuality) {
    const note = plan.mode === 'generate' && spanKey === 'originalSpanS' ? 'prompt motion' : 'no word timestamps';
    text(ctx, note, sx(durationS) + 4 < L.x1 - 60 ? sx(durationS) + 4 : sx(0) + 4, row.y + row.h / 2,
      F.small, COLORS.muted);
  }
}

function drawFrames(ctx, L, row, runs, count, label) {
  const { plan, sx } = L;
  text(ctx, label, PAD + GUTTER - 6, row.y + row.h / 2, F.small, COLORS.muted, 'right');
  for (const r of runs) {
    ctx.fillStyle = r.value;
    ctx.fillRect(sx(r.start / plan.fps), row.y, sx(r.end / plan.fps) - sx(r.start / plan.fps), row.h);
  }
  const cell = L.laneW / L.tMax / plan.fps;
  if (cell >= 4) { // frame separators when the cells are wide enough to see
    ctx.fillStyle = COLORS.panel;
    for (let k = 1; k < count; k++) ctx.fillRect(sx(k / plan.fps) - 0.5, row.y, 1, row.h);
  }
}

/** Draw layout `L` with its top left corner at (x, y); returns the tooltip lines drawn, or null.
 *  Options: hover {x, y} in panel coordinates, stale (dimmed), measure(text, font), lowQuality (no text). */
export function drawPlan(ctx, L, x, y, { hover = null, stale = false, measure = null, lowQuality = false } = {}) {
  const m = measure || ((s, font) => { ctx.font = font; return ctx.measureText(s).width; });
  ctx.save();
  try {
    return drawPanel(ctx, L, x, y, hover, stale, m, lowQuality);
  } finally {
    ctx.restore(); // also when drawing threw: the canvas state stays balanced
  }
}

function drawPanel(ctx, L, x, y, hover, stale, m, lowQuality) {
  ctx.translate(x, y);
  roundRect(ctx, 0, 0, L.width, L.height, 6);
  ctx.fillStyle = COLORS.panel;
  ctx.fill();
  ctx.strokeStyle = COLORS.border;
  ctx.lineWidth = 1;
  ctx.stroke();
  if (L.error) {
    ctx.fillStyle = COLORS.warning;
    ctx.fillRect(1, 4, 3, L.height - 8);
    L.lines.forEach((line, i) => text(ctx, line, PAD + 4, PAD + 7 + i * 14, F.detail, COLORS.warning));
    return null;
  }
  if (stale) ctx.globalAlpha = 0.4;
  const { plan, sx, summary } = L;
  const hy = L.header.y;
  const framesW = m(summary.frames, F.frames);
  text(ctx, summary.frames, L.width - PAD, hy + 7, F.frames, COLORS.text, 'right');
  const title = stale ? `${summary.title} (previous run)` : summary.title;
  text(ctx, fit(title, L.width - 3 * PAD - framesW, F.title, m), PAD, hy + 7, F.title, COLORS.text);
  text(ctx, fit(summary.detail, L.width - 2 * PAD, F.detail, m), PAD, hy + 23, F.detail, COLORS.muted);

  const gen = plan.mode === 'generate';
  drawWordLane(ctx, L, L.origLane, plan.originalWords, 'originalSpanS', plan.originalDurationS,
    gen ? 'prompt' : 'original', m, lowQuality);
  drawWordLane(ctx, L, L.editLane, plan.editedWords, 'editedSpanS', plan.editedDurationS,
    gen ? 'speech' : 'edited', m, lowQuality);

  // Mapping band: copied stretches faint, edits in their colour, source frames above -> target frames below.
  const by0 = L.band.y, by1 = L.band.y + L.band.h;
  const quad = (a0, a1, b0, b1, fill) => {
    ctx.beginPath();
    ctx.moveTo(sx(a0), by0); ctx.lineTo(sx(a1), by0); ctx.lineTo(sx(b1), by1); ctx.lineTo(sx(b0), by1);
    ctx.closePath();
    ctx.fillStyle = fill;
    ctx.fill();
  };
  for (const r of L.copiedRuns) {
    const s0 = plan.sourceTime[r.start], s1 = plan.sourceTime[r.end - 1] + 1;
    quad(s0 / plan.fps, s1 / plan.fps, r.start / plan.fps, r.end / plan.fps, COLORS.copied);
  }
  for (const e of plan.edits) {
    quad(e.sourceSpan[0] / plan.fps, e.sourceSpan[1] / plan.fps, e.targetSpan[0] / plan.fps,
      e.targetSpan[1] / plan.fps, alpha(COLORS[e.type], 0.45));
  }

  drawFrames(ctx, L, L.srcStrip, L.srcRuns, plan.sourceFrames, `${plan.sourceFrames} fr`);
  drawFrames(ctx, L, L.tgtStrip, L.tgtRuns, plan.targetFrames, `${plan.targetFrames} fr`);
  ctx.fillStyle = COLORS.infill;
  for (const [a, b] of plan.infillRuns) {
    ctx.fillRect(sx(a / plan.fps), L.infillLine.y, sx(b / plan.fps) - sx(a / plan.fps), L.infillLine.h);
  }

  // Time axis in seconds.
  const ay = L.axis.y;
  ctx.fillStyle = COLORS.border;
  ctx.fillRect(L.x0, ay, L.laneW, 1);
  for (let t = 0; t <= L.tMax + 1e-9; t += L.axis.step) {
    ctx.fillStyle = COLORS.border;
    ctx.fillRect(sx(t) - 0.5, ay, 1, 4);
    if (!lowQuality) text(ctx, `${fmtNum(Math.round(t * 100) / 100)}s`, sx(t), ay + 10, F.small, COLORS.muted, 'center');
  }

  for (const item of L.legendItems) {
    ctx.fillStyle = item.color;
    if (item.kind === 'line') ctx.fillRect(item.x, item.y + 5, 10, 2);
    else ctx.fillRect(item.x, item.y + 1, 10, 10);
    if (!lowQuality) text(ctx, item.text, item.x + 14, item.y + 6, F.label, COLORS.muted);
  }
  L.warnings.lines.forEach((line, i) =>
    text(ctx, line, PAD, L.warnings.y + 6 + i * L.warnings.lineH, F.detail, COLORS.warning));
  ctx.globalAlpha = 1;

  let tooltip = null;
  if (hover) {
    const hit = hitTest(L, hover.x, hover.y);
    if (hit) {
      if (hit.box) {
        ctx.strokeStyle = '#FFFFFF';
        ctx.lineWidth = 1.5;
        ctx.strokeRect(hit.box.x - 1, hit.box.y - 1, hit.box.w + 2, hit.box.h + 2);
      }
      drawTooltip(ctx, L, hover, hit.lines, m);
      tooltip = hit.lines;
    }
  }
  return tooltip;
}

function drawTooltip(ctx, L, hover, lines, measure) {
  const w = Math.min(Math.max(...lines.map((s, i) => measure(s, i ? F.tooltip : F.tooltipBold))) + 12, L.width - 4);
  const h = lines.length * 14 + 8;
  let tx = hover.x + 12, ty = hover.y + 14;
  if (tx + w > L.width - 2) tx = Math.max(2, hover.x - w - 8);
  if (ty + h > L.height - 2) ty = Math.max(2, hover.y - h - 8);
  roundRect(ctx, tx, ty, w, h, 4);
  ctx.fillStyle = COLORS.tooltip;
  ctx.fill();
  ctx.strokeStyle = COLORS.muted;
  ctx.lineWidth = 1;
  ctx.stroke();
  lines.forEach((s, i) => text(ctx, fit(s, w - 12, i ? F.tooltip : F.tooltipBold, measure), tx + 6, ty + 11 + i * 14,
    i ? F.tooltip : F.tooltipBold, COLORS.text));
}
