// Line charts on uPlot (about 50 KB, draws hundreds of thousands of points in tens of
// milliseconds on a canvas). A chart is mounted only while it is on screen, asks the server for
// about two points per pixel of the visible range, and asks again when zoomed; the server keeps
// every bucket's extremes, so a spike is drawn at every zoom level.

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { PALETTE, h, num } from './util';

export type Points = [number, number | null][];

/** One line: a run's series (with its smoothed version), or a group's mean with its band. */
export interface Line {
  label: string;
  color: string;
  points: Points;
  /** Drawn bold over `points`, which are then drawn faint. */
  smoothed?: Points;
  band?: { low: Points; high: Points };
}

/** Fetches the lines for the visible range (`undefined`: everything) at `buckets` buckets. */
export type Source = (range: { from?: number; to?: number }, buckets: number) => Promise<Line[]>;

export interface ChartOptions {
  title: string;
  source: Source;
  xLabel: string;
  log?: boolean;
  height?: number;
}

const mounted = new Set<Chart>();
const visibility = new IntersectionObserver(
  (entries) => {
    for (const entry of entries) {
      const chart = (entry.target as HTMLElement & { chart?: Chart }).chart;
      if (!chart) continue;
      if (entry.isIntersecting) void chart.mount();
      else chart.unmount();
    }
  },
  { rootMargin: '200px' },
);

/** A chart in a box; `element` goes into the page. */
export class Chart {
  readonly element: HTMLElement;
  private readonly body: HTMLElement;
  private readonly note: HTMLElement;
  private readonly legend: HTMLElement;
  private plot: uPlot | null = null;
  private range: { from?: number; to?: number } = {};
  private request = 0;
  private zoomTimer: number | undefined;
  lines: Line[] = [];

  constructor(private options: ChartOptions) {
    this.body = h('div', { class: 'plot' });
    this.note = h('span', { class: 'chart-note' });
    this.legend = h('span', { class: 'legend' });
    this.element = h('figure', { class: 'chart', 'data-title': options.title },
      h('figcaption', {}, h('strong', {}, options.title), this.note, this.legend),
      this.body);
    this.body.style.height = `${options.height ?? 220}px`;
    (this.element as HTMLElement & { chart?: Chart }).chart = this;
    visibility.observe(this.element);
  }

  /** Changes options (log scale, source) and draws again if on screen. */
  update(changes: Partial<ChartOptions>): void {
    this.options = { ...this.options, ...changes };
    if (this.plot) void this.refresh();
  }

  /** Fetches and draws, when on screen. */
  async mount(): Promise<void> {
    mounted.add(this);
    await this.refresh();
  }

  /** Frees the canvas of a chart scrolled away. */
  unmount(): void {
    mounted.delete(this);
    this.plot?.destroy();
    this.plot = null;
  }

  /** Fetches the current range again (live runs, new options). */
  async refresh(): Promise<void> {
    if (!mounted.has(this)) return;
    const request = ++this.request;
    const width = Math.max(200, this.body.clientWidth);
    let lines: Line[];
    try {
      lines = await this.options.source(this.range, width * 2 > 4000 ? 4000 : Math.round(width * 2));
    } catch (problem) {
      this.note.textContent = ` · ${(problem as Error).message}`;
      return;
    }
    if (request !== this.request || !mounted.has(this)) return;
    this.lines = lines;
    this.draw(width);
  }

  private draw(width: number): void {
    const log = !!this.options.log;
    const clean = (points: Points): Points =>
      log ? points.map(([x, y]) => [x, y !== null && y > 0 ? y : null]) : points;
    const tables: uPlot.AlignedData[] = [];
    const series: uPlot.Series[] = [{ label: this.options.xLabel }];
    const bands: uPlot.Band[] = [];
    let index = 1;
    for (const line of this.lines) {
      const add = (points: Points, s: uPlot.Series) => {
        const xs = points.map((p) => p[0]);
        const ys = clean(points).map((p) => p[1]);
        tables.push([xs, ys] as unknown as uPlot.AlignedData);
        series.push(s);
        return index++;
      };
      if (line.band) {
        const high = add(line.band.high, { label: `${line.label} max`, stroke: `${line.color}66`, width: 0.5, points: { show: false } });
        const low = add(line.band.low, { label: `${line.label} min`, stroke: `${line.color}66`, width: 0.5, points: { show: false } });
        bands.push({ series: [high, low], fill: `${line.color}33` });
      }
      if (line.smoothed) {
        add(line.points, { label: `${line.label} (raw)`, stroke: `${line.color}40`, width: 1, spanGaps: true });
        add(line.smoothed, { label: line.label, stroke: line.color, width: 2, spanGaps: true });
      } else {
        add(line.points, { label: line.label, stroke: line.color, width: 1.5, spanGaps: true });
      }
    }
    const total = this.lines.reduce((n, l) => n + l.points.length, 0);
    this.note.textContent = total ? '' : ' · no points yet';
    // One entry per line (its raw and smoothed versions, or mean and band, are one line).
    this.legend.replaceChildren(...this.lines.map((line) =>
      h('span', { class: 'entry', 'data-line': line.label }, h('i', { class: `c${PALETTE.indexOf(line.color)}` }), line.label,
        line.band ? ' (mean, min–max band)' : '')));
    const data = tables.length ? uPlot.join(tables) : ([[]] as unknown as uPlot.AlignedData);
    this.plot?.destroy();
    this.plot = null;
    this.body.replaceChildren();
    const opts: uPlot.Options = {
      width,
      height: (this.options.height ?? 220) - 8,
      series,
      bands,
      scales: { x: { time: false }, y: log ? { distr: 3 } : {} },
      axes: [{ label: undefined }, { values: (_u, ticks) => ticks.map(num), size: 60 }],
      legend: { show: false },
      cursor: { drag: { x: true, y: false } },
      hooks: {
        setSelect: [
          (u) => {
            if (u.select.width < 3) return;
            const from = u.posToVal(u.select.left, 'x');
            const to = u.posToVal(u.select.left + u.select.width, 'x');
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            this.zoom({ from, to });
          },
        ],
      },
    };
    this.plot = new uPlot(opts, data, this.body);
    this.plot.over.addEventListener('dblclick', () => this.zoom({}));
  }

  /** Shows `range` (empty: everything), fetched again at full resolution for it. */
  zoom(range: { from?: number; to?: number }): void {
    this.range = range;
    window.clearTimeout(this.zoomTimer);
    this.zoomTimer = window.setTimeout(() => void this.refresh(), 50);
  }
}

/** Refreshes every chart on screen (a live run wrote points). */
export function refreshMounted(): void {
  for (const chart of mounted) void chart.refresh();
}

/** Forgets the charts of a page that was left. */
export function dropAll(): void {
  for (const chart of [...mounted]) {
    chart.unmount();
    visibility.unobserve(chart.element);
  }
}
