// The dashboard end to end, in Chromium, against a real Helvetia server and the fake GitHub:
// sign in with a password, then with GitHub; create a service from a GitHub repository; watch
// its build log stream live; see it go live and open its address; set a secret and see it
// masked; watch the CPU chart draw; deploy a second commit and roll back; make and revoke an
// API token; filter the audit log. Every screen is checked with axe and photographed at
// 1280 px and 375 px.
//
// Run by `crates/helvetia/tests/it/dashboard.rs`, which starts the server and the fake GitHub
// and passes them in the environment:
//   HELVETIA_URL, OWNER_EMAIL, OWNER_PASSWORD, PROJECT, REPOSITORY (owner/name on GitHub),
//   REPO_DIR (the repository GitHub serves, to add a commit to), ARTIFACTS_DIR.
import { execFileSync } from 'node:child_process';

import {
  assertNoHorizontalScroll,
  checkAxe,
  cspViolations,
  launch,
  longTasks,
  screenshot,
} from './lib.mjs';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env('HELVETIA_URL');
const PROJECT = env('PROJECT');
const REPOSITORY = env('REPOSITORY');
const SERVICE = 'shop';
const SERVICE_PATH = `/p/${PROJECT}/s/${SERVICE}`;
// Builds here take seconds; a minute leaves room for a loaded machine.
const DEPLOY_TIMEOUT = 120_000;

const step = (text) => console.log(`dashboard: ${text}`);

// Each screen: accessible, no sideways scrolling on a phone, photographed at both widths.
async function screen(page, name) {
  await checkAxe(page, name);
  await page.setViewportSize({ width: 375, height: 800 });
  await assertNoHorizontalScroll(page, `${name} at 375 px`);
  await page.setViewportSize({ width: 1280, height: 900 });
  await screenshot(page, name);
}

// Waits on a deployment's page until it is live, without reloading it: the phases and the
// log viewer's state update from their streams.
async function watchUntilLive(page) {
  await page
    .locator('ol.phases li.done', { hasText: 'Live' })
    .waitFor({ timeout: DEPLOY_TIMEOUT });
  await page
    .locator('.logview-state', { hasText: 'Finished: live' })
    .waitFor({ timeout: 10_000 });
}

const browser = await launch();
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
const violations = await cspViolations(page);
const tasks = await longTasks(page);
page.on('dialog', (dialog) => dialog.accept());
page.on('pageerror', (error) => {
  throw new Error(`a script failed on ${page.url()}: ${error.message}`);
});

try {
  step('signing in with a password');
  await page.goto(`${BASE}/`);
  await page.waitForURL(/\/signin\?next=%2F$/);
  await screen(page, 'signin');
  await page.getByLabel('E-mail address').fill(env('OWNER_EMAIL'));
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('alert').filter({ hasText: 'Wrong e-mail address' }).waitFor();
  await page.getByLabel('Password').fill(env('OWNER_PASSWORD'));
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL(`${BASE}/`);
  await page.getByText(env('OWNER_EMAIL')).waitFor();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/signin$/);

  step('signing in with GitHub');
  await page.getByRole('link', { name: 'Sign in with GitHub' }).click();
  await page.waitForURL(`${BASE}/`);
  await page.getByRole('heading', { name: 'Projects' }).waitFor();
  await page.getByText('No projects yet').waitFor();
  await screen(page, 'overview-empty');

  step('creating a project and a service from a GitHub repository');
  await page.getByLabel('Name').fill(PROJECT);
  await page.getByRole('button', { name: 'Create project' }).click();
  await page.waitForURL(`${BASE}/p/${PROJECT}/new`);
  await page.getByLabel('Name').fill(SERVICE);
  await page.getByLabel('One of your GitHub repositories').check();
  await page.getByLabel('Repository', { exact: true }).selectOption({ label: REPOSITORY });
  await screen(page, 'service-new');
  await page.getByRole('button', { name: 'Create service' }).click();

  step('watching the first deployment build live');
  await page.waitForURL(new RegExp(`${SERVICE_PATH}/deployments/\\d+$`));
  const counts = [];
  const count = () =>
    page.locator('.logview-count').getAttribute('data-count').then((n) => Number(n || 0));
  // Lines arrive while the page stays open: the count grows without a reload.
  for (let i = 0; i < 200 && counts.length < 2; i++) {
    const n = await count();
    if (n > 0 && !counts.includes(n)) counts.push(n);
    await page.waitForTimeout(100);
  }
  if (counts.length < 2 || counts[1] <= counts[0])
    throw new Error(`the log did not grow while watched: ${counts}`);
  await watchUntilLive(page);
  const lines = await count();
  if (lines < 5) throw new Error(`only ${lines} log lines`);
  await page.locator('.logview').getByText('==>').first().waitFor();
  await screen(page, 'deployment');

  step('the service is live; opening its address');
  await page.getByRole('link', { name: 'Overview' }).click();
  await page.waitForURL(`${BASE}${SERVICE_PATH}`);
  await page.locator('#status .badge', { hasText: 'healthy' }).first().waitFor();
  await screen(page, 'service');
  const address = await page.locator('#status dd a[rel="noopener"]').first().getAttribute('href');
  const app = await context.newPage();
  const answer = await app.goto(address);
  if (!answer || answer.status() !== 200)
    throw new Error(`${address} answered ${answer && answer.status()}`);
  await app.close();
  await page.goto(`${BASE}/`);
  await page.locator('table.list .badge.status-live').first().waitFor();
  await screen(page, 'overview');

  step('setting a secret: masked, revealed on request');
  await page.goto(`${BASE}${SERVICE_PATH}/env`);
  await page.getByLabel('Name', { exact: true }).fill('API_TOKEN');
  await page.getByLabel('Value', { exact: true }).fill('tok-7f3a9c-secret');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Saved.').waitFor();
  const row = page.locator('tr', { hasText: 'API_TOKEN' });
  await row.locator('.secret-mask').waitFor();
  if ((await page.content()).includes('tok-7f3a9c-secret'))
    throw new Error('the secret is in the page');
  await screen(page, 'env');
  await row.getByRole('button', { name: /Reveal/ }).click();
  await row.getByText('tok-7f3a9c-secret').waitFor();

  await page.getByRole('link', { name: 'Volumes' }).click();
  await page.getByText('No volumes').waitFor();
  await screen(page, 'volumes');

  step('runtime logs and the CPU chart');
  await page.goto(`${BASE}${SERVICE_PATH}/logs`);
  await page.locator('.logview-count').waitFor();
  await screen(page, 'logs');
  await page.goto(`${BASE}${SERVICE_PATH}/metrics`);
  await page.locator('figure[data-chart="cpu"][data-drawn="true"]').waitFor({ timeout: 60_000 });
  await screen(page, 'metrics');

  step('deploying a second commit, then rolling back');
  // A new commit on the served (bare) repository's branch.
  const git = (...args) =>
    execFileSync(
      'git',
      ['-C', env('REPO_DIR'), '-c', 'user.name=Browser', '-c', 'user.email=b@example.com', ...args],
      { encoding: 'utf8' },
    ).trim();
  const second = git('commit-tree', 'main^{tree}', '-p', 'main', '-m', 'Second commit');
  git('update-ref', 'refs/heads/main', second);
  await page.goto(`${BASE}${SERVICE_PATH}`);
  // The secret set above redeployed the service; wait for that to finish first.
  await page.locator('#status .flash', { hasText: 'in progress' }).waitFor({
    state: 'detached',
    timeout: DEPLOY_TIMEOUT,
  });
  // Another tab keeps the overview open: its row changes as the deployment does, unreloaded.
  const overview = await context.newPage();
  await overview.goto(`${BASE}/`);
  const changedAt = () =>
    overview.locator('#overview tr', { hasText: SERVICE }).locator('time').getAttribute('datetime');
  const before = await changedAt();
  await page.getByRole('button', { name: /^Deploy / }).click();
  await page.waitForURL(new RegExp(`${SERVICE_PATH}/deployments/\\d+$`));
  await watchUntilLive(page);
  for (let i = 0; (await changedAt()) === before; i++) {
    if (i === 100) throw new Error('the open overview did not follow the deployment');
    await overview.waitForTimeout(100);
  }
  await overview.locator('#overview .badge.status-live').first().waitFor();
  await overview.close();
  await page.reload();
  await page.getByText('Second commit').first().waitFor();
  await page.getByRole('link', { name: 'Deployments' }).click();
  await screen(page, 'deployments');
  await page.getByRole('link', { name: 'Overview' }).click();
  await page.getByRole('button', { name: 'Roll back' }).click();
  await page.waitForURL(new RegExp(`${SERVICE_PATH}/deployments/\\d+$`));
  await page.getByText(/^rollback by/).waitFor();
  await watchUntilLive(page);

  step('making an API token, shown once, then revoking it');
  await page.getByRole('link', { name: 'API tokens' }).click();
  await page.getByLabel('What it is for').fill('ci');
  await page.getByLabel('deploy').check();
  await page.getByRole('button', { name: 'Make the token' }).click();
  const value = await page.locator('#new-token').textContent();
  if (!value.startsWith('hlv_')) throw new Error(`no token shown: ${value}`);
  await screen(page, 'tokens');
  await page.getByRole('button', { name: 'Revoke ci' }).click();
  await page.getByText('revoked: it no longer works').waitFor();
  if ((await page.content()).includes(value)) throw new Error('the token is shown again');

  step('filtering the audit log');
  await page.getByRole('link', { name: 'Audit log' }).click();
  await page.getByLabel('Action starts with').fill('token');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/action=token/);
  await page.getByRole('rowheader', { name: 'token.revoke' }).waitFor();
  await page.getByRole('rowheader', { name: 'token.create' }).waitFor();
  if ((await page.getByRole('rowheader', { name: /^auth\./ }).count()) > 0)
    throw new Error('the filter let sign-ins through');
  await screen(page, 'audit');

  step('a page that does not exist says so');
  const missing = await page.goto(`${BASE}/p/${PROJECT}/s/nothing-here`);
  if (missing.status() !== 404) throw new Error(`a missing service answered ${missing.status()}`);
  await page.getByRole('alert').filter({ hasText: /nothing-here.* not found/ }).waitFor();
  await screen(page, 'not-found');

  const longest = await tasks.max();
  step(`longest main-thread task: ${longest.toFixed(0)} ms`);
  if (violations.length) throw new Error(`CSP violations:\n${violations.join('\n')}`);
  step('passed');
} catch (error) {
  await page.screenshot({ path: `${process.env.ARTIFACTS_DIR}/failure.png`, fullPage: true });
  console.error(`dashboard: failed on ${page.url()}`);
  throw error;
} finally {
  await browser.close();
}
