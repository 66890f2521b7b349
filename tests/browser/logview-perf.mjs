// The log viewer under load: 100,000 `line` events (ANSI colours, carriage-return progress
// lines, long lines, one event holding two lines) sent as fast as the socket takes them, then
// an `end` event. Checks that no main-thread task reaches 200 ms, that the DOM stays small, and
// that follow, search, ANSI, carriage returns, download, status events and the CSP all work.
//
//   node tests/browser/logview-perf.mjs        (from the repository root; exits 1 on failure)
import { readFile } from 'node:fs/promises';
import { cspViolations, launch, longTasks } from './lib.mjs';
import { eventStream, serve, sseEvent } from './serve.mjs';

const EVENTS = 100_000;
const LINES = EVENTS + 1; // the SPLIT event holds two lines
const NEEDLE = 77_777;
const SPLIT = 99_990;
const MAX_TASK_MS = 200;
const MAX_ROWS = 500;

function lineFor(i) {
  if (i === NEEDLE) return `needle-${NEEDLE}: the line the search must find`;
  if (i === SPLIT) return 'split-first\nsplit-second';
  if (i === EVENTS) return `last line of ${EVENTS}`;
  if (i % 100 === 0) return `long ${i} ` + 'abcdefghij'.repeat(300);
  switch (i % 5) {
    case 0:
      return `\x1b[32m✓\x1b[0m step ${i} \x1b[1;31merror\x1b[0m \x1b[38;5;208morange\x1b[0m \x1b[38;2;0;128;255mrgb\x1b[0m`;
    case 1:
      return `#${i} downloading 10%\r#${i} downloading 50%\r#${i} downloading 100%`;
    case 2:
      return `#${i} [internal] load build context\x1b[K`;
    default:
      return `#${i} RUN pip install -r requirements.txt: collecting package-${i}`;
  }
}

let connections = 0;
let serverDoneMs = 0;
const server = await serve({
  '/stream': async (req, res) => {
    connections++;
    const write = eventStream(res);
    const start = performance.now();
    // A short retry would make a wrongly reconnecting viewer show up as a second connection.
    await write('retry: 100\n\n' + sseEvent('status', { status: 'building' }));
    let chunk = '';
    for (let i = 1; i <= EVENTS; i++) {
      chunk += sseEvent('line', { seq: i, at: '2026-01-01T00:00:00Z', line: lineFor(i) }, i);
      if (i % 500 === 0) {
        await write(chunk);
        chunk = '';
      }
    }
    await write(chunk + sseEvent('end', { status: 'live' }));
    serverDoneMs = performance.now() - start;
    res.end();
  },
});

const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};

const browser = await launch();
try {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 900 },
    acceptDownloads: true,
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
  const csp = await cspViolations(page);
  const tasks = await longTasks(page);
  await page.addInitScript(() => {
    window.__statuses = [];
    document.addEventListener('DOMContentLoaded', () =>
      document.body.addEventListener('helvetia:deployment-status', (e) =>
        window.__statuses.push(e.detail.status),
      ),
    );
  });

  const start = performance.now();
  await page.goto(`${server.url}/fixtures/logview.html`);
  await page.waitForFunction(
    (n) => document.querySelector('.logview-count')?.dataset.count === String(n),
    LINES,
    {
      polling: 100,
      timeout: 40_000,
    },
  );
  const receivedMs = performance.now() - start;
  await page.waitForFunction(
    () => document.querySelector('.logview-state')?.textContent === 'Finished: live',
  );
  console.log(`server wrote ${EVENTS} events in ${serverDoneMs.toFixed(0)} ms`);
  console.log(`viewer showed ${LINES} lines ${receivedMs.toFixed(0)} ms after navigation`);

  check(!(await page.$('.logview-static')), 'the server-rendered <pre> is replaced');
  const rowCount = await page.$$eval('.logview-line', (rows) => rows.length);
  check(rowCount < MAX_ROWS, `DOM holds ${rowCount} rows (< ${MAX_ROWS})`);

  const last = await page.evaluate(() => {
    const viewport = document.querySelector('.logview-viewport').getBoundingClientRect();
    const rows = [...document.querySelectorAll('.logview-line')];
    const row = rows[rows.length - 1].getBoundingClientRect();
    return {
      text: rows[rows.length - 1].textContent,
      visible: row.top >= viewport.top && row.bottom <= viewport.bottom + 1,
      follow: document.querySelector('.logview-toolbar input[type=checkbox]').checked,
    };
  });
  check(
    last.follow && last.text === `last line of ${EVENTS}` && last.visible,
    'with follow on, the last line is in view',
  );

  const rowsText = await page.$$eval('.logview-line', (rows) => rows.map((r) => r.textContent));
  const ansi = await page.evaluate(() => {
    const row = [...document.querySelectorAll('.logview-line')].find((r) =>
      r.textContent.startsWith('✓ step 99995'),
    );
    return (
      row && {
        text: row.textContent,
        classes: [...row.querySelectorAll('span')].map((s) => s.className),
      }
    );
  });
  check(ansi?.text === '✓ step 99995 error orange rgb', 'ANSI escapes are stripped from the text');
  check(
    ansi?.classes.join('|') === 'ansi-fg2|ansi-fg1 ansi-bold|ansi-fg3|ansi-fg6',
    `ANSI runs get colour classes (${ansi?.classes.join('|')})`,
  );
  check(
    rowsText.includes('#99996 downloading 100%'),
    'a carriage-return line shows only its last segment',
  );
  check(
    rowsText.includes('#99997 [internal] load build context'),
    'other escape sequences are removed',
  );
  const split = rowsText.indexOf('split-first');
  check(
    split >= 0 && rowsText[split + 1] === 'split-second',
    'an event holding a newline becomes two lines',
  );
  check(
    !rowsText.some((t) => /[\x1b\r]/.test(t)),
    'no raw escape or carriage return reaches the page',
  );

  const statuses = await page.evaluate(() => window.__statuses);
  check(
    statuses.join() === 'building,live',
    `status and end dispatch helvetia:deployment-status (${statuses})`,
  );

  const searchStart = performance.now();
  await page.fill('.logview-toolbar input[type=search]', `needle-${NEEDLE}`);
  await page.waitForFunction(
    () => document.querySelector('.logview-matches').textContent === '1 of 1',
  );
  const searchMs = performance.now() - searchStart;
  const found = await page.evaluate(() => {
    const mark = document.querySelector('.logview-line mark.current');
    const viewport = document.querySelector('.logview-viewport').getBoundingClientRect();
    const r = mark?.getBoundingClientRect();
    return {
      text: mark?.textContent,
      visible: !!r && r.top >= viewport.top && r.bottom <= viewport.bottom,
      follow: document.querySelector('.logview-toolbar input[type=checkbox]').checked,
    };
  });
  check(
    found.text === `needle-${NEEDLE}` && found.visible,
    `search finds and shows line ${NEEDLE} (${searchMs.toFixed(0)} ms)`,
  );
  check(!found.follow, 'jumping to a match turns follow off');

  // "long 9900" and "long 99000" to "long 99900": 11 matches.
  await page.fill('.logview-toolbar input[type=search]', 'long 99');
  await page.waitForFunction(() =>
    / of 11$/.test(document.querySelector('.logview-matches').textContent),
  );
  const steps = [await page.textContent('.logview-matches')];
  for (const key of ['Enter', 'Shift+Enter', 'Shift+Enter']) {
    await page.press('.logview-toolbar input[type=search]', key);
    steps.push(await page.textContent('.logview-matches'));
  }
  const at = steps.map((s) => parseInt(s, 10));
  check(
    at[1] === (at[0] % 11) + 1 && at[2] === at[0] && at[3] === ((at[0] + 9) % 11) + 1,
    `Enter and Shift+Enter step through matches (${steps.join(' → ')})`,
  );

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.click('.logview-toolbar button'),
  ]);
  const file = await readFile(await download.path(), 'utf8');
  const fileLines = file.split('\n');
  check(
    download.suggestedFilename() === 'deployment-7.log',
    `download is named ${download.suggestedFilename()}`,
  );
  check(
    fileLines.length === LINES + 1 && fileLines[LINES - 1] === `last line of ${EVENTS}`,
    `download has all ${LINES} lines`,
  );
  check(!/[\x1b\r]/.test(file), 'download is plain text');

  const maxTask = await tasks.max();
  const longCount = (await tasks.durations()).length;
  console.log(
    `longest main-thread task: ${maxTask ? maxTask.toFixed(0) + ' ms' : 'none over 50 ms'} (${longCount} over 50 ms)`,
  );
  check(maxTask < MAX_TASK_MS, `every task under ${MAX_TASK_MS} ms`);

  await page.waitForTimeout(500);
  check(connections === 1, `after end the stream is not reopened (${connections} connection(s))`);
  check(csp.length === 0, `no CSP violation${csp.length ? ': ' + csp.join('; ') : ''}`);
} finally {
  await browser.close();
  server.close();
}

if (failures.length) {
  console.error(`logview-perf: ${failures.length} failure(s):\n  ${failures.join('\n  ')}`);
  process.exit(1);
}
console.log('logview-perf: passed');
