// Sweeps: the list, and a sweep's page: its trials with states and rungs, the best value so far,
// each parameter's importance, parallel coordinates and a scatter per parameter on its own scale,
// where it was zoomed from and into, and controls to stop the sweep or one trial.

import { get, post } from './api';
import { Chart, type Points } from './chart';
import { type Axis, parallelCoordinates } from './parcoords';
import { badge, h, num } from './util';

interface SweepRow {
  sweep_id: string;
  name: string;
  parent: string | null;
  status: string;
  created_at: string | number;
  counts: Record<string, number>;
}

interface Trial {
  number: number;
  run_id: string | null;
  state: string;
  params: Record<string, number | string>;
  value: number | null;
  epochs: number;
  rungs: [number, number][];
  feasible: boolean;
  message: string | null;
}

interface Scale {
  kind: 'float' | 'int' | 'categorical' | 'fixed';
  low?: number;
  high?: number;
  log?: boolean;
  choices?: string[];
}

interface Report {
  sweep_id: string;
  name: string;
  status: string;
  objective: string;
  mode: string;
  trials: Trial[];
  trials_by_state: Record<string, number>;
  best: { number: number; value: number; run_id: string | null } | null;
  budget: { saved_fraction: number; epochs_trained: number };
  importance: Record<string, number>;
  space: Record<string, Scale>;
  parent: string | null;
  zoom: unknown;
}

const counts = (c: Record<string, number>) => Object.entries(c).map(([k, v]) => `${v} ${k}`).join(' · ');

export async function sweepsView(root: HTMLElement): Promise<void> {
  const { sweeps } = await get<{ sweeps: SweepRow[] }>('/api/sweeps');
  root.replaceChildren(h('section', { class: 'sweeps' }, h('h1', {}, 'Sweeps'),
    sweeps.length
      ? h('table', { class: 'list' },
        h('tr', {}, h('th', {}, 'name'), h('th', {}, 'status'), h('th', {}, 'trials'), h('th', {}, 'from'), h('th', {}, 'id')),
        ...sweeps.map((s) => h('tr', {},
          h('td', {}, h('a', { href: `#/sweep/${encodeURIComponent(s.sweep_id)}`, class: 'sweep-link' }, s.name)),
          h('td', {}, badge(s.status)), h('td', {}, counts(s.counts)),
          h('td', {}, s.parent ? h('a', { href: `#/sweep/${encodeURIComponent(s.parent)}` }, s.parent) : ''),
          h('td', { class: 'muted' }, s.sweep_id))))
      : h('p', { class: 'muted' }, 'No sweeps yet: `regimen sweep run sweep.toml` starts one.')));
  document.body.dataset.ready = 'sweeps';
}

export async function sweepView(root: HTMLElement, id: string): Promise<void> {
  const [report, { sweeps }] = await Promise.all([
    get<Report>(`/api/sweeps/${encodeURIComponent(id)}`),
    get<{ sweeps: SweepRow[] }>('/api/sweeps'),
  ]);
  const higher = report.mode === 'max';
  const searched = Object.entries(report.space).filter(([, s]) => s.kind !== 'fixed');
  const finished = report.trials.filter((t) => t.value !== null).sort((a, b) => a.number - b.number);
  const children = sweeps.filter((s) => s.parent === report.sweep_id);
  const status = h('span', {}, badge(report.status));
  const stop = h('button', {
    class: 'stop-sweep', disabled: report.status !== 'active',
    onclick: async () => {
      if (!confirm(`Stop sweep ${report.name}? Running trials checkpoint and stop.`)) return;
      await post(`/api/sweeps/${encodeURIComponent(report.sweep_id)}/stop`, {});
      status.replaceChildren(badge('stopped'));
      stop.disabled = true;
    },
  }, 'Stop sweep');

  const bestSoFar: Points = [];
  let best: number | null = null;
  for (const t of finished) {
    const v = t.value as number;
    best = best === null ? v : higher ? Math.max(best, v) : Math.min(best, v);
    bestSoFar.push([t.number, best]);
  }
  const progress = new Chart({
    title: `best ${report.objective} so far`, xLabel: 'trial',
    source: async () => [{ label: report.objective, color: '#1f77b4', points: finished.map((t) => [t.number, t.value] as [number, number | null]), smoothed: bestSoFar }],
  });

  const axes: Axis[] = searched.map(([name, s]) => (s.kind === 'categorical' ? { name, categories: s.choices } : { name, log: !!s.log }));
  const items = report.trials.map((t) => ({
    values: Object.fromEntries(Object.entries(t.params).map(([k, v]) => [k, report.space[k]?.kind === 'categorical' ? JSON.stringify(v) : v])),
    metric: t.value,
  }));
  const importance = Object.entries(report.importance).sort((a, b) => b[1] - a[1]);

  root.replaceChildren(h('section', { class: 'sweep-page' },
    h('h1', {}, report.name, ' ', status, ' ', stop),
    h('p', { class: 'muted' }, `${report.sweep_id} · objective ${report.objective} (${report.mode}) · ${counts(report.trials_by_state)}`,
      ` · early termination saved ${(100 * report.budget.saved_fraction).toFixed(0)}% of epochs`),
    report.best ? h('p', { class: 'monitor' }, `best: trial ${report.best.number}, ${report.objective} `, h('strong', {}, num(report.best.value)),
      report.best.run_id ? [' · ', h('a', { href: `#/run/${encodeURIComponent(report.best.run_id)}` }, 'its run')] : null) : null,
    h('p', { class: 'lineage' },
      report.parent ? ['zoomed from ', h('a', { href: `#/sweep/${encodeURIComponent(report.parent)}` }, report.parent)] : null,
      children.length ? [report.parent ? ' · ' : '', 'zoomed into ', ...children.map((c) => h('a', { href: `#/sweep/${encodeURIComponent(c.sweep_id)}` }, `${c.name} `))] : null),
    progress.element,
    h('h2', {}, 'Which parameters matter'),
    h('div', { class: 'importance' }, ...importance.map(([name, share]) =>
      h('div', { class: 'bar' }, h('span', {}, name), h('meter', { min: 0, max: 1, value: String(share) }), h('span', {}, num(share))))),
    h('h2', {}, 'Parameters against the objective'),
    parallelCoordinates(axes, items, report.objective, higher),
    h('div', { class: 'scatters' }, ...searched.map(([name, scale]) => scatter(name, scale, report.trials, higher))),
    h('h2', {}, 'Trials'),
    trialsTable(report),
  ));
  document.body.dataset.ready = 'sweep';
}

/** The objective against one parameter, on the parameter's own scale. */
function scatter(name: string, scale: Scale, trials: Trial[], higher: boolean): HTMLElement {
  const [width, height, pad] = [260, 180, 30];
  const canvas = h('canvas', { width, height, class: 'scatter', title: name });
  const context = canvas.getContext('2d');
  const done = trials.filter((t) => t.value !== null && Number.isFinite(t.value));
  if (!context || !done.length) return h('figure', {}, canvas, h('figcaption', {}, name));
  const categories = scale.kind === 'categorical' ? scale.choices ?? [] : null;
  const f = (v: number) => (scale.log && v > 0 ? Math.log(v) : v);
  const xs = done.map((t) => t.params[name]);
  const numeric = xs.filter((v): v is number => typeof v === 'number').map(f);
  const [xlo, xhi] = categories ? [0, Math.max(1, categories.length - 1)] : [Math.min(...numeric), Math.max(...numeric)];
  const ys = done.map((t) => t.value as number);
  const [ylo, yhi] = [Math.min(...ys), Math.max(...ys)];
  const px = (v: unknown) => {
    const x = categories ? categories.indexOf(JSON.stringify(v)) : typeof v === 'number' ? f(v) : NaN;
    return pad + (xhi > xlo ? (x - xlo) / (xhi - xlo) : 0.5) * (width - 2 * pad);
  };
  const py = (v: number) => height - pad - (yhi > ylo ? (v - ylo) / (yhi - ylo) : 0.5) * (height - 2 * pad);
  const bestValue = higher ? yhi : ylo;
  for (const t of done) {
    context.fillStyle = t.value === bestValue ? '#d62728' : t.state === 'pruned' ? '#aaa' : '#1f77b4';
    context.beginPath();
    context.arc(px(t.params[name]), py(t.value as number), 3.5, 0, 2 * Math.PI);
    context.fill();
  }
  context.fillStyle = '#444';
  context.font = '11px system-ui, sans-serif';
  context.fillText(num(yhi), 2, pad - 4);
  context.fillText(num(ylo), 2, height - pad + 12);
  return h('figure', {}, canvas, h('figcaption', {}, `${name}${scale.log ? ' (log scale)' : ''}`));
}

function trialsTable(report: Report): HTMLElement {
  const names = Object.keys(report.space);
  return h('table', { class: 'trials' },
    h('tr', {}, h('th', {}, '#'), h('th', {}, 'state'), ...names.map((n) => h('th', {}, n)), h('th', {}, report.objective),
      h('th', {}, 'epochs'), h('th', {}, 'rungs'), h('th', {}, 'run'), h('th', {})),
    ...report.trials.map((t) => {
      const state = h('td', {}, badge(t.state));
      const stop = ['running', 'paused', 'stale'].includes(t.state)
        ? h('button', {
          class: 'stop-trial',
          onclick: async () => {
            await post(`/api/sweeps/${encodeURIComponent(report.sweep_id)}/trials/${t.number}/stop`, {});
            state.replaceChildren(badge('pruned'));
            stop?.remove();
          },
        }, 'Stop')
        : null;
      return h('tr', { class: t.feasible ? '' : 'infeasible', title: t.message ?? '' },
        h('td', {}, String(t.number)), state,
        ...names.map((n) => h('td', { class: 'numeric' }, num(t.params[n]))),
        h('td', { class: 'numeric' }, num(t.value)), h('td', { class: 'numeric' }, String(t.epochs)),
        h('td', { class: 'muted' }, t.rungs.map(([at, v]) => `${at}:${num(v)}`).join(' ')),
        h('td', {}, t.run_id ? h('a', { href: `#/run/${encodeURIComponent(t.run_id)}` }, t.run_id) : ''),
        h('td', {}, stop));
    }));
}

