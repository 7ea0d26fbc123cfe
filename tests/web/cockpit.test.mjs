// The cockpit page in Debian's headless Chromium (playwright-core), against the real binary: state on load and
// after a reload, every operator action checked through the API, the detail view's chart, no horizontal
// overflow at 390 and 1280 px, a held canary's ledger, and an automated accessibility check (axe-core).
// Screenshots go to the test's own output folder (COCKPIT_SHOTS; scripts/refresh_screenshots.sh points it at
// docs/screenshots/), so a run never changes tracked files.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

import { launchChromium, startCockpit } from './cockpit.mjs';

const require = createRequire(import.meta.url);
const SHOTS = process.env.COCKPIT_SHOTS || join(tmpdir(), 'mcp-cockpit-screenshots');
const CONFIG = `
[canary]
min_interval = "10ms"
[slo.stub.gates.breach]
latency_p95_ms = 1000.0
gaps = 0.4
[slo.stub.gates.dark]
silent = true
`;
/** A canary that checks every 300 ms and decides nothing for a long time. */
const STEADY = { latency_p95_ms: 800, error_rate: 0.05, interval: '300ms', window: '1s', successesToPromote: 10000, deadline: '1h' };

let browser;
let server;

before(async () => {
  browser = await launchChromium(chromium);
  server = await startCockpit({ config: CONFIG });
  mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const start = (modelId, toGate, sloPolicy, extra = {}) =>
  server.tool('start_canary', { modelId, fromGate: 'stage', toGate, sloPolicy, ...extra });
const status = (canaryId) => server.tool('canary_status', { canaryId });

async function open(width = 1280) {
  const page = await browser.newPage({ viewport: { width, height: 900 } });
  await page.goto(`${server.base}/`);
  await page.waitForSelector('#conn:has-text("live")');
  return page;
}

/** What a card shows that does not change from one check to the next. */
async function cardFacts(page, id) {
  const card = page.locator(`.card[data-canary="${id}"]`);
  await card.waitFor();
  return {
    title: await card.locator('h3').textContent(),
    policy: await card.locator('.policy').textContent(),
    badge: await card.locator('.badge').textContent(),
  };
}

test('on open and after a reload: running canaries as cards, an ended one under recent with its reason', async () => {
  const one = await start('load-a', 'production', STEADY);
  const two = await start('load-b', 'production', STEADY);
  const ended = await start('load-c', 'production', STEADY);
  await server.tool('abort_canary', { canaryId: ended.canaryId, reason: 'ended for the test' });
  await server.tool('run_eval', { taskId: 'probe', configId: 'page' });

  const page = await open();
  const before = {};
  for (const c of [one, two]) {
    const facts = await cardFacts(page, c.canaryId);
    assert.ok(facts.title.includes(c.modelId) && facts.title.includes('stage → production'), facts.title);
    assert.ok(facts.policy.includes('p95 ≤ 800 ms') && facts.policy.includes('every 300ms'), facts.policy);
    assert.equal(facts.badge, 'running');
    const progress = await page.locator(`.card[data-canary="${c.canaryId}"] .progress`).textContent();
    assert.match(progress, /passes \d+\/10000 · failures \d+\/2 · undecided \d+\/6/);
    before[c.canaryId] = facts;
  }
  assert.equal(await page.locator(`.card[data-canary="${ended.canaryId}"]`).count(), 0, 'not among the active');
  const recent = page.locator(`#recent-list [data-canary="${ended.canaryId}"]`);
  assert.match(await recent.textContent(), /aborted by hand — “ended for the test”/);
  await page.locator('#jobs tr[data-status="completed"]').first().waitFor();

  await page.reload();
  await page.waitForSelector('#conn:has-text("live")');
  for (const c of [one, two]) assert.deepEqual(await cardFacts(page, c.canaryId), before[c.canaryId]);
  assert.match(await page.locator(`#recent-list [data-canary="${ended.canaryId}"]`).textContent(), /ended for the test/);

  // No serious accessibility violation on the page with content.
  await page.addScriptTag({ path: require.resolve('axe-core/axe.min.js') });
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')})`);
  });
  assert.deepEqual(violations, []);
  for (const c of [one, two]) await server.tool('abort_canary', { canaryId: c.canaryId, reason: 'test over' });
  await page.close();
});

test('pause, resume, promote (with a reason) and abort (after confirming) from the page; cancel a job', async () => {
  const moving = await start('act-a', 'production', STEADY);
  const doomed = await start('act-b', 'production', STEADY);
  const page = await open();
  const card = page.locator(`.card[data-canary="${moving.canaryId}"]`);
  await card.waitFor();
  assert.equal(await card.locator('[data-action=resume]').isDisabled(), true, 'nothing to resume');

  await card.locator('[data-action=pause]').click();
  await card.locator('.badge.paused').waitFor();
  assert.equal((await status(moving.canaryId)).status, 'paused');
  assert.equal(await card.locator('[data-action=pause]').isDisabled(), true);

  await card.locator('[data-action=resume]').click();
  await card.locator('.badge.running').waitFor();
  assert.equal((await status(moving.canaryId)).status, 'running');

  await card.locator('[data-action=promote]').click();
  await page.fill('#ask-reason', 'looks good in the cockpit');
  await page.click('#ask-ok');
  await page.locator(`#recent-list [data-canary="${moving.canaryId}"]`).waitFor({ state: 'attached' });
  const promoted = await status(moving.canaryId);
  assert.deepEqual([promoted.status, promoted.reasonCode, promoted.reason], ['promoted', 'manual', 'looks good in the cockpit']);

  const other = page.locator(`.card[data-canary="${doomed.canaryId}"]`);
  await other.locator('[data-action=abort]').click();
  await page.click('#ask-cancel');
  assert.equal((await status(doomed.canaryId)).status, 'running', 'cancelling the confirmation does nothing');
  await other.locator('[data-action=abort]').click();
  await page.fill('#ask-reason', 'stopped from the page');
  await page.click('#ask-ok');
  await page.locator(`#recent-list [data-canary="${doomed.canaryId}"]`).waitFor({ state: 'attached' });
  const aborted = await status(doomed.canaryId);
  assert.deepEqual([aborted.status, aborted.reasonCode, aborted.reason], ['rolled_back', 'manual', 'stopped from the page']);
  const gates = await page.locator('#gates tr[data-model="act-a"]').textContent();
  assert.ok(gates.includes('production'), gates);

  // A job's Cancel.
  const job = await server.tool('run_eval', { taskId: 'demo', configId: 'cancel-me' });
  const row = page.locator(`#jobs tr[data-job="${job.jobId}"]`);
  await row.locator('[data-action=cancel]').click();
  await page.locator(`#jobs tr[data-job="${job.jobId}"][data-status="cancelled"]`).waitFor();
  assert.equal((await server.tool('job_status', { jobId: job.jobId })).status, 'cancelled');
  await page.close();
});

test('the detail view charts a breach: labelled axes, the SLO with its value, a failing point, a gap', async () => {
  const breach = await start('detail', 'breach', { ...STEADY, interval: '100ms', failureLimit: 10000, maxNoDecision: 10000 });
  const page = await open();
  await page.goto(`${server.base}/#canary/${breach.canaryId}`);
  const latency = page.locator('#chart-latency svg');
  await page.waitForFunction(() => {
    const svg = document.querySelector('#chart-latency svg');
    return svg && svg.querySelector('circle.point.fail') && svg.querySelector('rect.gap');
  }, null, { timeout: 30000 });
  assert.equal(await latency.locator('.slo-label').textContent(), 'SLO 800 ms');
  assert.equal(await latency.locator('.axis-label').textContent(), 'time of check (UTC)');
  const ticks = await latency.locator('.axis-y text').allTextContents();
  assert.ok(ticks.length >= 3 && ticks.every((t) => / ms$/.test(t)), ticks.join());
  // Read in one go: the chart is drawn anew with every check.
  const [fill, tip] = await page.evaluate(() => {
    const dot = document.querySelector('#chart-latency circle.point.fail');
    return [getComputedStyle(dot).fill, dot.querySelector('title').textContent];
  });
  assert.equal(fill, 'rgb(248, 81, 73)', 'a failure is red');
  assert.match(tip, /check \d+ at \d\d:\d\d:\d\d: p95 \d+ ms.*→ fail \(latency_above_slo\)/);
  const rows = await page.locator('#checks-table tbody tr').count();
  assert.ok(rows >= 2, `${rows} rows`);
  assert.ok((await page.locator('#trail li').count()) >= 2);
  await page.screenshot({ path: join(SHOTS, 'cockpit-detail.png'), fullPage: true });
  await server.tool('abort_canary', { canaryId: breach.canaryId, reason: 'test over' });
  await page.close();
});

test('a held canary checked every 100 ms for 5 s leaves at most a few ledger lines', async () => {
  const page = await open();
  const held = await start('held', 'dark', { ...STEADY, interval: '100ms', maxNoDecision: 3 });
  // 50 checks of a silent gate: the canary holds after 3 and goes on checking.
  await page.waitForFunction((id) => {
    const lines = Array.from(document.querySelectorAll('#ledger p')).filter((p) => p.textContent.includes(id) && p.dataset.undecided);
    return lines.some((line) => Number(line.dataset.count) >= 50);
  }, held.canaryId, { timeout: 30000, polling: 200 });
  const lines = await page.$$eval('#ledger p', (ps, id) => ps.filter((p) => p.textContent.includes(id)).map((p) => p.textContent), held.canaryId);
  assert.ok(lines.length <= 4, lines.join('\n'));
  assert.ok(lines.some((l) => /×\d+$/.test(l)), lines.join('\n'));
  await server.tool('abort_canary', { canaryId: held.canaryId, reason: 'test over' });
  await page.close();
});

test('no horizontal scrolling at 390 px or at 1280 px', async () => {
  const running = await start('wide-a', 'production', STEADY);
  await server.tool('run_eval', { taskId: 'probe', configId: 'narrow' });
  for (const width of [390, 1280]) {
    const page = await open(width);
    await page.locator(`.card[data-canary="${running.canaryId}"]`).waitFor();
    const sizes = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(sizes[0] <= sizes[1], `scrollWidth ${sizes[0]} > innerWidth ${sizes[1]} at ${width} px`);
    await page.screenshot({ path: join(SHOTS, `cockpit-${width}.png`), fullPage: true });
    await page.close();
  }
  await server.tool('abort_canary', { canaryId: running.canaryId, reason: 'test over' });
});
