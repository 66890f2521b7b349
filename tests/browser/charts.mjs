// The metrics charts against a fake series endpoint and sample stream: all four charts draw,
// live samples of two containers in one round are summed, a range closes the stream and
// fetches its window, the empty state shows, and the page passes axe in both themes at
// desktop and phone widths without a CSP violation.
//
//   node tests/browser/charts.mjs        (from the repository root; exits 1 on failure)
import { assertNoHorizontalScroll, checkAxe, cspViolations, launch, screenshot } from './lib.mjs';
import { eventStream, serve, sseEvent } from './serve.mjs';

const MiB = 1024 * 1024;
const requested = [];
let openStreams = 0;

function point(at, cpu, cpuShare, memory, memoryLimit) {
  return {
    at: new Date(at).toISOString(),
    containers: 1,
    cpu_percent: cpu,
    cpu_limit_percent: cpuShare,
    memory_bytes: memory,
    memory_limit_bytes: memoryLimit,
    net_rx_bytes_per_second: 2048,
    net_tx_bytes_per_second: 512,
    block_read_bytes_per_second: 0,
    block_write_bytes_per_second: 4096,
    pids: 3,
    restarts: 0,
  };
}

const server = await serve({
  '/series': (req, res, url) => {
    requested.push(url.searchParams.get('from'));
    const now = Date.now() - 10_000;
    // 12 % of a core at 20 % of the limit: a limit of 60 % of a core.
    const points = Array.from({ length: 30 }, (_, i) =>
      point(now - (29 - i) * 30_000, 12, 20, 100 * MiB, 256 * MiB),
    );
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(
      JSON.stringify({
        from: url.searchParams.get('from'),
        step_seconds: 30,
        resolution: 'raw',
        points,
      }),
    );
  },
  '/samples': (req, res) => {
    openStreams++;
    req.on('close', () => openStreams--);
    const write = eventStream(res);
    // Two containers per round, each at 5 % of a core and half its limit (10 % of a core):
    // 10 % and a limit of 20 % together.
    const timer = setInterval(() => {
      const at = Date.now();
      for (const container of ['aaa', 'bbb']) {
        write(
          sseEvent('sample', {
            container,
            deployment_id: 7,
            ...point(at, 5, 50, 50 * MiB, 128 * MiB),
          }),
        );
      }
    }, 300);
    req.on('close', () => clearInterval(timer));
  },
  '/series-empty': (req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ points: [] }));
  },
  '/samples-none': (req, res) => eventStream(res),
});

const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};
const summary = (page, chart) => page.textContent(`figure[data-chart=${chart}] .sr-only`);

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
  const csp = await cspViolations(page);

  await page.goto(`${server.url}/fixtures/charts.html`);
  await page.waitForSelector('figure[data-chart=disk][data-drawn=true]');
  const drawn = await page.$$eval(
    'figure[data-chart]',
    (fs) => fs.filter((f) => f.dataset.drawn === 'true').length,
  );
  check(drawn === 4, `all four charts draw (${drawn})`);
  check(requested[0] === '15m', `live loads the last 15 minutes (from=${requested[0]})`);

  await page.waitForFunction(() =>
    /CPU 10 %/.test(document.querySelector('figure[data-chart=cpu] .sr-only').textContent),
  );
  check(
    (await summary(page, 'cpu')) === 'Latest: CPU 10 %, Limit 20 %',
    'live samples of one round are summed',
  );
  check(
    (await summary(page, 'memory')) === 'Latest: Used 100 MiB, Limit 256 MiB',
    'memory and its limit are summed',
  );
  check(openStreams === 1, 'live keeps one sample stream open');

  await page.click('[data-range="1h"]');
  await page.waitForFunction(
    () => document.querySelector('[data-range="1h"]').getAttribute('aria-pressed') === 'true',
  );
  await page.waitForTimeout(300);
  check(requested.at(-1) === '1h', `1 h fetches its window (from=${requested.at(-1)})`);
  check(openStreams === 0, 'leaving live closes the sample stream');
  check(
    (await summary(page, 'cpu')) === 'Latest: CPU 12 %, Limit 60 %',
    'the 1 h series replaces the live points; its CPU limit is derived from the share',
  );
  check((await page.$$('[aria-pressed="true"]')).length === 1, 'exactly one range is pressed');

  await page.click('[data-range="live"]');
  await page.waitForFunction(() =>
    /CPU 10 %/.test(document.querySelector('figure[data-chart=cpu] .sr-only').textContent),
  );
  check(requested.at(-1) === '15m' && openStreams === 1, 'back to live reopens the stream');

  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await checkAxe(page, `charts (${scheme})`).then(
      () => check(true, `axe: charts, ${scheme}`),
      (e) => check(false, e.message),
    );
    await screenshot(page, `charts-${scheme}`);
  }
  await page.setViewportSize({ width: 375, height: 800 });
  await assertNoHorizontalScroll(page, 'charts at 375 px').then(
    () => check(true, 'no sideways scrolling at 375 px'),
    (e) => check(false, e.message),
  );
  const width = await page.$eval(
    'figure[data-chart=cpu] .uplot',
    (u) => u.getBoundingClientRect().width,
  );
  check(width <= 375, `a chart fits the phone (${Math.round(width)} px)`);

  await page.goto(`${server.url}/fixtures/charts-empty.html`);
  await page.waitForFunction(() => document.querySelectorAll('figure.is-empty').length === 4);
  await page.waitForTimeout(200);
  const empty = await page.$$eval('figure[data-chart]', (fs) =>
    fs.map((f) => f.querySelector('.chart-empty').checkVisibility() && !f.dataset.drawn),
  );
  check(empty.every(Boolean), 'without samples every chart shows the empty state');
  check(csp.length === 0, `no CSP violation${csp.length ? ': ' + csp.join('; ') : ''}`);
} finally {
  await browser.close();
  server.close();
}

if (failures.length) {
  console.error(`charts: ${failures.length} failure(s):\n  ${failures.join('\n  ')}`);
  process.exit(1);
}
console.log('charts: passed');
