// Page-ready time of a dashboard in headless Chromium, for bench/ui_bench.py.
//
//   node bench/ui_page.mjs --kind regimen-runs --url http://127.0.0.1:7070/ [--repeat 5] [--timeout 120] [--idle 0]
//
// Each load is a fresh browser context (empty cache, cookies and local storage: a first visit)
// in one Chromium with a fresh profile (Playwright launches it on a temporary profile folder):
// Debian's /usr/bin/chromium (or $CHROMIUM), driven by the playwright-core that the dashboard's
// end-to-end tests already install; no browser is downloaded. An init script watches the DOM from
// the moment the document exists and stamps `performance.now()` (milliseconds since the
// navigation started) the first time the page's ready condition holds:
//
//   regimen-runs      body[data-ready=runs] with rows drawn (.tbody .row)
//   regimen-run       body[data-ready=run] (a run page: its charts are drawn)
//   mlflow-runs       MLflow's runs table (ag-grid) shows a row with its run-name link
//   tensorboard-runs  TensorBoard's time-series dashboard shows a row of its runs table
//
// One load first warms Chromium and the server up and is left out; with `--idle S`, each timed load
// waits S seconds first (with the server idle: what a person opening the page later finds). Prints
// one JSON object: {kind, url, idle_s, warmup_ms, times_ms, median_ms}.

import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'crates', 'regimen-ui', 'web', 'package.json'));
const { chromium } = require('playwright-core');

const READY = {
  'regimen-runs': () => document.body?.dataset.ready === 'runs' && !!document.querySelector('.tbody .row'),
  'regimen-run': () => document.body?.dataset.ready === 'run',
  'mlflow-runs': () => !!document.querySelector('.ag-pinned-left-cols-container [role=row][row-id] a[href*="/runs/"]'),
  'tensorboard-runs': () => !!document.querySelector('runs-data-table tb-data-table-content-row')?.textContent?.trim(),
};

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? process.argv[index + 1] : fallback;
}

const kind = option('kind');
const url = option('url');
const repeat = Number(option('repeat', '5'));
const timeout = Number(option('timeout', '120')) * 1000;
const idle = Number(option('idle', '0'));
if (!READY[kind] || !url) {
  console.error(`usage: ui_page.mjs --kind ${Object.keys(READY).join('|')} --url URL [--repeat N] [--timeout S]`);
  process.exit(2);
}

// The condition is checked after every DOM change, from the first one on.
const watcher = `(() => {
  const ready = ${READY[kind].toString()};
  const check = () => {
    if (window.__readyAt === undefined && ready()) {
      window.__readyAt = performance.now();
      observer.disconnect();
    }
  };
  const observer = new MutationObserver(check);
  observer.observe(document, { childList: true, subtree: true, attributes: true });
})();`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});

async function load() {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  try {
    await context.addInitScript({ content: watcher });
    const page = await context.newPage();
    await page.goto(url, { waitUntil: 'commit', timeout });
    await page.waitForFunction(() => window.__readyAt !== undefined, null, { timeout, polling: 50 });
    return await page.evaluate(() => window.__readyAt);
  } finally {
    await context.close();
  }
}

try {
  const warmup = await load();
  const times = [];
  for (let i = 0; i < repeat; i++) {
    if (idle > 0) await new Promise((resolve) => setTimeout(resolve, idle * 1000));
    times.push(await load());
  }
  const sorted = [...times].sort((a, b) => a - b);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  console.log(JSON.stringify({ kind, url, idle_s: idle, warmup_ms: warmup, times_ms: times, median_ms: median }));
} finally {
  await browser.close();
}
