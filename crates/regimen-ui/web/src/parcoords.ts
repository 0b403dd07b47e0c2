// Parallel coordinates: one vertical axis per parameter (log axes for log parameters, categories
// spread evenly) and the metric last; each run or trial a line coloured by the metric.

import { h, num } from './util';

export interface Axis {
  name: string;
  log?: boolean;
  /** Categories in order, for text values. */
  categories?: string[];
}

export interface Item {
  values: Record<string, number | string | null | undefined>;
  metric: number | null;
}

/** Draws `items` over `axes` and the metric on a canvas; better metric values are darker. */
export function parallelCoordinates(axes: Axis[], items: Item[], metricName: string, higherIsBetter: boolean): HTMLElement {
  const width = Math.max(480, 140 * (axes.length + 1));
  const height = 300;
  const canvas = h('canvas', { width, height, class: 'parcoords', 'aria-label': 'parallel coordinates' });
  const context = canvas.getContext('2d');
  if (!context) return canvas;
  const all = [...axes, { name: metricName }];
  const scale = all.map((axis, i) => {
    if ('categories' in axis && axis.categories) {
      const cats = axis.categories;
      return (v: unknown) => (cats.length < 2 ? 0.5 : cats.indexOf(String(v)) / (cats.length - 1));
    }
    const read = (v: unknown) => (typeof v === 'number' ? v : Number(v));
    const values = (i === axes.length ? items.map((t) => t.metric) : items.map((t) => t.values[axis.name]))
      .map(read).filter((v) => Number.isFinite(v) && (!('log' in axis && axis.log) || v > 0));
    const f = (v: number) => ('log' in axis && axis.log ? Math.log(v) : v);
    const low = Math.min(...values.map(f));
    const high = Math.max(...values.map(f));
    return (v: unknown) => {
      const x = read(v);
      if (!Number.isFinite(x)) return null;
      return high > low ? (f(x) - low) / (high - low) : 0.5;
    };
  });
  const left = 50;
  const step = (width - 2 * left) / Math.max(1, all.length - 1);
  const y = (t: number) => height - 30 - t * (height - 60);
  const metrics = items.map((t) => t.metric).filter((m): m is number => m !== null && Number.isFinite(m));
  const [lo, hi] = [Math.min(...metrics), Math.max(...metrics)];
  const sorted = [...items].sort((a, b) => {
    const ga = a.metric === null ? -1 : (higherIsBetter ? a.metric - lo : hi - a.metric);
    const gb = b.metric === null ? -1 : (higherIsBetter ? b.metric - lo : hi - b.metric);
    return ga - gb;
  });
  for (const item of sorted) {
    const goodness = item.metric === null || hi === lo ? 0.5 : (higherIsBetter ? item.metric - lo : hi - item.metric) / (hi - lo);
    context.strokeStyle = `hsla(${220 - 200 * goodness}, 70%, ${60 - 25 * goodness}%, ${0.25 + 0.6 * goodness})`;
    context.lineWidth = 1 + goodness;
    context.beginPath();
    let started = false;
    all.forEach((axis, i) => {
      const t = scale[i](i === axes.length ? item.metric : item.values[axis.name]);
      if (t === null) return;
      if (started) context.lineTo(left + i * step, y(t));
      else context.moveTo(left + i * step, y(t));
      started = true;
    });
    context.stroke();
  }
  context.fillStyle = '#222';
  context.font = '12px system-ui, sans-serif';
  context.textAlign = 'center';
  all.forEach((axis, i) => {
    const x = left + i * step;
    context.strokeStyle = '#999';
    context.lineWidth = 1;
    context.beginPath();
    context.moveTo(x, y(0));
    context.lineTo(x, y(1));
    context.stroke();
    const label = `${axis.name}${'log' in axis && axis.log ? ' (log)' : ''}`;
    context.fillText(label, x, 16);
    if (i === axes.length && metrics.length) {
      context.fillText(num(lo), x, height - 12);
    }
  });
  return canvas;
}
