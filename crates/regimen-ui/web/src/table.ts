// The runs table: every run of the store, one page of rows fetched at a time as it scrolls (only
// the rows on screen are in the page), filtered and sorted by the server with `regimen runs`'
// language, with the columns the user chose, grouped by a parameter or tag, selectable for
// comparison.

import { type Run, type RunsPage, get } from './api';
import { badge, h, num, when } from './util';

const ROW = 30;
const PAGE = 200;

/** A column: a run attribute, `params.KEY`, `tags.KEY` or `metrics.KEY.best|last|min|max`. */
type Column = string;

const ATTRIBUTES: Column[] = ['status', 'name', 'experiment', 'dataset', 'started_at'];
const SORTABLE_ATTRIBUTES = new Set(['status', 'name', 'experiment']);

interface TableState {
  filter: string;
  sort: string;
  group: string;
  columns: Column[];
}

const STATE_KEY = 'regimen-table';

function loadState(): TableState {
  try {
    const saved = JSON.parse(localStorage.getItem(STATE_KEY) ?? 'null');
    if (saved && Array.isArray(saved.columns)) return saved as TableState;
  } catch {
    // A damaged saved state: start over.
  }
  return { filter: '', sort: '-started_at', group: '', columns: [] };
}

function cell(run: Run, column: Column): string {
  if (column === 'started_at') return when(run.started_at);
  if (column === 'dataset') return run.dataset ?? '';
  if (ATTRIBUTES.includes(column)) return String((run as unknown as Record<string, unknown>)[column] ?? '');
  if (column.startsWith('params.')) return num(run.params[column.slice(7)]);
  if (column.startsWith('tags.')) return run.tags[column.slice(5)] ?? '';
  const match = /^metrics\.(.+)\.(best|last|min|max)$/.exec(column);
  if (match) {
    const summary = run.metrics[match[1]];
    return summary ? num(summary[match[2] as 'best']) : '';
  }
  return '';
}

/** The columns a new user sees: the hyperparameters and metrics that most runs have. */
function defaultColumns(keys: { params: string[]; metrics: string[] }): Column[] {
  const params = ['model', 'lr', 'batch_size', 'optimizer', 'weight_decay', 'epochs', 'seed'].filter((k) => keys.params.includes(k));
  const metrics: Column[] = [];
  for (const key of ['val.acc', 'val.macro_f1', 'val.loss', 'val.r2', 'val.mse']) {
    if (keys.metrics.includes(key)) metrics.push(`metrics.${key}.best`);
  }
  if (keys.metrics.includes('train.loss')) metrics.push('metrics.train.loss.last');
  return ['status', 'name', 'experiment', 'dataset', ...params.map((p) => `params.${p}`), ...metrics.slice(0, 4), 'started_at'];
}

function sortField(column: Column): string | null {
  if (SORTABLE_ATTRIBUTES.has(column)) return column;
  if (column.startsWith('params.') || column.startsWith('tags.')) return column;
  if (column.startsWith('metrics.')) return column.endsWith('.best') ? column.slice(0, -5) : column;
  return null;
}

export async function runsView(root: HTMLElement): Promise<void> {
  const state = loadState();
  const keys = await get<{ params: string[]; metrics: string[]; tags: string[] }>('/api/keys');
  if (!state.columns.length) state.columns = defaultColumns(keys);
  const selected = new Set<string>();
  const pages = new Map<number, Promise<RunsPage>>();
  let total = 0;
  let groups: { value: string; count: number }[] = [];

  const save = () => localStorage.setItem(STATE_KEY, JSON.stringify(state));
  const error = h('div', { class: 'error', role: 'alert' });
  const filter = h('input', {
    type: 'search', class: 'filter', value: state.filter, spellcheck: false,
    placeholder: "filter: params.lr < 0.01 and metrics.val.acc > 0.9 and status = 'finished'",
  });
  const groupSelect = h('select', { class: 'group', title: 'group by' },
    h('option', { value: '' }, 'no grouping'),
    ...keys.params.map((k) => h('option', { value: `params.${k}` }, `params.${k}`)),
    ...keys.tags.map((k) => h('option', { value: `tags.${k}` }, `tags.${k}`)));
  groupSelect.value = state.group;
  const compare = h('button', { class: 'compare', disabled: true }, 'Compare');
  const count = h('span', { class: 'count' });
  const groupBar = h('div', { class: 'groups' });
  const header = h('div', { class: 'thead' });
  const spacer = h('div', { class: 'spacer' });
  const body = h('div', { class: 'tbody' }, spacer);
  const chooser = columnChooser(keys, state, () => {
    save();
    renderHeader();
    reload();
  });

  root.replaceChildren(
    h('section', { class: 'runs' },
      h('div', { class: 'toolbar' }, filter, groupSelect, chooser, compare, count),
      error, groupBar,
      h('div', { class: 'table' }, header, body)),
  );

  const template = () => `2rem ${state.columns.map((c) => (c === 'name' ? 'minmax(12rem, 2fr)' : 'minmax(7rem, 1fr)')).join(' ')}`;

  function renderHeader() {
    header.style.gridTemplateColumns = template();
    // Wide tables scroll sideways as one: the header and the rows share a minimum width.
    const width = `${2 + state.columns.reduce((sum, c) => sum + (c === 'name' ? 12 : 7), 0)}rem`;
    header.style.minWidth = width;
    body.style.minWidth = width;
    header.replaceChildren(h('span', {}),
      ...state.columns.map((column) => {
        const field = sortField(column);
        const active = state.sort === field ? ' ▲' : state.sort === `-${field}` ? ' ▼' : '';
        return h('span', {
          class: field ? 'sortable' : '', title: column, 'data-column': column,
          onclick: () => {
            if (!field) return;
            state.sort = state.sort === field ? `-${field}` : field;
            save();
            renderHeader();
            reload();
          },
        }, column.replace(/^metrics\./, '').replace(/^params\./, '') + active);
      }));
  }

  function query(offset: number): string {
    const params = new URLSearchParams({ offset: String(offset), limit: String(PAGE) });
    if (state.filter.trim()) params.set('filter', state.filter);
    const sort = [state.group, state.sort === '-started_at' ? '' : state.sort].filter(Boolean).join(',');
    if (sort) params.set('sort', sort);
    const fields = state.columns.filter((c) => c.startsWith('params.') || c.startsWith('metrics.'))
      .map((c) => c.replace(/\.(best|last|min|max)$/, ''));
    if (state.group.startsWith('params.')) fields.push(state.group);
    params.set('fields', fields.join(','));
    if (state.group) params.set('group', state.group);
    return `/api/runs?${params}`;
  }

  function page(index: number): Promise<RunsPage> {
    let pending = pages.get(index);
    if (!pending) {
      pending = get<RunsPage>(query(index * PAGE));
      pages.set(index, pending);
    }
    return pending;
  }

  function groupOf(run: Run): string {
    if (!state.group) return '';
    if (state.group.startsWith('params.')) return String(run.params[state.group.slice(7)] ?? '');
    return run.tags[state.group.slice(5)] ?? '';
  }

  let drawn = -1;
  async function render() {
    const first = Math.max(0, Math.floor(body.scrollTop / ROW) - 5);
    const last = Math.min(total, first + Math.ceil(body.clientHeight / ROW) + 10);
    const needed = new Set<number>();
    for (let i = first; i < last; i++) needed.add(Math.floor(i / PAGE));
    const loaded = new Map<number, RunsPage>();
    await Promise.all([...needed].map(async (p) => loaded.set(p, await page(p))));
    const key = first * 1e9 + last;
    if (drawn === key) return;
    drawn = key;
    const rows: HTMLElement[] = [];
    for (let i = first; i < last; i++) {
      const run = loaded.get(Math.floor(i / PAGE))?.runs[i % PAGE];
      if (!run) continue;
      const previous = i > 0 ? (loaded.get(Math.floor((i - 1) / PAGE))?.runs[(i - 1) % PAGE]) : undefined;
      const startsGroup = state.group && previous && groupOf(previous) !== groupOf(run);
      const check = h('input', {
        type: 'checkbox', checked: selected.has(run.run_id), 'aria-label': `select ${run.name}`,
        onchange: (event: Event) => {
          if ((event.target as HTMLInputElement).checked) selected.add(run.run_id);
          else selected.delete(run.run_id);
          updateCompare();
        },
      });
      const row = h('div', { class: `row${startsGroup ? ' group-start' : ''}`, 'data-run': run.run_id },
        check,
        ...state.columns.map((column) => {
          if (column === 'status') return h('span', {}, badge(run.status));
          if (column === 'name') return h('a', { href: `#/run/${encodeURIComponent(run.run_id)}`, class: 'run-link' }, run.name);
          return h('span', { class: column.startsWith('metrics.') || column.startsWith('params.') ? 'numeric' : '' }, cell(run, column));
        }));
      row.style.top = `${i * ROW}px`;
      row.style.gridTemplateColumns = template();
      rows.push(row);
    }
    body.replaceChildren(spacer, ...rows);
  }

  function updateCompare() {
    compare.disabled = selected.size < 1;
    compare.textContent = selected.size ? `Compare ${selected.size}` : 'Compare';
  }
  compare.addEventListener('click', () => {
    location.hash = `#/compare?runs=${[...selected].map(encodeURIComponent).join(',')}`;
  });

  // `data-ready` is off while the table reloads, so that a test (or a script) waits for the rows of
  // the new query, not the old ones.
  async function reload() {
    delete document.body.dataset.ready;
    pages.clear();
    drawn = -1;
    error.textContent = '';
    try {
      const first = await page(0);
      total = first.total;
      groups = first.groups ?? [];
    } catch (problem) {
      error.textContent = (problem as Error).message;
      total = 0;
      groups = [];
    }
    count.textContent = `${total.toLocaleString()} runs`;
    groupBar.replaceChildren(...groups.slice(0, 30).map((g) => h('span', { class: 'chip' }, `${g.value || '(none)'}: ${g.count}`)));
    spacer.style.height = `${total * ROW}px`;
    body.scrollTop = 0;
    await render();
    document.body.dataset.ready = 'runs';
  }

  let timer: number | undefined;
  filter.addEventListener('input', () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => {
      state.filter = filter.value;
      save();
      void reload();
    }, 300);
  });
  filter.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      window.clearTimeout(timer);
      state.filter = filter.value;
      save();
      void reload();
    }
  });
  groupSelect.addEventListener('change', () => {
    state.group = groupSelect.value;
    save();
    void reload();
  });
  let scheduled = false;
  body.addEventListener('scroll', () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      void render();
    });
  });
  renderHeader();
  await reload();
}

function columnChooser(
  keys: { params: string[]; metrics: string[]; tags: string[] },
  state: TableState,
  changed: () => void,
): HTMLElement {
  const options: Column[] = [
    ...ATTRIBUTES,
    ...keys.params.map((k) => `params.${k}`),
    ...keys.metrics.flatMap((k) => ['best', 'last', 'min', 'max'].map((a) => `metrics.${k}.${a}`)),
    ...keys.tags.map((k) => `tags.${k}`),
  ];
  const search = h('input', { type: 'search', placeholder: 'find a column' });
  const list = h('div', { class: 'choices' });
  const draw = () => {
    const text = search.value.toLowerCase();
    list.replaceChildren(...options.filter((o) => o.toLowerCase().includes(text)).slice(0, 200).map((option) =>
      h('label', {},
        h('input', {
          type: 'checkbox', checked: state.columns.includes(option),
          onchange: (event: Event) => {
            const on = (event.target as HTMLInputElement).checked;
            state.columns = on ? [...state.columns, option] : state.columns.filter((c) => c !== option);
            changed();
          },
        }),
        option)));
  };
  search.addEventListener('input', draw);
  draw();
  return h('details', { class: 'columns' }, h('summary', {}, 'Columns'), h('div', { class: 'menu' }, search, list));
}
