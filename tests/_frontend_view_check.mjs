// Runs web/facedit_plan_view.js under Node for tests/test_frontend.py: reads {plans, malformed} JSON on
// stdin, prints what the module made of each (normalised fields, frame classes, drawn text and colours,
// hit tests at every word and frame, save/restore balance) as JSON on stdout.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const V = await import(path.join(here, '..', 'web', 'facedit_plan_view.js'));
const input = JSON.parse(readFileSync(0, 'utf8'));

// A 2D context that records calls; measureText is 6 px per character.
function recorder({ throwOn = null } = {}) {
  const calls = [];
  let depth = 0;
  const state = {};
  const ctx = new Proxy(state, {
    get(t, k) {
      if (k === 'measureText') return s => ({ width: s.length * 6 });
      if (k === 'save') return () => { depth++; };
      if (k === 'restore') return () => { depth--; };
      if (k === '__calls') return calls;
      if (k === '__depth') return depth;
      if (k in t) return t[k];
      return (...args) => {
        if (k === throwOn) throw new Error(`stub context: ${k} failed`);
        calls.push({ op: k, args, fillStyle: t.fillStyle, font: t.font });
      };
    },
    set(t, k, v) { t[k] = v; return true; },
  });
  return ctx;
}

const out = { plans: {}, malformed: [] };
for (const [name, raw] of Object.entries(input.plans)) {
  const p = V.normalizePlan(raw);
  const L = V.layoutPlan(p, 560, (s, f) => s.length * 6);
  const ctx = recorder();
  const tooltip = V.drawPlan(ctx, L, 10, 20, {
    hover: { x: L.sx(p.targetFrames / 2 / p.fps), y: L.tgtStrip.y + L.tgtStrip.h / 2 },
  });
  const calls = ctx.__calls;
  const mid = w => (w.start + w.end) / 2;
  out.plans[name] = {
    normalized: {
      mode: p.mode, fps: p.fps, sourceFrames: p.sourceFrames, targetFrames: p.targetFrames,
      edits: p.edits.map(e => ({ type: e.type, sourceSpan: e.sourceSpan, targetSpan: e.targetSpan, maskSpan: e.maskSpan })),
      originalWords: p.originalWords.map(w => w.text), editedWords: p.editedWords.map(w => w.text),
      warnings: p.warnings, summary: V.planSummary(p),
    },
    classes: Array.from(V.targetFrameClasses(p)),
    height: L.height,
    balanced: ctx.__depth === 0,
    texts: calls.filter(c => c.op === 'fillText').map(c => c.args[0]),
    fills: [...new Set(calls.filter(c => c.op === 'fillRect' || c.op === 'fill').map(c => c.fillStyle))],
    tooltip,
    // words whose box fits their whole label (box width - 4 px padding >= 6 px per character)
    labelled: p.originalWords.concat(p.editedWords).filter(w => L.sx(w.end) - L.sx(w.start) - 4 >= 6 * w.text.length)
      .map(w => w.text),
    wordHits: {
      original: p.originalWords.map(w => V.hitTest(L, L.sx(mid(w)), L.origLane.y + L.origLane.h / 2)?.lines[0] ?? null),
      edited: p.editedWords.map(w => V.hitTest(L, L.sx(mid(w)), L.editLane.y + L.editLane.h / 2)?.lines[0] ?? null),
    },
    frameHits: Array.from({ length: p.targetFrames }, (_, k) =>
      V.hitTest(L, L.sx((k + 0.5) / p.fps), L.tgtStrip.y + L.tgtStrip.h / 2)?.lines ?? null),
    sourceHits: Array.from({ length: p.sourceFrames }, (_, i) =>
      V.hitTest(L, L.sx((i + 0.5) / p.fps), L.srcStrip.y + L.srcStrip.h / 2)?.lines[0] ?? null),
    outside: V.hitTest(L, 2, 2),
  };
  // A context that throws halfway: the exception escapes, the save/restore stack stays balanced.
  const bad = recorder({ throwOn: 'fillText' });
  let threw = false;
  try { V.drawPlan(bad, L, 0, 0); } catch { threw = true; }
  out.plans[name].throwingContext = { threw, balanced: bad.__depth === 0 };
}
for (const raw of input.malformed) {
  try {
    V.normalizePlan(raw);
    out.malformed.push({ ok: true });
  } catch (e) {
    out.malformed.push({ ok: false, planError: e instanceof V.PlanError, message: e.message });
  }
}
const err = V.errorLayout('plan.fps: expected a number >= 0, got "x"', 400, (s) => s.length * 6);
const ectx = recorder();
V.drawPlan(ectx, err, 0, 0);
out.errorPanel = { height: err.height, texts: ectx.__calls.filter(c => c.op === 'fillText').map(c => c.args[0]), balanced: ectx.__depth === 0 };
console.log(JSON.stringify(out));
