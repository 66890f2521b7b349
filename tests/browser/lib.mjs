// Helpers for the browser tests: Chromium through playwright-core (no bundled browser: the
// distribution's chromium), full-page screenshots at desktop and phone widths, axe-core
// checks, and long-task measurement.
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

// Without the networking flags Chromium keeps trying to reach Google's services, and this
// machine must send nothing off it.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

// Playwright gives every launch a fresh, temporary user-data directory and removes it on close().
export function launch() {
  return chromium.launch({
    executablePath: process.env.HELVETIA_CHROMIUM || '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
  });
}

export const ARTIFACTS_DIR =
  process.env.ARTIFACTS_DIR || join(REPO_ROOT, 'target', 'browser-artifacts');

const WIDTHS = [
  { width: 1280, height: 900 },
  { width: 375, height: 800 },
];

// Writes `${ARTIFACTS_DIR}/${name}-1280.png` and `-375.png`, then restores the viewport.
export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const before = page.viewportSize();
  for (const size of WIDTHS) {
    await page.setViewportSize(size);
    await page.screenshot({
      path: join(ARTIFACTS_DIR, `${name}-${size.width}.png`),
      fullPage: true,
    });
  }
  if (before) await page.setViewportSize(before);
}

// Throws when the page is wider than its viewport (a phone would scroll sideways). Measured
// after two animation frames, so that resize observers have run.
export async function assertNoHorizontalScroll(page, label) {
  await page.evaluate(
    () => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))),
  );
  const { scroll, client } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth,
  }));
  if (scroll > client) {
    // The innermost elements that stick out, to say what to fix.
    const culprits = await page.evaluate((width) => {
      const scrolls = (e) => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX);
      const clipped = (e) => {
        for (let up = e.parentElement; up && up !== document.body; up = up.parentElement)
          if (scrolls(up)) return true;
        return false;
      };
      const wide = [...document.querySelectorAll('body *')].filter(
        (e) => e.getBoundingClientRect().right > width + 1 && !clipped(e),
      );
      return wide
        .filter((e) => !wide.some((other) => other !== e && e.contains(other)))
        .slice(0, 5)
        .map((e) => `${e.tagName.toLowerCase()}.${e.className} "${e.textContent.slice(0, 40)}"`);
    }, client);
    throw new Error(
      `${label}: page is ${scroll}px wide in a ${client}px viewport; sticking out: ${culprits.join('; ')}`,
    );
  }
}

const AXE_SOURCE = readFileSync(
  createRequire(import.meta.url).resolve('axe-core/axe.min.js'),
  'utf8',
);

// Runs axe-core in the page and throws listing every serious or critical violation. axe is
// evaluated through the DevTools protocol, which the page's CSP does not govern (a <script>
// tag would be blocked by script-src 'self').
export async function checkAxe(page, label) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document);
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        targets: v.nodes.map((n) => n.target.join(' ')),
      }));
  });
  if (violations.length) {
    const text = violations
      .map((v) => `  ${v.impact} ${v.id}: ${v.help}\n    ${v.targets.join('\n    ')}`)
      .join('\n');
    throw new Error(`${label}: accessibility violations\n${text}`);
  }
}

// Records main-thread tasks over 50 ms (the browser's "long task" threshold) in the current
// document and every later one; call before the work to measure.
export async function longTasks(page) {
  const install = () => {
    if (window.__longTasks) return;
    window.__longTasks = [];
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.__longTasks.push(entry.duration);
    }).observe({ type: 'longtask', buffered: true });
  };
  await page.addInitScript(install);
  if (page.url() !== 'about:blank') await page.evaluate(install);
  return {
    // Durations in ms of the long tasks so far.
    durations: () => page.evaluate(() => window.__longTasks.slice()),
    // The longest task so far in ms, 0 when none exceeded 50 ms.
    max: () => page.evaluate(() => Math.max(0, ...window.__longTasks)),
  };
}

// Collects Content-Security-Policy violations, reported as DOM events and as console errors.
export async function cspViolations(page) {
  const seen = [];
  await page.exposeFunction('__reportCsp', (text) => seen.push(text));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__reportCsp(
        `${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${e.sourceFile}:${e.lineNumber})`,
      ),
    );
  });
  page.on('console', (msg) => {
    if (/Content Security Policy/i.test(msg.text())) seen.push(msg.text());
  });
  return seen;
}
