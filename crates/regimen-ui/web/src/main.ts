// The dashboard: a page per route of the address's fragment (#/, #/run/ID, #/compare?runs=..,
// #/sweeps, #/sweep/ID), each built from the JSON API.

import { adoptToken } from './api';
import { dropAll } from './chart';
import { compareView } from './compare';
import { runView } from './run';
import { sweepView, sweepsView } from './sweep';
import { runsView } from './table';
import { h } from './util';
import './style.css';

let leaving = new AbortController();

async function route(): Promise<void> {
  leaving.abort();
  leaving = new AbortController();
  dropAll();
  delete document.body.dataset.ready;
  const root = document.getElementById('app') as HTMLElement;
  const [path, search] = location.hash.replace(/^#/, '').split('?');
  const query = new URLSearchParams(search ?? '');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  for (const link of document.querySelectorAll<HTMLAnchorElement>('header nav a')) {
    link.classList.toggle('active', (parts[0] ?? '') === (link.getAttribute('href') ?? '').replace('#/', '').replace(/s$/, '') || (parts[0] === 'sweeps' && link.getAttribute('href') === '#/sweeps'));
  }
  try {
    if (parts[0] === 'run' && parts[1]) await runView(root, parts[1], leaving.signal);
    else if (parts[0] === 'compare') await compareView(root, query);
    else if (parts[0] === 'sweeps') await sweepsView(root);
    else if (parts[0] === 'sweep' && parts[1]) await sweepView(root, parts[1]);
    else await runsView(root);
  } catch (problem) {
    root.replaceChildren(h('div', { class: 'error', role: 'alert' }, (problem as Error).message));
    document.body.dataset.ready = 'error';
  }
}

adoptToken();
window.addEventListener('hashchange', () => void route());
void route();
