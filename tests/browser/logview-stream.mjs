// The log viewer's stream handling, on fixtures/logview-streams.html (three viewers): a
// deployment stream that stops without `end` shows "Reconnecting…" and resumes after the last
// id it received (Last-Event-ID) without duplicates; runtime output shows time and container,
// marks stderr and keeps ANSI state per container and stream; an HTTP error stops with a Retry
// button; follow turns off when the reader scrolls up and on again at the bottom; axe passes.
// On fixtures/logview-swap.html: a viewer swapped in by htmx starts, and one swapped out
// closes its stream.
//
//   node tests/browser/logview-stream.mjs        (from the repository root; exits 1 on failure)
import { assertNoHorizontalScroll, checkAxe, cspViolations, launch, screenshot } from './lib.mjs';
import { eventStream, serve, sseEvent } from './serve.mjs';

const resumeHeaders = [];
let goneRequests = 0;
let idleOpen = 0;
const server = await serve({
  '/resume': async (req, res) => {
    resumeHeaders.push(req.headers['last-event-id'] ?? null);
    const write = eventStream(res);
    const after = Number(req.headers['last-event-id'] || 0);
    const last = after ? 60 : 50;
    let text = 'retry: 400\n\n';
    for (let i = after + 1; i <= last; i++)
      text += sseEvent('line', { seq: i, at: '2026-01-02T03:04:05Z', line: `line ${i}` }, i);
    // The first response stops without an `end` event, as when the server restarts. (An
    // abrupt reset right after writing can lose the response in the browser altogether, which
    // would make this test flaky; the viewer handles both the same way.)
    await write(after ? text + sseEvent('end', { status: 'failed' }) : text);
    res.end();
  },
  '/runtime': async (req, res) => {
    const write = eventStream(res);
    const A = 'abc1234def5678';
    const B = 'fff0000aaa1111';
    const ev = (container, stream, line) =>
      sseEvent('line', { container, stream, at: '2026-01-02T03:04:05Z', line });
    let text =
      ev(A, 'stdout', '\x1b[31mred starts') +
      ev(B, 'stdout', 'plain from B') +
      ev(A, 'stdout', 'still red') +
      ev(A, 'stderr', 'an error');
    for (let i = 5; i <= 300; i++)
      text += ev(A, 'stdout', `tick ${i} ` + 'wide '.repeat(i === 300 ? 200 : 1));
    await write(text); // and the stream stays open, as a service's output does
  },
  '/fragment': (req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(
      '<section class="logview" data-logview data-stream="/idle" aria-label="Swapped log"><pre class="logview-static"></pre></section>',
    );
  },
  '/idle': async (req, res) => {
    idleOpen++;
    req.on('close', () => idleOpen--);
    await eventStream(res)(sseEvent('line', { seq: 1, line: 'hello' }, 1)); // then nothing more
  },
  '/gone': (req, res) => {
    goneRequests++;
    res.writeHead(401, { 'Content-Type': 'text/plain' });
    res.end('session expired');
  },
});

const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};
const passes = (promise, what) =>
  promise.then(
    () => check(true, what),
    (e) => check(false, e.message),
  );
const rows = (page, id) =>
  page.$$eval(`#${id} .logview-line`, (r) =>
    r.map((x) => ({
      text: x.textContent,
      cls: x.className,
      spans: [...x.querySelectorAll('span:not(.logview-meta)')].map((s) => s.className),
    })),
  );
const stateOf = (page, id) => page.textContent(`#${id} .logview-state`);

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, timezoneId: 'UTC' });
  page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
  const csp = await cspViolations(page);
  await page.goto(`${server.url}/fixtures/logview-streams.html`);

  // A dropped connection, then resumption.
  await page.waitForFunction(
    () => document.querySelector('#deploy .logview-state').textContent === 'Reconnecting…',
  );
  check(true, 'a dropped stream shows "Reconnecting…"');
  await page.waitForFunction(
    () => document.querySelector('#deploy .logview-state').textContent === 'Finished: failed',
  );
  check(
    resumeHeaders.join() === ',50',
    `the stream resumes with Last-Event-ID (${resumeHeaders.map(String).join(', ')})`,
  );
  const deploy = (await rows(page, 'deploy')).map((r) => r.text);
  const expected = Array.from({ length: 60 }, (_, i) => `line ${i + 1}`);
  check(deploy.join() === expected.join(), `every line once, in order (${deploy.length} rows)`);

  // Runtime output.
  await page.waitForFunction(
    () => document.querySelector('#runtime .logview-count').dataset.count === '300',
  );
  await page.$eval('#runtime .logview-viewport', (v) => {
    v.scrollTop = 0;
  });
  await page.waitForFunction(() =>
    document.querySelector('#runtime .logview-line')?.textContent.includes('red starts'),
  );
  const runtime = await rows(page, 'runtime');
  check(
    runtime[0].text === '03:04:05 abc1234 red starts',
    `runtime lines show time and container ("${runtime[0].text}")`,
  );
  check(runtime[1].spans.length === 0, 'ANSI state does not leak into another container');
  check(
    runtime[2].spans.join() === 'ansi-fg1',
    "ANSI state carries over to the same container's next line",
  );
  check(
    runtime[3].cls.includes('stderr') && runtime[3].spans.length === 0,
    'stderr is marked, with its own ANSI state',
  );

  // Follow.
  const follow = (id) => page.$eval(`#${id} input[type=checkbox]`, (c) => c.checked);
  await page.$eval('#runtime .logview-viewport', (v) => {
    v.scrollTop = v.scrollHeight;
  });
  await page.waitForFunction(() => document.querySelector('#runtime input[type=checkbox]').checked);
  check(true, 'scrolling to the bottom turns follow on');
  await page.hover('#runtime .logview-viewport');
  await page.mouse.wheel(0, -400);
  await page.waitForTimeout(200);
  check(!(await follow('runtime')), 'scrolling up turns follow off');
  await page.focus('#runtime .logview-viewport');
  await page.keyboard.press('End');
  await page.waitForTimeout(300);
  check(await follow('runtime'), 'End (keyboard) scrolls to the bottom and turns follow on');
  const viewport = await page.$eval('#runtime .logview-viewport', (v) =>
    [v.tabIndex, v.getAttribute('role'), v.getAttribute('aria-live')].join(),
  );
  check(
    viewport === '0,log,off',
    `the viewport is focusable, role=log, aria-live=off (${viewport})`,
  );
  const wide = await page.$eval('#runtime .logview-viewport', (v) => v.scrollWidth > v.clientWidth);
  check(wide, 'a long line scrolls inside the viewport');

  // An HTTP error is final until Retry.
  await page.waitForFunction(() =>
    document
      .querySelector('#gone .logview-state')
      .textContent.startsWith('Disconnected (HTTP 401)'),
  );
  await page.click('#gone .logview-state button');
  await page.waitForFunction(() => document.querySelector('#gone .logview-state button'));
  check(
    goneRequests === 2,
    `an HTTP error is not retried on its own; Retry asks again (${goneRequests} requests)`,
  );

  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await passes(checkAxe(page, `log viewers (${scheme})`), `axe: log viewers, ${scheme}`);
    await screenshot(page, `logview-${scheme}`);
  }
  await page.setViewportSize({ width: 375, height: 800 });
  await passes(
    assertNoHorizontalScroll(page, 'log viewers at 375 px'),
    'no sideways scrolling at 375 px',
  );

  // A viewer that htmx swaps in starts; swapped out, it closes its stream.
  await page.goto(`${server.url}/fixtures/logview-swap.html`);
  await page.click('#load');
  await page.waitForFunction(() => document.querySelector('.logview-count')?.dataset.count === '1');
  check(idleOpen === 1, 'a viewer swapped in by htmx starts');
  await page.click('#load');
  await page.waitForFunction(() => document.querySelector('.logview-count')?.dataset.count === '1');
  await page.waitForTimeout(200);
  check(idleOpen === 1, 'the viewer htmx swapped out closed its idle stream');
  check(csp.length === 0, `no CSP violation${csp.length ? ': ' + csp.join('; ') : ''}`);
} finally {
  await browser.close();
  server.close();
}

if (failures.length) {
  console.error(`logview-stream: ${failures.length} failure(s):\n  ${failures.join('\n  ')}`);
  process.exit(1);
}
console.log('logview-stream: passed');
