// The stylesheet and app.js on fixtures/styleguide.html (every component class): axe finds
// no serious or critical problem in either theme, nothing scrolls sideways at 375 px, htmx and
// its SSE extension run under the strict CSP with the layout's htmx-config, htmx requests
// carry the CSRF cookie as X-CSRF-Token, data-confirm guards submissions, data-copy copies,
// and relative times render.
//
//   node tests/browser/styleguide.mjs        (from the repository root; exits 1 on failure)
import { assertNoHorizontalScroll, checkAxe, cspViolations, launch, screenshot } from './lib.mjs';
import { serve } from './serve.mjs';

const posted = [];
const reply = (text) => (req, res) => {
  posted.push({ path: req.url, csrf: req.headers['x-csrf-token'] });
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(text);
};
const server = await serve({
  '/hx/cancel': reply('Cancelled deployment 9.'),
  '/restart': reply('restarted'),
  '/delete': reply('deleted'),
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

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
  await context.addCookies([{ name: 'helvetia_csrf', value: 'token-123', url: server.url }]);
  const page = await context.newPage();
  page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
  const csp = await cspViolations(page);
  const url = `${server.url}/fixtures/styleguide.html`;
  await page.goto(url);
  await page.waitForFunction(
    () => window.htmx?.config && typeof window.htmx.createEventSource === 'function',
  );

  const config = await page.evaluate(() => {
    const c = window.htmx.config;
    return [
      c.allowEval,
      c.allowScriptTags,
      c.includeIndicatorStyles,
      c.historyCacheSize,
      c.selfRequestsOnly,
    ].join();
  });
  check(
    config === 'false,false,false,0,true',
    `htmx takes its config from the meta tag (${config})`,
  );

  await page.click('#hx-button');
  await page.waitForFunction(
    () => document.querySelector('#hx-result').textContent === 'Cancelled deployment 9.',
  );
  check(posted.at(-1)?.csrf === 'token-123', 'htmx requests send the CSRF cookie as X-CSRF-Token');

  const answer = (accept) => page.once('dialog', (d) => (accept ? d.accept() : d.dismiss()));
  answer(false);
  await page.click('#restart');
  await page.waitForTimeout(300);
  check(
    !posted.some((p) => p.path === '/restart'),
    'data-confirm on a form: refusing does not submit',
  );
  answer(false);
  await page.click('button[data-confirm]');
  await page.waitForTimeout(300);
  check(
    !posted.some((p) => p.path === '/delete'),
    'data-confirm on a submit button: refusing does not submit',
  );
  answer(true);
  await Promise.all([page.waitForURL(/\/restart$/), page.click('#restart')]);
  check(posted.at(-1)?.path === '/restart', 'data-confirm: accepting submits');
  await page.goto(url);

  await page.click('[data-copy]');
  await page.waitForSelector('[data-copy].copied');
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  check(copied === 'https://web.shop.example.com/', `data-copy copies its value (${copied})`);

  const time = await page.$eval('time[data-relative]', (t) => ({
    text: t.textContent,
    title: t.title,
  }));
  check(
    /years ago$/.test(time.text) && time.title.includes('2020'),
    `relative time: "${time.text}", title "${time.title}"`,
  );

  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await passes(checkAxe(page, `styleguide (${scheme})`), `axe: styleguide, ${scheme}`);
    await screenshot(page, `styleguide-${scheme}`);
  }
  await page.setViewportSize({ width: 375, height: 800 });
  await passes(
    assertNoHorizontalScroll(page, 'styleguide at 375 px'),
    'no sideways scrolling at 375 px',
  );
  check(csp.length === 0, `no CSP violation${csp.length ? ': ' + csp.join('; ') : ''}`);
} finally {
  await browser.close();
  server.close();
}

if (failures.length) {
  console.error(`styleguide: ${failures.length} failure(s):\n  ${failures.join('\n  ')}`);
  process.exit(1);
}
console.log('styleguide: passed');
