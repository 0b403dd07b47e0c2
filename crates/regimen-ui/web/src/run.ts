// A run's page: its curves (train against validation, smoothed over the raw line), system
// metrics, gradient norms per layer, predictions on the fixed batch per epoch, diagnosis,
// configuration, dataset, checkpoints and notes; live while the run trains.

import { type Run, type Series, download, events, get, objectUrl, post } from './api';
import { Chart, type Line, type Source, refreshMounted } from './chart';
import { PALETTE, badge, bytes, h, markdown, num, when } from './util';

interface Detail {
  run: Run;
  seed: number;
  config: Record<string, unknown>;
  dataset: Record<string, unknown>;
  provenance: Record<string, unknown>;
  environment: Record<string, unknown>;
  notes: { created_at: string; kind: string; body: string }[];
  artifacts: { index: number; kind: string; bytes: number; checksum: string | null }[];
  series: Record<string, number>;
}

interface Check {
  name: string;
  status: string;
  message: string;
  fix?: string;
}

interface Diagnosis {
  status: string;
  checks: Check[];
  evidence: { predictions: { epoch: number; targets: number[]; predicted: number[]; true_class_probability?: number[] }[] };
}

export interface View {
  smooth: number;
  log: boolean;
  x: 'step' | 'epoch' | 'wall';
}

const VIEW_KEY = 'regimen-chart-view';

/** The chart settings shared by the run and compare pages. */
export function loadView(): View {
  try {
    const saved = JSON.parse(localStorage.getItem(VIEW_KEY) ?? 'null');
    if (saved && typeof saved.smooth === 'number') return saved as View;
  } catch {
    // Start over.
  }
  return { smooth: 0.6, log: false, x: 'step' };
}

/** Smoothing (unless `smoothing` is false), log scale and x axis controls; `changed` runs after
 *  each change. */
export function viewControls(view: View, changed: () => void, smoothing = true): HTMLElement {
  const save = () => {
    localStorage.setItem(VIEW_KEY, JSON.stringify(view));
    changed();
  };
  const smooth = h('input', { type: 'range', min: 0, max: 0.99, step: 0.01, value: String(view.smooth), 'aria-label': 'smoothing' });
  const shown = h('output', {}, view.smooth.toFixed(2));
  smooth.addEventListener('change', () => {
    view.smooth = Number(smooth.value);
    shown.textContent = view.smooth.toFixed(2);
    save();
  });
  const log = h('input', { type: 'checkbox', checked: view.log, class: 'log-toggle' });
  log.addEventListener('change', () => {
    view.log = log.checked;
    save();
  });
  const x = h('select', { class: 'x-axis' }, ...['step', 'epoch', 'wall'].map((v) => h('option', { value: v }, v)));
  x.value = view.x;
  x.addEventListener('change', () => {
    view.x = x.value as View['x'];
    save();
  });
  return h('div', { class: 'controls' },
    smoothing ? h('label', {}, 'smoothing ', smooth, shown) : null,
    h('label', {}, log, ' log scale'),
    h('label', {}, 'x: ', x));
}

/** A run's series as a chart source: each key a line, smoothed on the server over every point. */
function runSource(runId: string, keys: string[], view: View): Source {
  return async (range, buckets) => {
    const lines = await Promise.all(keys.map(async (key, i): Promise<Line> => {
      const params = new URLSearchParams({ key, x: view.x, buckets: String(buckets) });
      if (range.from !== undefined) params.set('from', String(range.from));
      if (range.to !== undefined) params.set('to', String(range.to));
      if (view.smooth > 0) params.set('smooth', String(view.smooth));
      const series = await get<Series>(`/api/runs/${encodeURIComponent(runId)}/series?${params}`);
      return { label: key, color: PALETTE[i % PALETTE.length], points: series.points, smoothed: series.smoothed };
    }));
    return lines;
  };
}

/** Series keys in chart groups: each metric with its splits overlaid, then the rest. */
function chartGroups(keys: string[]): { title: string; keys: string[]; section: string; log?: boolean }[] {
  const groups: { title: string; keys: string[]; section: string; log?: boolean }[] = [];
  const splits = ['train', 'val', 'test'];
  const byMetric = new Map<string, string[]>();
  const rest: string[] = [];
  for (const key of keys) {
    const [split, ...name] = key.split('.');
    if (splits.includes(split) && name.length) {
      const metric = name.join('.');
      byMetric.set(metric, [...(byMetric.get(metric) ?? []), key]);
    } else rest.push(key);
  }
  for (const [metric, members] of byMetric) {
    members.sort((a, b) => splits.indexOf(a.split('.')[0]) - splits.indexOf(b.split('.')[0]));
    groups.push({ title: metric, keys: members, section: 'curves' });
  }
  const grads = rest.filter((k) => k === 'grad_norm' || k.startsWith('grad_norm.'));
  if (grads.length) groups.push({ title: 'gradient norm per layer', keys: grads, section: 'gradients', log: true });
  for (const key of rest.filter((k) => !grads.includes(k))) {
    const section = key.startsWith('sys.') || key.startsWith('latency.') ? 'system' : 'curves';
    groups.push({ title: key, keys: [key], section });
  }
  return groups;
}

export async function runView(root: HTMLElement, runId: string, stop: AbortSignal): Promise<void> {
  const detail = await get<Detail>(`/api/runs/${encodeURIComponent(runId)}`);
  const run = detail.run;
  const view = loadView();
  const charts: { chart: Chart; keys: string[]; log?: boolean }[] = [];
  const sections: Record<string, HTMLElement> = {
    curves: h('div', { class: 'charts' }),
    system: h('div', { class: 'charts' }),
    gradients: h('div', { class: 'charts' }),
  };
  for (const group of chartGroups(Object.keys(detail.series))) {
    const chart = new Chart({
      title: group.title, xLabel: view.x, log: group.log || view.log,
      source: runSource(run.run_id, group.keys, view),
    });
    charts.push({ chart, keys: group.keys, log: group.log });
    sections[group.section].append(chart.element);
  }
  const redraw = () => {
    for (const { chart, keys, log } of charts) {
      chart.update({ log: log || view.log, xLabel: view.x, source: runSource(run.run_id, keys, view) });
    }
  };

  const monitor = run.monitor ? run.metrics[run.monitor.metric] : undefined;
  const live = h('span', { class: 'live' }, run.status === 'running' ? '● live' : '');
  const notes = notesSection(run.run_id, detail.notes);
  const diagnosis = h('section', { class: 'diagnosis' }, h('h2', {}, 'Diagnosis'), h('p', {}, 'reading…'));
  const predictions = h('section', { class: 'predictions' }, h('h2', {}, 'Predictions on the fixed batch, per epoch'));

  root.replaceChildren(
    h('section', { class: 'run-page' },
      h('div', { class: 'run-head' },
        h('h1', {}, run.name, ' ', badge(run.status), live),
        h('p', { class: 'muted' },
          `${run.run_id} · experiment ${run.experiment} · started ${when(run.started_at)}`,
          run.ended_at ? ` · ended ${when(run.ended_at)}` : '',
          run.reason ? ` · ${run.reason}` : ''),
        run.monitor && monitor
          ? h('p', { class: 'monitor' }, `best ${run.monitor.metric} `, h('strong', {}, num(monitor.best)),
            monitor.best_epoch !== null ? ` at epoch ${monitor.best_epoch}` : '')
          : null),
      viewControls(view, redraw),
      h('h2', {}, 'Curves'), sections.curves,
      h('h2', {}, 'System'), sections.system,
      h('h2', {}, 'Gradients'), sections.gradients,
      diagnosis,
      predictions,
      firstBatch(run.run_id, detail.artifacts),
      h('section', { class: 'side' },
        h('div', {}, h('h2', {}, 'Hyperparameters'), keyValues(run.params)),
        h('div', {}, h('h2', {}, 'Dataset'), keyValues(flatten(detail.dataset)),
          h('h2', {}, 'Checkpoints'), artifacts(run.run_id, detail.artifacts))),
      notes,
      h('details', {}, h('summary', {}, 'Resolved configuration'), h('pre', {}, JSON.stringify(detail.config, null, 2))),
      h('details', {}, h('summary', {}, 'Provenance and environment'),
        h('pre', {}, JSON.stringify({ seed: detail.seed, provenance: detail.provenance, environment: detail.environment }, null, 2)))),
  );

  void showDiagnosis(run.run_id, diagnosis, predictions);
  if (run.status === 'running') {
    const keys = Object.keys(detail.series).slice(0, 64).join(',');
    let pending = false;
    events(`/api/runs/${encodeURIComponent(run.run_id)}/stream?keys=${encodeURIComponent(keys)}`, (name) => {
      if (name === 'end') live.textContent = '';
      if (pending) return;
      pending = true;
      setTimeout(() => {
        pending = false;
        refreshMounted();
        if (name === 'end') void showDiagnosis(run.run_id, diagnosis, predictions);
      }, 1000);
    }, stop);
  }
  document.body.dataset.ready = 'run';
}

async function showDiagnosis(runId: string, into: HTMLElement, predictions: HTMLElement): Promise<void> {
  try {
    const diagnosis = await get<Diagnosis>(`/api/runs/${encodeURIComponent(runId)}/diagnosis`);
    into.replaceChildren(h('h2', {}, 'Diagnosis ', badge(diagnosis.status)),
      h('ul', { class: 'checks' }, ...diagnosis.checks.map((c) =>
        h('li', {}, badge(c.status), h('strong', {}, ` ${c.name} `), c.message, c.fix ? h('div', { class: 'fix' }, c.fix) : null))));
    const epochs = diagnosis.evidence.predictions;
    if (!epochs.length) {
      predictions.replaceChildren(h('h2', {}, 'Predictions on the fixed batch, per epoch'), h('p', { class: 'muted' }, 'none recorded'));
      return;
    }
    const grid = h('table', { class: 'prediction-grid' },
      h('tr', {}, h('th', {}, 'epoch'), ...epochs[0].targets.map((t, i) => h('th', { title: `sample ${i}` }, String(t)))),
      ...epochs.map((e) => h('tr', {}, h('th', {}, String(e.epoch)), ...e.predicted.map((p, i) => {
        const probability = e.true_class_probability?.[i];
        const right = p === e.targets[i];
        const td = h('td', { class: right ? 'right' : 'wrong', title: probability === undefined ? '' : `p(true) = ${num(probability)}` }, num(p));
        if (probability !== undefined) td.style.opacity = String(0.35 + 0.65 * probability);
        return td;
      }))));
    predictions.replaceChildren(h('h2', {}, 'Predictions on the fixed batch, per epoch'),
      h('p', { class: 'muted' }, 'Header: the true labels. Cells: the prediction, green when right, shaded by the probability given to the true class.'),
      grid);
  } catch (problem) {
    into.replaceChildren(h('h2', {}, 'Diagnosis'), h('p', { class: 'error' }, (problem as Error).message));
  }
}

/** The first training batch as the network saw it (after normalization and augmentation). */
function firstBatch(runId: string, list: Detail['artifacts']): HTMLElement | null {
  const picture = [...list].reverse().find((a) => a.kind === 'first_batch');
  if (!picture) return null;
  const image = h('img', { class: 'first-batch', alt: 'the first training batch as the network sees it' });
  void objectUrl(`/api/runs/${encodeURIComponent(runId)}/artifacts/${picture.index}`).then((url) => {
    image.src = url;
  });
  return h('section', { class: 'first-batch' }, h('h2', {}, 'The first batch, as the network sees it'), image);
}

function flatten(value: Record<string, unknown>, prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value ?? {})) {
    if (inner && typeof inner === 'object' && !Array.isArray(inner)) Object.assign(out, flatten(inner as Record<string, unknown>, `${prefix}${key}.`));
    else out[`${prefix}${key}`] = Array.isArray(inner) ? JSON.stringify(inner) : inner;
  }
  return out;
}

function keyValues(values: Record<string, unknown>): HTMLElement {
  return h('table', { class: 'kv' }, ...Object.entries(values).map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, num(v)))));
}

function artifacts(runId: string, list: Detail['artifacts']): HTMLElement {
  if (!list.length) return h('p', { class: 'muted' }, 'none');
  return h('ul', { class: 'artifacts' }, ...list.filter((a) => a.kind !== 'checkpoint.deleted').map((a) =>
    h('li', {}, h('button', {
      class: 'link', onclick: () => void download(`/api/runs/${encodeURIComponent(runId)}/artifacts/${a.index}`, `${runId}-${a.kind}-${a.index}`),
    }, `${a.kind} #${a.index}`), ` ${bytes(a.bytes)}`)));
}

/** The run's notes: what training said (info, warnings) and what people wrote. A person's
 *  latest note can be edited: saving keeps the earlier text as a previous version (notes are
 *  never overwritten in the store), so nothing written is lost. */
function notesSection(runId: string, initial: Detail['notes']): HTMLElement {
  const list = h('div', { class: 'notes-list' });
  const text = h('textarea', { rows: 3, placeholder: 'Write a note (Markdown)…', class: 'note-editor' });
  const draw = (notes: Detail['notes']) => {
    const written = notes.filter((n) => n.kind === 'note');
    const latest = written[written.length - 1];
    list.replaceChildren(...notes.filter((n) => n !== latest || !latest).map((n) =>
      h('div', { class: `note ${n.kind}` }, h('div', { class: 'muted' }, `${when(n.created_at)} · ${n.kind === 'note' ? 'earlier version' : n.kind}`), markdown(n.body))));
    if (latest) {
      list.append(h('div', { class: 'note current' },
        h('div', { class: 'muted' }, `${when(latest.created_at)} · note `,
          h('button', { class: 'link edit-note', onclick: () => { text.value = latest.body; text.focus(); } }, 'edit')),
        markdown(latest.body)));
    }
  };
  draw(initial);
  const status = h('span', { class: 'muted' });
  const save = h('button', {
    class: 'save-note',
    onclick: async () => {
      if (!text.value.trim()) return;
      try {
        await post(`/api/runs/${encodeURIComponent(runId)}/notes`, { markdown: text.value });
        text.value = '';
        const fresh = await get<Detail>(`/api/runs/${encodeURIComponent(runId)}`);
        draw(fresh.notes);
        status.textContent = 'saved';
      } catch (problem) {
        status.textContent = (problem as Error).message;
      }
    },
  }, 'Save note');
  return h('section', { class: 'notes' }, h('h2', {}, 'Notes'), list, text, h('div', {}, save, ' ', status));
}
