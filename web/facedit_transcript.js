// ComfyUI frontend extension: shows the transcript on FacEDiT Transcribe / Align Transcript after a run, with a
// button that copies it into the text box of a FacEDiT Speech Edit node.
//
// Contract: those nodes send {"facedit_transcript": [text]} as UI output (the last entry is shown). The copy goes
// to the Speech Edit node fed by this node's outputs, else to the first Speech Edit node of the graph; its
// widget is `edited_text`. Like the plan view, the shown text is not saved with the workflow.
//
// Inspection hook for tests and debugging: node.faceditTranscript (the last text received).

import { app } from '../../scripts/app.js';

export const EXTENSION_NAME = 'FacEDiT.TranscriptView';
export const TRANSCRIPT_NODE_TYPES = ['FacEDiTTranscribe', 'FacEDiTAlign'];
export const OUTPUT_KEY = 'facedit_transcript';
export const SPEECH_EDIT_TYPE = 'FacEDiTSpeechEdit';
export const TARGET_WIDGET = 'edited_text';
const TEXT_WIDGET = 'facedit_transcript_text';
const BUTTON_WIDGET = 'Copy to Speech Edit';

function speechEditTarget(node) {
  const graph = node.graph ?? app.rootGraph ?? app.graph;
  if (!graph) return null;
  for (const output of node.outputs ?? []) {
    for (const linkId of output.links ?? []) {
      const link = graph.links?.[linkId] ?? graph.links?.get?.(linkId);
      const target = link ? graph.getNodeById?.(link.target_id) : null;
      if (target?.type === SPEECH_EDIT_TYPE) return target;
    }
  }
  return (graph._nodes ?? graph.nodes ?? []).find((n) => n.type === SPEECH_EDIT_TYPE) ?? null;
}

function copyTranscript(node) {
  const text = node.faceditTranscript;
  if (!text) return;
  const target = speechEditTarget(node);
  const widget = target?.widgets?.find((w) => w.name === TARGET_WIDGET);
  if (!widget) {
    console.warn(`[FacEDiT] no ${SPEECH_EDIT_TYPE} node with a '${TARGET_WIDGET}' box to copy the transcript into`);
    return;
  }
  widget.value = text;
  widget.callback?.(text);
  target.setDirtyCanvas?.(true, true);
}

function showTranscript(node, text) {
  node.faceditTranscript = text;
  let widget = node.widgets?.find((w) => w.name === TEXT_WIDGET);
  if (!widget) {
    widget = node.addWidget('text', TEXT_WIDGET, text, () => {}, { multiline: true, serialize: false });
    widget.serialize = false;
    node.addWidget('button', BUTTON_WIDGET, null, () => copyTranscript(node), { serialize: false });
  }
  widget.value = text;
  node.setSize?.([node.size[0], Math.max(node.size[1], node.computeSize()[1])]);
  node.setDirtyCanvas?.(true, true);
}

app.registerExtension({
  name: EXTENSION_NAME,

  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!TRANSCRIPT_NODE_TYPES.includes(nodeData?.name)) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (output) {
      const r = onExecuted?.apply(this, arguments);
      const value = output?.[OUTPUT_KEY];
      if (value !== undefined) showTranscript(this, String(Array.isArray(value) ? value[value.length - 1] : value));
      return r;
    };
  },
});
