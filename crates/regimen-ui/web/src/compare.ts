// Several runs side by side: any metric overlaid with a legend by run name or by a parameter,
// runs that differ only in one parameter (seeds) grouped into their mean with a min-max band, the
// hyperparameters that differ, and parallel coordinates of parameters against a metric.

import { type Run, type RunsPage, get } from './api';
import { Chart, type Line, type Points } from './chart';
import { type Axis, parallelCoordinates } from './parcoords';
import { loadView, viewControls } from './run';
import { PALETTE, h, num } from './util';

interface CompareLine {
  runs: string[];
  label: string;
  mean: { points: Points };
  low: { points: Points } | null;
  high: { points: Points } | null;
}

export async function compareView(root: HTMLElement, query: URLSearchParams): Promise<void> {
  const ids = (query.get('runs') ?? '').split(',').filter(Boolean);
  if (!ids.length) {
    root.replaceChildren(h('p', {}, 'Select runs in the table, then Compare.'));
    return;
  }
  const filter = ids.map((id) => `run_id = '${id.replace(/'/g, '')}'`).join(' or ');
  const page = await get<RunsPage>(`/api/runs?limit=1000&filter=${encodeURIComponent(filter)}`);
  const runs = page.runs;
  const view = loadView();
  const metricKeys = [...new Set(runs.flatMap((r) => Object.keys(r.metrics)))].sort();
  const paramKeys = [...new Set(runs.flatMap((r) => Object.keys(r.params)))].sort();
  const differing = paramKeys.filter((k) => new Set(runs.map((r) => JSON.stringify(r.params[k] ?? null))).size > 1);
  const preferred = ['val.loss', 'val.acc', 'val.macro_f1', 'train.loss'].find((k) => metricKeys.includes(k)) ?? metricKeys[0];
  let metric = query.get('metric') ?? preferred ?? '';
  let group = query.get('group') ?? '';
  let legend = query.get('legend') ?? 'name';

  const metricSelect = h('select', { class: 'metric' }, ...metricKeys.map((k) => h('option', { value: k }, k)));
  metricSelect.value = metric;
  const groupSelect = h('select', { class: 'group-by' }, h('option', { value: '' }, 'no grouping'),
    ...differing.map((k) => h('option', { value: `params.${k}` }, `group ${k} into a band`)));
  groupSelect.value = group;
  const legendSelect = h('select', { class: 'legend-by' }, h('option', { value: 'name' }, 'legend: run name'),
    ...differing.map((k) => h('option', { value: k }, `legend: ${k}`)));
  legendSelect.value = legend;

  const labelOf = (line: CompareLine) => {
    if (group) {
      // A group is named by what sets it apart from the other groups, not every shared value.
      const first = runs.find((r) => r.run_id === line.runs[0]);
      const apart = differing.filter((k) => `params.${k}` !== group);
      const name = first && apart.length ? apart.map((k) => `${k}=${num(first.params[k])}`).join(' ') : 'all runs';
      return `${name} · ${line.runs.length} runs`;
    }
    if (legend === 'name') return line.label;
    const run = runs.find((r) => r.run_id === line.runs[0]);
    return run ? `${legend}=${num(run.params[legend])}` : line.label;
  };
  const chart = new Chart({
    title: metric, xLabel: view.x, log: view.log, height: 360,
    source: async (range, buckets) => {
      const params = new URLSearchParams({ runs: ids.join(','), key: metric, x: view.x, buckets: String(buckets) });
      if (group) params.set('group', group);
      if (range.from !== undefined) params.set('from', String(range.from));
      if (range.to !== undefined) params.set('to', String(range.to));
      const answer = await get<{ lines: CompareLine[] }>(`/api/compare?${params}`);
      return answer.lines.map((line, i): Line => ({
        label: labelOf(line), color: PALETTE[i % PALETTE.length], points: line.mean.points,
        band: line.low && line.high ? { low: line.low.points, high: line.high.points } : undefined,
      }));
    },
  });
  const redraw = () => {
    chart.update({ title: metric, xLabel: view.x, log: view.log });
    const next = new URLSearchParams({ runs: ids.join(','), metric, legend });
    if (group) next.set('group', group);
    history.replaceState(null, '', `#/compare?${next}`);
  };
  metricSelect.addEventListener('change', () => {
    metric = metricSelect.value;
    redraw();
    drawParallel();
  });
  groupSelect.addEventListener('change', () => {
    group = groupSelect.value;
    redraw();
  });
  legendSelect.addEventListener('change', () => {
    legend = legendSelect.value;
    redraw();
  });

  const parallel = h('div', { class: 'parallel' });
  const drawParallel = () => {
    const axes: Axis[] = differing.map((name) => {
      const values = runs.map((r) => r.params[name]);
      const numeric = values.every((v) => typeof v === 'number');
      const positive = numeric && values.every((v) => (v as number) > 0);
      const spread = positive ? Math.max(...(values as number[])) / Math.min(...(values as number[])) : 1;
      return numeric ? { name, log: spread >= 100 } : { name, categories: [...new Set(values.map(String))].sort() };
    });
    // The store decided each metric's direction: its best is its max when higher is better.
    const higher = runs.some((r) => {
      const s = r.metrics[metric];
      return s !== undefined && s.best !== null && s.best === s.max && s.best !== s.min;
    });
    parallel.replaceChildren(parallelCoordinates(axes, runs.map((r) => ({
      values: r.params, metric: r.metrics[metric]?.best ?? r.metrics[metric]?.last ?? null,
    })), metric, higher));
  };
  drawParallel();

  root.replaceChildren(h('section', { class: 'compare-page' },
    h('h1', {}, `Comparing ${runs.length} runs`),
    h('div', { class: 'toolbar' }, metricSelect, groupSelect, legendSelect),
    viewControls(view, redraw, false),
    chart.element,
    h('h2', {}, 'Hyperparameters that differ'),
    diffTable(runs, differing),
    h('h2', {}, 'Parameters against the metric'),
    parallel));
  document.body.dataset.ready = 'compare';
}

function diffTable(runs: Run[], keys: string[]): HTMLElement {
  if (!keys.length) return h('p', { class: 'muted' }, 'The runs have the same hyperparameters.');
  return h('table', { class: 'diff' },
    h('tr', {}, h('th', {}, 'run'), ...keys.map((k) => h('th', {}, k))),
    ...runs.map((r) => h('tr', {}, h('th', {}, h('a', { href: `#/run/${encodeURIComponent(r.run_id)}` }, r.name)),
      ...keys.map((k) => h('td', {}, num(r.params[k]))))));
}
