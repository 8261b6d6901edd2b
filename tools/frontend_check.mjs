#!/usr/bin/env node
// Browser check of web/facedit_plan.js against a running ComfyUI whose FacEDiT plan nodes send plans
// (the real pack, or the probe pack of tests/_frontend_helpers.py).
//
// usage: node tools/frontend_check.mjs --url http://127.0.0.1:8188/ [--out-dir DIR] [--doc-shot FILE.png]
//          [--timeout-ms 120000] [--chromium /usr/bin/chromium] [--playwright PATH/TO/playwright-core]
//          [--cases multi,spans,portrait,malformed] [--keep-cache] [--vue] [--prompt API_PROMPT.json]
//
// --prompt runs an API-format prompt holding real plan nodes (with the real pack installed) instead of the
// probe's cases.
//
// --vue runs everything with ComfyUI's Vue nodes (setting Comfy.VueNodes.Enabled, restored afterwards),
// where the plan is drawn on a <canvas> of its own in a DOM widget.
//
// Before the first run it POSTs /free {free_memory: true}, which empties the server's caches (and unloads
// models): against a server you use for work, pass --keep-cache and change an input of every plan node.
//
// It loads a graph of plan nodes, each feeding a PreviewImage, and checks in headless Chromium:
//   the extension registers; nothing is drawn before a run; after queueing, each node holds exactly the
//   plan of its `executed` message and its panel is on the canvas (pixels of the panel colour and of the
//   edit colours inside the node); a malformed plan gives a console warning and an error line, not a broken
//   canvas; hovering a word shows its tooltip; a re-run with other inputs replaces the plan; a saved
//   workflow holds no plan and reloading it draws nothing; outputs restored by the frontend are drawn.
// Prints a JSON report {ok, checks: [{name, ok, detail}], ...}; exit 0 all passed, 2 a check failed,
// 1 the script itself failed. The probe's cases: FacEDiTEditPlan sample|multi|malformed,
// FacEDiTManualEditPlan spans, FacEDiTGenerationPlan portrait.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

function parseArgs(argv) {
  const a = { url: 'http://127.0.0.1:8188/', outDir: null, docShot: null, timeoutMs: 120000,
    chromium: '/usr/bin/chromium', playwright: process.env.FACEDIT_PLAYWRIGHT || null,
    cases: 'multi,spans,portrait,malformed' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i], v = argv[i + 1];
    const key = { '--url': 'url', '--out-dir': 'outDir', '--doc-shot': 'docShot', '--timeout-ms': 'timeoutMs',
      '--chromium': 'chromium', '--playwright': 'playwright', '--cases': 'cases', '--keep-cache': 'keepCache', '--vue': 'vue', '--prompt': 'prompt' }[k];
    if (!key) { console.error(`unknown argument ${k}`); process.exit(1); }
    if (key === 'keepCache' || key === 'vue') { a[key] = true; continue; }
    a[key] = key === 'timeoutMs' ? Number(v) : v;
    i++;
  }
  return a;
}

function loadPlaywright(hint) {
  const tries = [hint, 'playwright-core', '/work/comfy/tools/node_modules/playwright-core'].filter(Boolean);
  for (const t of tries) {
    try { return require(t); } catch { /* next */ }
  }
  throw new Error(`playwright-core not found (tried ${tries.join(', ')}); set FACEDIT_PLAYWRIGHT`);
}

const PLAN_TYPES = ['FacEDiTEditPlan', 'FacEDiTManualEditPlan', 'FacEDiTGenerationPlan'];
const CASE_NODE = { sample: 'FacEDiTEditPlan', multi: 'FacEDiTEditPlan', malformed: 'FacEDiTEditPlan',
  spans: 'FacEDiTManualEditPlan', portrait: 'FacEDiTGenerationPlan' };
const BENIGN = [/\/user\.css/, /\/api\/userdata/, /api\.comfy\.org/, /^Failed to load resource/, /comfy\.templates\.json/];

const a = parseArgs(process.argv.slice(2));
const report = { ok: false, url: a.url, checks: [], consoleWarnings: [], consoleErrors: [], pageErrors: [], shots: [] };
const check = (name, ok, detail = null) => { report.checks.push({ name, ok: !!ok, detail }); return !!ok; };
const cases = a.cases.split(',').map(s => s.trim()).filter(Boolean);
const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'facedit-fe-chromium-'));
let browser;
let restoreSettings = null;

// In-page helpers, installed once: state of each plan node and pixel counts inside its panel.
const PAGE_HELPERS = () => {
  const app = window.app || window.comfyAPI.app.app;
  const hex = h => [1, 3, 5].map(i => parseInt(h.slice(i, i + 2), 16));
  window.__fe = {
    app,
    planNodes: () => app.graph._nodes.filter(n => /^FacEDiT(Manual)?(Edit|Generation)Plan$/.test(n.type)),
    state(n) {
      const v = n.faceditPlanView;
      return { id: n.id, type: n.type, case: n.widgets?.find(w => w.name === 'case')?.value, hasPlan: n.faceditPlan != null,
        plan: n.faceditPlan ?? null, error: n.faceditPlanError ?? null, draws: v?.draws ?? 0, stale: v?.stale ?? null,
        widget: !!n.widgets?.some(w => w.name === 'facedit_plan_view'), size: [...n.size],
        context: n.widgets?.find(w => w.name === 'context_frames')?.value ?? null,
        widgetOrder: (n.widgets || []).map(w => w.name) };
    },
    // Pixels of the given colours inside the node's body (graph rect -> canvas pixels), after a full redraw.
    pixels(n, colors) {
      window.__fe.fit([n]); // at the node's own zoom, so that thin marks cover whole pixels
      const el = n.faceditPlanView?.panel?.element; // Vue nodes: the plan is on its own <canvas>
      if (el) return window.__fe.count(el.getContext('2d').getImageData(0, 0, el.width, el.height).data, colors);
      const dpr = window.devicePixelRatio || 1;
      const [x0, y0] = app.canvas.ds.convertOffsetToCanvas([n.pos[0], n.pos[1]]);
      const [x1, y1] = app.canvas.ds.convertOffsetToCanvas([n.pos[0] + n.size[0], n.pos[1] + n.size[1]]);
      const c = app.canvas.canvas;
      const rx = Math.max(0, Math.floor(x0 * dpr)), ry = Math.max(0, Math.floor(y0 * dpr));
      const rw = Math.min(c.width, Math.ceil(x1 * dpr)) - rx, rh = Math.min(c.height, Math.ceil(y1 * dpr)) - ry;
      if (rw <= 0 || rh <= 0) return { offscreen: true };
      return window.__fe.count(c.getContext('2d').getImageData(rx, ry, rw, rh).data, colors);
    },
    count(d, colors) {
      const out = {};
      for (const [name, h] of Object.entries(colors)) {
        const [r, g, b] = hex(h);
        let count = 0;
        for (let i = 0; i < d.length; i += 4) {
          if (Math.abs(d[i] - r) <= 4 && Math.abs(d[i + 1] - g) <= 4 && Math.abs(d[i + 2] - b) <= 4) count++;
        }
        out[name] = count;
      }
      return out;
    },
    fit(nodes) {
      let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      for (const n of nodes) {
        x0 = Math.min(x0, n.pos[0]); y0 = Math.min(y0, n.pos[1] - 34);
        x1 = Math.max(x1, n.pos[0] + n.size[0]); y1 = Math.max(y1, n.pos[1] + n.size[1]);
      }
      app.canvas.ds.fitToBounds([x0 - 20, y0 - 20, x1 - x0 + 40, y1 - y0 + 40]);
      app.canvas.setDirty(true, true);
      app.canvas.draw(true, true);
    },
    // Client (page) coordinates of panel point (x, y) of node n.
    clientPoint(n, x, y) {
      const p = n.faceditPlanView.panel;
      if (p.element) {
        const r = p.element.getBoundingClientRect();
        return { x: r.left + x * r.width / p.w, y: r.top + y * r.height / p.h };
      }
      const [cx, cy] = app.canvas.ds.convertOffsetToCanvas([n.pos[0] + p.x + x, n.pos[1] + p.y + y]);
      const r = app.canvas.canvas.getBoundingClientRect();
      return { x: r.left + cx, y: r.top + cy };
    },
    layoutGrid(spaced = false) { // plan nodes in two columns, each PreviewImage to its right
      if (window.LiteGraph?.vueNodesMode) return; // Vue nodes keep their own positions
      const rows = [80, 80];
      window.__fe.planNodes().forEach((n, i) => {
        const col = i % 2, x = 60 + col * (Math.max(n.size[0], spaced ? 520 : 0) + 380);
        n.pos = [x, rows[col]];
        const link = n.outputs?.[0]?.links?.map(l => app.graph.links[l] ?? app.graph._links?.get(l))[0];
        const prev = link && app.graph.getNodeById(link.target_id);
        if (prev) { prev.pos = [x + n.size[0] + 50, rows[col]]; prev.size = [260, 300]; }
        rows[col] += Math.max(n.size[1], prev ? prev.size[1] : 0, spaced ? 720 : 0) + 70;
      });
      let y = 80; // the other nodes (loaders...) in a column on the left, out of the way
      const placed = new Set(window.__fe.planNodes().flatMap(n => [n.id, ...(n.outputs?.[0]?.links ?? [])
        .map(l => (app.graph.links[l] ?? app.graph._links?.get(l))?.target_id)]));
      for (const n of app.graph._nodes) {
        if (placed.has(n.id)) continue;
        n.pos = [-n.size[0] - 120, y];
        y += n.size[1] + 60;
      }
      app.canvas.setDirty(true, true);
    },
  };
};

async function queueAndWait(page, timeoutMs) {
  return page.evaluate(async (timeoutMs) => {
    const app = window.__fe.app, api = window.comfyAPI.api.api;
    const executed = {};
    const staleAtStart = {};
    const onExec = e => { executed[e.detail.display_node || e.detail.node] = e.detail.output; };
    const onStart = () => { for (const n of window.__fe.planNodes()) staleAtStart[n.id] = n.faceditPlanView?.stale ?? null; };
    api.addEventListener('executed', onExec);
    api.addEventListener('execution_start', onStart);
    const done = new Promise(resolve => {
      const t = setTimeout(() => resolve({ status: 'timeout' }), timeoutMs);
      for (const ev of ['execution_success', 'execution_error', 'execution_interrupted']) {
        api.addEventListener(ev, e => { clearTimeout(t); resolve({ status: ev, detail: ev === 'execution_success' ? null : e.detail }); }, { once: true });
      }
    });
    await app.queuePrompt(0, 1);
    const r = await done;
    api.removeEventListener('executed', onExec);
    api.removeEventListener('execution_start', onStart);
    await new Promise(res => setTimeout(res, 300));
    return { ...r, executed, staleAtStart };
  }, timeoutMs);
}

async function shot(page, name, clipNode = null, panelOnly = false) {
  if (!a.outDir && !(name === 'doc' && a.docShot)) return;
  const file = name === 'doc' ? a.docShot : path.join(a.outDir, `${name}.png`);
  let clip;
  if (clipNode != null) {
    clip = await page.evaluate(([id, panelOnly]) => {
      const app = window.__fe.app, n = app.graph.getNodeById(id);
      const r = app.canvas.canvas.getBoundingClientRect();
      const [x0, y0] = app.canvas.ds.convertOffsetToCanvas([n.pos[0] - 12, n.pos[1] - 32]); // below the badge
      const p = n.faceditPlanView?.panel;
      const bottom = panelOnly && p ? p.y + p.h + 10 : n.size[1] + 12;
      const [x1, y1] = app.canvas.ds.convertOffsetToCanvas([n.pos[0] + n.size[0] + 12, n.pos[1] + bottom]);
      return { x: r.left + x0, y: r.top + y0, width: x1 - x0, height: y1 - y0 };
    }, [clipNode, panelOnly]);
  }
  await page.screenshot({ path: file, clip });
  report.shots.push(file);
}

try {
  const { chromium } = loadPlaywright(a.playwright);
  if (a.outDir) fs.mkdirSync(a.outDir, { recursive: true });
  browser = await chromium.launchPersistentContext(userDir, {
    executablePath: a.chromium, headless: true, viewport: { width: 1400, height: 1100 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = browser.pages()[0] || await browser.newPage();
  page.on('console', m => {
    const t = m.text().slice(0, 600);
    if (m.type() === 'warning') report.consoleWarnings.push(t);
    if (m.type() === 'error' && !BENIGN.some(r => r.test(t))) report.consoleErrors.push(t);
  });
  page.on('pageerror', e => report.pageErrors.push(String(e).slice(0, 600)));

  // A fresh user directory opens the template browser on the first visit; this setting skips it.
  await fetch(new URL('/settings/Comfy.TutorialCompleted', a.url), { method: 'POST', body: 'true' });
  await page.goto(a.url, { waitUntil: 'domcontentloaded', timeout: a.timeoutMs });
  await page.waitForFunction(() => {
    const app = window.app || window.comfyAPI?.app?.app;
    return !!(app && app.canvas && app.graph && document.querySelector('canvas#graph-canvas'));
  }, null, { timeout: a.timeoutMs, polling: 250 });
  await page.waitForTimeout(1000);
  for (let i = 0; i < 5 && await page.locator('[role="dialog"]').count(); i++) {
    await page.keyboard.press('Escape');
    await page.waitForTimeout(300);
  }
  await page.evaluate(PAGE_HELPERS);

  const ext = await page.evaluate(() => {
    const app = window.__fe.app;
    const types = ['FacEDiTEditPlan', 'FacEDiTManualEditPlan', 'FacEDiTGenerationPlan'];
    return { names: app.extensions.map(e => e.name).filter(n => /facedit/i.test(n)),
      hooked: Object.fromEntries(types.map(t => [t, !!globalThis.LiteGraph?.registered_node_types?.[t]?.prototype?.faceditPlanInstalled])) };
  });
  check('extension registered', ext.names.includes('FacEDiT.EditPlanView'), ext);
  check('plan node types hooked', Object.values(ext.hooked).every(Boolean), ext.hooked);

  // The graph: one plan node per case, each feeding a PreviewImage (the output node that makes it run).
  const prompt = a.prompt ? JSON.parse(fs.readFileSync(a.prompt, 'utf8')) : {};
  if (!a.prompt) cases.forEach((c, i) => {
    prompt[String(2 * i + 1)] = { class_type: CASE_NODE[c], inputs: { case: c, context_frames: 3 } };
    prompt[String(2 * i + 2)] = { class_type: 'PreviewImage', inputs: { images: [String(2 * i + 1), 0] } };
  });
  await page.evaluate(async p => { await window.__fe.app.loadApiJson(p.prompt, 'facedit_plan_check'); window.__fe.layoutGrid(p.vue); }, { prompt, vue: !!a.vue });
  await page.waitForTimeout(500);
  // Vue nodes keep their own positions: lay the graph out on the canvas first, then switch them on.
  report.vue = a.vue;
  const vueBefore = await page.evaluate(async vue => {
    const setting = window.__fe.app.extensionManager.setting;
    const before = setting.get('Comfy.VueNodes.Enabled');
    if (vue !== !!before) await setting.set('Comfy.VueNodes.Enabled', vue);
    await new Promise(r => setTimeout(r, 500));
    return before;
  }, !!a.vue);
  restoreSettings = async () => page.evaluate(async v => {
    const setting = window.__fe.app.extensionManager.setting;
    if (setting.get('Comfy.VueNodes.Enabled') !== v) await setting.set('Comfy.VueNodes.Enabled', v);
  }, vueBefore);
  check('node rendering mode', await page.evaluate(() => !!window.LiteGraph?.vueNodesMode) === !!a.vue, { vue: !!a.vue });
  const colors = { panel: '#161E28', substitution: '#E69F00', insertion: '#009E73', deletion: '#D55E00',
    generation: '#56B4E9', context: '#F0E442', warning: '#F5B94A' };
  const before = await page.evaluate(c => {
    window.__fe.fit(window.__fe.app.graph._nodes);
    return window.__fe.planNodes().map(n => ({ ...window.__fe.state(n), pixels: window.__fe.pixels(n, c) }));
  }, colors);
  const planCount = Object.values(prompt).filter(p => PLAN_TYPES.includes(p.class_type)).length;
  check('plan nodes loaded', before.length === planCount && planCount > 0, before.map(s => `${s.type}:${s.case ?? `#${s.id}`}`));
  // (Vue nodes are DOM elements over the graph canvas: there only the structural part applies.)
  const blank = s => !s.hasPlan && !s.widget && s.draws === 0 && (a.vue || s.pixels.panel < 50);
  check('nothing drawn before a run', before.every(blank),
    before.map(s => ({ id: s.id, hasPlan: s.hasPlan, widget: s.widget, draws: s.draws, panelPixels: s.pixels.panel })));
  await page.evaluate(() => window.__fe.fit(window.__fe.app.graph._nodes));
  await shot(page, 'before');

  // First run, on emptied caches (POST /free): a cached branch would not send its plan.
  if (!a.keepCache) {
    await fetch(new URL('/free', a.url), { method: 'POST', body: JSON.stringify({ free_memory: true }) });
    await page.waitForTimeout(1000);
  }
  const run1 = await queueAndWait(page, a.timeoutMs);
  check('first run succeeded', run1.status === 'execution_success', run1.status === 'execution_success' ? null : run1);
  await page.evaluate(() => { window.__fe.layoutGrid(); window.__fe.fit(window.__fe.app.graph._nodes); });
  const after = await page.evaluate(c => window.__fe.planNodes().map(n => ({ ...window.__fe.state(n), pixels: window.__fe.pixels(n, c) })), colors);
  for (const s of after) {
    const sent = run1.executed[String(s.id)]?.facedit_plan;
    const tag = `${s.type}:${s.case ?? `#${s.id}`}`;
    check(`${tag}: node holds the plan it was sent`, sent && JSON.stringify(s.plan) === JSON.stringify(sent[sent.length - 1]),
      { sentKeys: sent ? Object.keys(sent[0] || {}) : null });
    check(`${tag}: drawn on the canvas`, s.widget && s.draws > 0 && s.pixels.panel > 2000, { draws: s.draws, pixels: s.pixels });
    check(`${tag}: plan widget sits above the image preview`,
      s.widgetOrder.indexOf('facedit_plan_view') >= 0 && (s.widgetOrder.indexOf('$$canvas-image-preview') < 0 ||
        s.widgetOrder.indexOf('facedit_plan_view') < s.widgetOrder.indexOf('$$canvas-image-preview')), s.widgetOrder);
    if (s.case === 'malformed') {
      check(`${tag}: reported, not drawn`, /source_time/.test(s.error || '') && s.pixels.warning > 50, { error: s.error, pixels: s.pixels });
      check(`${tag}: console warning logged`, report.consoleWarnings.some(w => w.includes(`edit plan of node ${s.id} not drawn`)));
    } else {
      const types = new Set((s.plan?.edits || []).map(e => e.type));
      check(`${tag}: no error`, s.error === null, s.error);
      check(`${tag}: edit colours drawn`, [...types].every(t => s.pixels[t] > 20), { types: [...types], pixels: s.pixels });
      if (!a.vue) check(`${tag}: node widened to the minimum`, s.size[0] >= 500, s.size); // Vue nodes size themselves
    }
  }
  await page.evaluate(() => window.__fe.fit(window.__fe.app.graph._nodes));
  await shot(page, 'after');
  for (const s of after) {
    if (!a.outDir) break;
    await page.evaluate(id => window.__fe.fit([window.__fe.app.graph.getNodeById(id)]), s.id);
    await shot(page, `node_${s.case ?? s.id}`, s.id);
  }

  // Hover a changed word of the first word-level plan: the tooltip names it.
  const hoverCase = after.find(s => s.plan?.edits?.some(e => e.original_words?.length));
  if (hoverCase) {
    const target = await page.evaluate(async id => {
      const app = window.__fe.app, n = app.graph.getNodeById(id);
      const e = n.faceditPlan.edits.find(ed => ed.type === 'substitution' && ed.original_words.length) ||
        n.faceditPlan.edits.find(ed => ed.original_words.length);
      const word = n.faceditPlan.original_words.find(w => w.word === e.original_words[0]);
      if (!window.LiteGraph?.vueNodesMode) n.pos = [60, 80];
      window.__fe.fit([n]);
      await new Promise(r => setTimeout(r, 300)); // Vue nodes follow the canvas transform a frame later
      const L = n.faceditPlanView.layout;
      return { ...window.__fe.clientPoint(n, L.sx((word.start + word.end) / 2), L.origLane.y + L.origLane.h / 2), word: word.word };
    }, hoverCase.id);
    await page.mouse.move(target.x - 40, target.y - 40);
    await page.mouse.move(target.x, target.y, { steps: 4 });
    await page.waitForTimeout(300);
    const hovered = await page.evaluate(id => {
      const n = window.__fe.app.graph.getNodeById(id);
      window.__fe.app.canvas.draw(true, true);
      return { hover: n.faceditPlanView.hover, tooltip: n.faceditPlanView.tooltip };
    }, hoverCase.id);
    check('hovering a word shows its tooltip', hovered.hover !== null && (hovered.tooltip || [])[0]?.includes(`"${target.word}"`),
      { target, hovered });
    await shot(page, 'hover', hoverCase.id);
    await shot(page, 'doc', hoverCase.id, true);
    await page.mouse.move(5, 5);
    await page.evaluate(() => { window.__fe.layoutGrid(); window.__fe.fit(window.__fe.app.graph._nodes); });
  }

  // Re-run with another context margin: the plan is replaced, and was dimmed while the run started.
  const rerunNode = after.find(s => s.case !== 'malformed' && s.context !== null && s.plan?.context_frames === s.context);
  const newContext = rerunNode ? rerunNode.context + 3 : null;
  if (rerunNode) {
    await page.evaluate(([id, v]) => {
      const n = window.__fe.app.graph.getNodeById(id);
      n.widgets.find(w => w.name === 'context_frames').value = v;
    }, [rerunNode.id, newContext]);
    const run2 = await queueAndWait(page, a.timeoutMs);
    check('re-run succeeded', run2.status === 'execution_success', run2.status === 'execution_success' ? null : run2);
    const s2 = await page.evaluate(({ id, c }) => {
      const n = window.__fe.app.graph.getNodeById(id);
      return { ...window.__fe.state(n), pixels: window.__fe.pixels(n, c) };
    }, { id: rerunNode.id, c: colors });
    const sent2 = run2.executed[String(rerunNode.id)]?.facedit_plan;
    check('re-run replaces the plan', s2.plan?.context_frames === newContext &&
      JSON.stringify(s2.plan) === JSON.stringify(sent2?.[sent2.length - 1]) &&
      JSON.stringify(s2.plan.infill_runs) !== JSON.stringify(rerunNode.plan.infill_runs),
      { before: rerunNode.plan?.infill_runs, after: s2.plan?.infill_runs });
    check('re-run redraws', s2.draws > rerunNode.draws && s2.stale === false && s2.pixels.panel > 2000,
      { drawsBefore: rerunNode.draws, drawsAfter: s2.draws, stale: s2.stale });
    check('old plan dimmed when the run started', run2.staleAtStart[String(rerunNode.id)] === true, run2.staleAtStart);
    // The other plan nodes were cached: ComfyUI sent `execution_cached` for them, which undims them.
    const others = await page.evaluate(ids => ids.map(id => window.__fe.state(window.__fe.app.graph.getNodeById(id))),
      after.filter(s => s.id !== rerunNode.id && s.case !== 'malformed').map(s => s.id));
    check('cached plan nodes dimmed at the start, undimmed when reported cached',
      others.every(o => run2.staleAtStart[String(o.id)] === true && o.stale === false && o.hasPlan),
      others.map(o => ({ id: o.id, staleAtStart: run2.staleAtStart[String(o.id)], stale: o.stale })));
    await page.evaluate(() => { window.__fe.layoutGrid(); window.__fe.fit(window.__fe.app.graph._nodes); });
    await shot(page, 'rerun');
    await page.evaluate(id => window.__fe.fit([window.__fe.app.graph.getNodeById(id)]), rerunNode.id);
    await shot(page, 'rerun_node', rerunNode.id);
  }

  // Save / reload: no plan in the workflow or the API prompt, nothing drawn after loading it again.
  const saved = await page.evaluate(async () => {
    const app = window.__fe.app;
    const graph = app.graph.serialize();
    const prompt = (await app.graphToPrompt()).output;
    const planInputs = Object.fromEntries(Object.entries(prompt).filter(([, p]) => /^FacEDiT.*Plan$/.test(p.class_type))
      .map(([id, p]) => [id, Object.keys(p.inputs).sort()]));
    return { text: JSON.stringify(graph), graph, planInputs };
  });
  check('saved workflow holds no plan', !/facedit_plan|source_time|infill_runs/.test(saved.text));
  check('API prompt holds only the node inputs', Object.entries(saved.planInputs).every(([id, keys]) =>
    JSON.stringify(keys) === JSON.stringify(Object.keys(prompt[id].inputs).sort())), saved.planInputs);
  const reloaded = await page.evaluate(async ({ graph, c }) => {
    await window.__fe.app.loadGraphData(graph, true, true, 'facedit_plan_check_reloaded');
    await new Promise(r => setTimeout(r, 500));
    return window.__fe.planNodes().map(n => ({ ...window.__fe.state(n), pixels: window.__fe.pixels(n, c) }));
  }, { graph: saved.graph, c: colors });
  check('nothing drawn after reloading the workflow', reloaded.length === planCount &&
    reloaded.every(blank), reloaded.map(s => ({ id: s.id, hasPlan: s.hasPlan, panel: s.pixels.panel })));

  // Outputs restored by the frontend (app.nodeOutputs setter -> onNodeOutputsUpdated) are drawn.
  const restored = await page.evaluate(({ outputs, c }) => {
    window.__fe.app.nodeOutputs = outputs;
    return window.__fe.planNodes().map(n => ({ ...window.__fe.state(n), pixels: window.__fe.pixels(n, c) }));
  }, { outputs: run1.executed, c: colors });
  check('restored outputs are drawn', restored.filter(s => s.case !== 'malformed').every(s => s.hasPlan && s.pixels.panel > 2000),
    restored.map(s => ({ id: s.id, hasPlan: s.hasPlan, panel: s.pixels.panel })));

  // Switching Vue nodes on while plans are shown: the canvas widgets turn into DOM canvases, and back.
  if (!a.vue) {
    const toggled = [];
    for (const vue of [true, false]) {
      await page.evaluate(v => window.__fe.app.extensionManager.setting.set('Comfy.VueNodes.Enabled', v), vue);
      await page.waitForTimeout(1000);
      const st = await page.evaluate(c => window.__fe.planNodes().filter(n => n.faceditPlan && !n.faceditPlanError)
        .map(n => ({ id: n.id, kind: n.faceditPlanView.widgetKind, panel: window.__fe.pixels(n, c).panel,
          widgets: n.widgets.filter(w => w.name === 'facedit_plan_view').length })), { panel: colors.panel });
      toggled.push({ vue, st });
      await shot(page, `toggled_vue_${vue}`);
    }
    const [on, off] = toggled;
    check('Vue nodes switched on: plans move to DOM canvases', on.st.length > 0 &&
      on.st.every(s => s.kind === 'dom' && s.widgets === 1 && s.panel > 2000), on.st);
    check('Vue nodes switched off again: plans still shown', off.st.every(s => s.widgets === 1), off.st);
  }

  check('no page errors', report.pageErrors.length === 0, report.pageErrors);
  check('no console errors', report.consoleErrors.length === 0, report.consoleErrors);
  await restoreSettings?.();
  report.ok = report.checks.every(c => c.ok);
  console.log(JSON.stringify(report, null, 2));
  await browser.close();
  fs.rmSync(userDir, { recursive: true, force: true });
  process.exit(report.ok ? 0 : 2);
} catch (e) {
  report.error = String(e?.stack || e);
  await restoreSettings?.().catch(() => {});
  console.log(JSON.stringify(report, null, 2));
  if (browser) await browser.close().catch(() => {});
  fs.rmSync(userDir, { recursive: true, force: true });
  process.exit(1);
}
