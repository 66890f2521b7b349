// The browser side of `bench/dashboard` (run by it, not a test):
//   node dashboard-bench.mjs fcp URL TOKEN RUNS
//     loads URL RUNS times in fresh contexts (no cache) and prints the first contentful
//     paint of each, in ms, as JSON;
//   node dashboard-bench.mjs tabs URL TOKEN TABS SECONDS
//     opens URL in TABS tabs, prints "ready" once every tab's live stream is connected,
//     holds them open SECONDS, then closes them.
// TOKEN signs the browser in (an API token in the session cookie, as "Sign in with an API
// token" does).
import { launch } from './lib.mjs';

const [mode, url, token, count, seconds] = process.argv.slice(2);
const browser = await launch();

async function signedIn() {
  const context = await browser.newContext();
  await context.addCookies([{ name: 'helvetia_session', value: token, url }]);
  return context;
}

try {
  if (mode === 'fcp') {
    const paints = [];
    for (let i = 0; i < Number(count); i++) {
      const context = await signedIn();
      const page = await context.newPage();
      await page.goto(url, { waitUntil: 'load' });
      const fcp = await page.evaluate(
        () =>
          new Promise((done) => {
            new PerformanceObserver((list) => {
              const entry = list.getEntriesByName('first-contentful-paint')[0];
              if (entry) done(entry.startTime);
            }).observe({ type: 'paint', buffered: true });
          }),
      );
      paints.push(fcp);
      await context.close();
    }
    console.log(JSON.stringify(paints));
  } else if (mode === 'tabs') {
    // A context per tab: over plain HTTP/1.1 a browser keeps at most 6 connections to one
    // host, so a 7th tab's stream would wait for one to close (over HTTPS, HTTP/2 carries
    // them all on one connection).
    const contexts = [];
    for (let i = 0; i < Number(count); i++) {
      const context = await signedIn();
      contexts.push(context);
      const page = await context.newPage();
      const connected = page.waitForResponse((r) => r.url().endsWith('/live'));
      await page.goto(url);
      await connected;
    }
    console.log('ready');
    await new Promise((done) => setTimeout(done, Number(seconds) * 1000));
    for (const context of contexts) await context.close();
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
} finally {
  await browser.close();
}
