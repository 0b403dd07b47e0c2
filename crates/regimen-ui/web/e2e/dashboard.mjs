// Drives the real dashboard in Debian's headless Chromium (playwright-core pointed at the system
// browser; no browser is downloaded): open the runs table, filter, sort, open a run, see its
// curves, write and edit a note, compare two runs, group three seeds into a band, open a sweep. Saves a
// screenshot after each step into OUT. Exits non-zero, naming the step, at the first failure, or
// when the page logs an error (a script error or a Content-Security-Policy violation).
//
//   node e2e/dashboard.mjs URL OUT NOTE
//
// The store behind URL holds three runs of experiment `seeds` (seeds 1, 2, 3), one run of
// experiment `other`, and one sweep; NOTE is the text saved as a note (the caller checks that
// the store has it).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [url, out, note] = process.argv.slice(2);
if (!url || !out || !note) {
  console.error('usage: node e2e/dashboard.mjs URL OUT NOTE');
  process.exit(2);
}
mkdirSync(out, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.REGIMEN_CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
const problems = [];
page.on('pageerror', (error) => problems.push(`script error: ${error.message}`));
page.on('console', (message) => {
  if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
});

let step = 'start';
function check(condition, message) {
  if (!condition) throw new Error(message);
}
async function shot(name) {
  await page.screenshot({ path: join(out, `${name}.png`) });
}
async function ready(view) {
  await page.waitForSelector(`body[data-ready="${view}"]`, { timeout: 20_000 });
}
/** The text of each cell of `column` (its data-column) in the table's drawn rows. */
async function columnValues(column) {
  const index = await page.$$eval('.thead span', (spans, c) => spans.findIndex((s) => s.dataset.column === c), column);
  check(index > 0, `no column ${column}`);
  return page.$$eval('.tbody .row', (rows, i) => rows.map((r) => r.children[i].textContent.trim()), index);
}
/** The legend entries of the chart titled `title`, once it has drawn. */
async function legend(title) {
  const chart = page.locator(`figure.chart[data-title="${title}"]`);
  await chart.scrollIntoViewIfNeeded();
  await chart.locator('canvas').first().waitFor({ timeout: 20_000 });
  return chart.locator('.legend .entry').allTextContents();
}

try {
  step = 'open the runs table';
  await page.goto(url);
  await ready('runs');
  await page.waitForSelector('.tbody .row');
  const all = await page.$$eval('.tbody .row', (rows) => rows.length);
  check(all >= 5, `the table shows ${all} runs`);
  await shot('1-runs');

  step = 'filter';
  await page.fill('input.filter', "experiment = 'seeds'");
  await page.press('input.filter', 'Enter');
  await ready('runs');
  check(await page.textContent('.count') === '3 runs', `the count says ${await page.textContent('.count')}`);
  check((await page.$$('.tbody .row')).length === 3, 'the filter keeps three rows');
  await shot('2-filtered');

  step = 'sort';
  await page.click('.thead span[data-column="params.seed"]');
  await ready('runs');
  check((await page.textContent('.thead span[data-column="params.seed"]')).includes('▲'), 'the header shows ascending');
  let seeds = await columnValues('params.seed');
  check(seeds.join() === '1,2,3', `ascending seeds: ${seeds}`);
  await page.click('.thead span[data-column="params.seed"]');
  await ready('runs');
  check((await page.textContent('.thead span[data-column="params.seed"]')).includes('▼'), 'the header shows descending');
  seeds = await columnValues('params.seed');
  check(seeds.join() === '3,2,1', `descending seeds: ${seeds}`);
  await shot('3-sorted');

  step = 'open a run';
  await page.click('.tbody .row a.run-link');
  await ready('run');
  const loss = await legend('loss');
  check(loss.length === 2 && loss.includes('train.loss') && loss.includes('val.loss'), `the loss chart draws ${loss}`);
  const acc = await legend('acc');
  check(acc.length === 2, `the accuracy chart draws ${acc}`);
  await page.waitForSelector('.diagnosis .checks li');
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot('4-run');

  step = 'write and edit a note';
  await page.fill('textarea.note-editor', 'a first draft');
  await page.click('button.save-note');
  await page.waitForFunction(() => document.querySelector('.notes .note.current')?.textContent.includes('a first draft'));
  await page.click('.notes .note.current button.edit-note');
  check((await page.inputValue('textarea.note-editor')) === 'a first draft', 'edit loads the note into the editor');
  await page.fill('textarea.note-editor', note);
  await page.click('button.save-note');
  await page.waitForFunction((text) => document.querySelector('.notes .note.current')?.textContent.includes(text), note);
  const earlier = await page.$$eval('.notes .note', (notes) => notes.some((n) => !n.classList.contains('current') && n.textContent.includes('a first draft')));
  check(earlier, 'the first draft stays as an earlier version');
  await page.locator('.notes').scrollIntoViewIfNeeded();
  await shot('5-note');

  step = 'compare two runs';
  await page.goto(`${url}#/`);
  await ready('runs');
  check(await page.textContent('.count') === '3 runs', 'the saved filter is back');
  const boxes = page.locator('.tbody .row input[type=checkbox]');
  await boxes.nth(0).check();
  await boxes.nth(1).check();
  await page.click('button.compare');
  await ready('compare');
  const two = await legend('val.loss');
  check(two.length === 2, `two runs compared draw ${two.length} lines: ${two}`);
  await shot('6-compare');

  step = 'group three seeds into a band';
  await page.goto(`${url}#/`);
  await ready('runs');
  check(await page.textContent('.count') === '3 runs', 'the saved filter is back');
  for (let i = 0; i < 3; i++) await page.locator('.tbody .row input[type=checkbox]').nth(i).check();
  await page.click('button.compare');
  await ready('compare');
  check((await legend('val.loss')).length === 3, 'three runs, three lines before grouping');
  await page.selectOption('select.group-by', 'params.seed');
  await page.waitForFunction(() => document.querySelectorAll('figure.chart .legend .entry').length === 1);
  const band = await legend('val.loss');
  check(band.length === 1 && band[0].includes('3 runs') && band[0].includes('band'), `grouped: ${band}`);
  await shot('7-seed-band');

  step = 'open a sweep';
  await page.click('header nav a[href="#/sweeps"]');
  await ready('sweeps');
  await page.click('a.sweep-link');
  await ready('sweep');
  const trials = await page.$$eval('table.trials tr', (rows) => rows.length - 1);
  check(trials >= 2, `the sweep shows ${trials} trials`);
  await page.locator('figure.chart canvas').first().waitFor();
  await shot('8-sweep');

  check(problems.length === 0, `the page logged errors:\n${problems.join('\n')}`);
  console.log(`dashboard: all steps passed; screenshots in ${out}`);
} catch (error) {
  await shot(`failed-${step.replace(/\W+/g, '-')}`).catch(() => {});
  console.error(`dashboard e2e failed at "${step}": ${error.message}`);
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
