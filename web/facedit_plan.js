// ComfyUI frontend extension: draws the edit plan on the FacEDiT plan nodes after they run.
//
// Contract: the nodes FacEDiTEditPlan, FacEDiTManualEditPlan and FacEDiTGenerationPlan send
// {"facedit_plan": [EditPlan.to_dict()]} as UI output; the last plan of the list is drawn
// (facedit_plan_view.js). The nodes send no preview image as well: the drawing is the one view on the node.
//
// Lifetime: the drawing lives in a widget that is never serialised, so a saved workflow holds no plan and a
// reloaded page shows none until the node runs again. When the frontend itself restores node outputs
// (switching workflow tabs, loading a run from the queue history) the plan of that real run is drawn again.
// When a run starts the drawing is dimmed; the node's `executed` message replaces it, and an
// `execution_cached` message naming the node (same inputs, same plan) undims it. A node whose whole
// downstream branch is cached is not visited by ComfyUI, sends nothing and stays dimmed. Nodes inside
// subgraphs are drawn when they run; their cached/restored outputs are not handled.
//
// Rendering: on the litegraph canvas a widget draws the plan with the node (hover: tooltip of the word or
// frame under the mouse). With Vue nodes (setting Comfy.VueNodes.Enabled) it is a DOM widget with a
// <canvas> of its own; switching the mode swaps the widget.
//
// Inspection hooks for tests and debugging: node.faceditPlan (the last plan dict received),
// node.faceditPlanError (why it was not drawn, or null) and node.faceditPlanView (draws, stale, tooltip).

import { api } from '../../scripts/api.js';
import { app } from '../../scripts/app.js';
import { MIN_WIDTH, drawPlan, errorLayout, hitTest, layoutPlan, normalizePlan } from './facedit_plan_view.js';

export const EXTENSION_NAME = 'FacEDiT.EditPlanView';
export const PLAN_NODE_TYPES = ['FacEDiTEditPlan', 'FacEDiTManualEditPlan', 'FacEDiTGenerationPlan'];
export const OUTPUT_KEY = 'facedit_plan';
export const WIDGET_NAME = 'facedit_plan_view'; // no '$$' prefix: subgraphs promote '$$' preview widgets
const IMAGE_PREVIEW_WIDGET = '$$canvas-image-preview';
const MARGIN = 10; // panel inset from the node's sides
const GAP = 4; // space above and below the panel

let measureCtx = null;
function measure(text, font) {
  measureCtx ??= document.createElement('canvas').getContext('2d');
  measureCtx.font = font;
  return measureCtx.measureText(text).width;
}

function vueMode() { // ComfyUI's "Vue nodes" (setting Comfy.VueNodes.Enabled)
  return !!globalThis.LiteGraph?.vueNodesMode;
}

function layoutFor(view, width) {
  const w = Math.max(width - 2 * MARGIN, 200);
  if (view.layout && view.layoutWidth === w) return view.layout;
  try {
    view.layout = view.plan ? layoutPlan(view.plan, w, measure) : errorLayout(view.error ?? 'no plan', w, measure);
  } catch (err) {
    view.error = `layout failed: ${err?.message ?? err}`;
    console.warn('[FacEDiT] edit plan layout failed:', err);
    view.plan = null;
    view.layout = errorLayout(view.error, w, measure);
  }
  view.layoutWidth = w;
  return view.layout;
}

function panelHeight(view, nodeWidth) {
  return layoutFor(view, nodeWidth).height + 2 * GAP;
}

function paintInto(ctx, view, L, x, y, lowQuality = false) {
  view.draws += 1;
  try {
    view.tooltip = drawPlan(ctx, L, x, y, { hover: lowQuality ? null : view.hover, stale: view.stale, measure, lowQuality });
  } catch (err) {
    if (!view.drawFailed) console.warn('[FacEDiT] edit plan drawing failed:', err);
    view.drawFailed = true;
    view.error = `drawing failed: ${err?.message ?? err}`;
    view.plan = null;
    view.layout = null;
  }
}

// Litegraph canvas (the default): a widget drawn on the graph canvas with the node.
function makeCanvasWidget(node, view) {
  return {
    name: WIDGET_NAME,
    type: 'facedit_plan_view',
    value: '',
    serialize: false, // not in widgets_values
    options: { serialize: false }, // not in the API prompt
    computeSize: () => [node.size[0], panelHeight(view, node.size[0])],
    draw(ctx, _node, _width, y, _h, lowQuality) {
      if (vueMode()) { // Vue nodes were switched on: their legacy-widget rows cannot grow, use a DOM canvas
        queueMicrotask(() => replaceWidget(node, view));
        return;
      }
      const L = layoutFor(view, node.size[0]);
      view.panel = { x: MARGIN, y: y + GAP, w: L.width, h: L.height };
      paintInto(ctx, view, L, MARGIN, y + GAP, lowQuality);
    },
  };
}

// Vue nodes mode: a DOM widget holding a <canvas> (legacy canvas widgets get one fixed-height row there).
// Vue nodes keep the width the user gives them (setSize does not reach them): the panel fits that width.
function makeDomWidget(node, view) {
  const canvas = document.createElement('canvas');
  canvas.style.display = 'block';
  const holder = document.createElement('div');
  holder.style.width = '100%';
  holder.appendChild(canvas);
  const width = () => (holder.clientWidth || node.size[0] - 2 * MARGIN) + 2 * MARGIN;
  const widget = node.addDOMWidget(WIDGET_NAME, 'facedit_plan_view', holder, {
    serialize: false, hideOnZoom: false, getMinHeight: () => panelHeight(view, width()),
    getMaxHeight: () => panelHeight(view, width()),
  });
  widget.serialize = false;
  const paint = () => {
    const L = layoutFor(view, width());
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(L.width * dpr);
    canvas.height = Math.round(L.height * dpr);
    canvas.style.width = `${L.width}px`;
    canvas.style.height = `${L.height}px`;
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    view.panel = { x: 0, y: 0, w: L.width, h: L.height, element: canvas };
    paintInto(ctx, view, L, 0, 0);
  };
  canvas.addEventListener('pointermove', e => {
    const hover = view.layout && hitTest(view.layout, e.offsetX, e.offsetY) ? { x: e.offsetX, y: e.offsetY } : null;
    if (hover || view.hover) { view.hover = hover; paint(); }
  });
  canvas.addEventListener('pointerleave', () => { if (view.hover) { view.hover = null; paint(); } });
  new ResizeObserver(paint).observe(holder);
  widget.triggerDraw = paint;
  return widget;
}

function addWidget(node, view) {
  node.widgets ??= [];
  const widget = vueMode() ? makeDomWidget(node, view) : node.addCustomWidget(makeCanvasWidget(node, view));
  const preview = node.widgets.findIndex(w => w.name === IMAGE_PREVIEW_WIDGET);
  if (preview >= 0 && preview < node.widgets.indexOf(widget)) { // above the plan picture, if any
    node.widgets.splice(node.widgets.indexOf(widget), 1);
    node.widgets.splice(preview, 0, widget);
  }
  view.widget = widget;
  view.widgetKind = vueMode() ? 'dom' : 'canvas';
}

function replaceWidget(node, view) {
  if (!view.widget || view.widgetKind === (vueMode() ? 'dom' : 'canvas')) return;
  const at = node.widgets.indexOf(view.widget);
  if (at >= 0) node.removeWidget(view.widget);
  addWidget(node, view);
  refresh(node);
}

function refresh(node) {
  const view = node.faceditPlanView;
  view.layout = null;
  view.hover = null;
  view.widget?.triggerDraw?.();
  node.setDirtyCanvas?.(true, true);
}

/** Show plan dict `raw` on `node` (replacing what it showed); a bad dict shows an error line instead. */
export function setPlan(node, raw) {
  const view = (node.faceditPlanView ??= { draws: 0, hover: null, stale: false, plan: null, error: null, widget: null });
  const oldHeight = view.widget ? panelHeight(view, node.size[0]) : 0;
  try {
    view.plan = normalizePlan(raw);
    view.error = null;
  } catch (err) {
    view.plan = null;
    view.error = err?.message ?? String(err);
    console.warn(`[FacEDiT] edit plan of node ${node.id} not drawn: ${view.error}`, raw);
  }
  view.stale = false;
  view.drawFailed = false;
  view.layout = null;
  node.faceditPlan = raw;
  node.faceditPlanError = view.error;

  if (!view.widget) addWidget(node, view);
  else replaceWidget(node, view);
  const width = Math.max(node.size[0], MIN_WIDTH + 2 * MARGIN);
  if (width !== node.size[0]) node.setSize([width, node.size[1]]);
  const newHeight = panelHeight(view, width);
  const need = node.computeSize()[1];
  node.setSize([width, Math.max(need, node.size[1] + (oldHeight ? newHeight - oldHeight : 0))]);
  refresh(node);
}

function installOn(proto) {
  if (proto.faceditPlanInstalled) return;
  proto.faceditPlanInstalled = true;

  const onExecuted = proto.onExecuted;
  proto.onExecuted = function (output) {
    const r = onExecuted?.apply(this, arguments);
    if (output && Object.prototype.hasOwnProperty.call(output, OUTPUT_KEY)) {
      const value = output[OUTPUT_KEY];
      setPlan(this, Array.isArray(value) ? value[value.length - 1] : value);
    } else {
      console.warn(`[FacEDiT] node ${this.id} (${this.type}) ran without '${OUTPUT_KEY}' in its UI output`);
    }
    return r;
  };

  const onExecutionStart = proto.onExecutionStart;
  proto.onExecutionStart = function () {
    const r = onExecutionStart?.apply(this, arguments);
    if (this.faceditPlanView?.widget) {
      this.faceditPlanView.stale = true;
      refresh(this);
    }
    return r;
  };

  const onMouseMove = proto.onMouseMove;
  proto.onMouseMove = function (e, pos) {
    const r = onMouseMove?.apply(this, arguments);
    const view = this.faceditPlanView;
    const p = view?.panel;
    if (!p || !view.layout || view.widgetKind !== 'canvas') return r; // the DOM canvas has its own events
    const x = pos[0] - p.x, y = pos[1] - p.y;
    const inside = x >= 0 && y >= 0 && x <= p.w && y <= p.h;
    const hover = inside && hitTest(view.layout, x, y) ? { x, y } : null;
    if (hover || view.hover) {
      view.hover = hover;
      this.setDirtyCanvas?.(true, false);
    }
    return r;
  };

  const onMouseLeave = proto.onMouseLeave;
  proto.onMouseLeave = function () {
    const r = onMouseLeave?.apply(this, arguments);
    if (this.faceditPlanView?.hover) {
      this.faceditPlanView.hover = null;
      this.setDirtyCanvas?.(true, false);
    }
    return r;
  };
}

function graphNode(id) {
  const graph = app.rootGraph ?? app.graph;
  if (!graph || (typeof id !== 'number' && !/^\d+$/.test(String(id)))) return null; // subgraph ids: not handled
  return graph.getNodeById?.(Number(id)) ?? null;
}

app.registerExtension({
  name: EXTENSION_NAME,

  setup() {
    api.addEventListener('execution_cached', ({ detail }) => {
      for (const id of detail?.nodes ?? []) {
        const node = graphNode(id);
        if (node?.faceditPlanView?.stale) {
          node.faceditPlanView.stale = false;
          refresh(node);
        }
      }
    });
  },

  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (PLAN_NODE_TYPES.includes(nodeData?.name)) installOn(nodeType.prototype);
  },

  // Outputs restored by the frontend (workflow tab switch, a run loaded from the queue history).
  onNodeOutputsUpdated(outputs) {
    if (!outputs) return;
    for (const [id, output] of Object.entries(outputs)) {
      if (!output || !Object.prototype.hasOwnProperty.call(output, OUTPUT_KEY)) continue;
      const node = graphNode(id);
      if (!node || !PLAN_NODE_TYPES.includes(node.type)) continue;
      const value = output[OUTPUT_KEY];
      const raw = Array.isArray(value) ? value[value.length - 1] : value;
      if (raw !== node.faceditPlan) setPlan(node, raw);
    }
  },
});
