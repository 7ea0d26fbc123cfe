// The SSE probe in Debian's headless Chromium (playwright-core, the system browser; no
// browser download), against the real binary. Screenshots go to the test's own output folder (a run never
// changes tracked files); scripts/refresh_screenshots.sh points COCKPIT_SHOTS at docs/screenshots/.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { chromium } from 'playwright-core';

import { freePort, launchChromium, startCockpit } from './cockpit.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHOTS = process.env.COCKPIT_SHOTS || join(tmpdir(), 'mcp-cockpit-screenshots');
const CONFIG = `
[canary]
min_interval = "10ms"
[policies."*"."*"]
interval = "400ms"
successesToPromote = 4
[slo.stub.gates.production]
latency_p95_ms = 420.0
[evals.slow]
command = ["{self}", "demo-eval", "--steps", "4", "--step-ms", "300", "--config-id", "{configId}"]
`;

let browser;
let server;

before(async () => {
  browser = await launchChromium(chromium);
  // Keyless, so `Origin: null` (the probe opened from a file) may read /sse only by this opt-in.
  server = await startCockpit({ config: CONFIG, env: { COCKPIT_ALLOW_NULL_ORIGIN: 'true' } });
  mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function probeShowsAJob(page, url) {
  await page.goto(url);
  await page.fill('#base', server.base);
  await page.fill('#topic', 'job/*');
  await page.click('#connect');
  await page.waitForSelector('.line.success');
  const job = await server.tool('run_eval', { taskId: 'slow', configId: 'browser' });
  await page.waitForSelector(`.line.success:has-text("${job.jobId} → completed")`);
  const colours = await page.$$eval('.line', (lines) =>
    lines.map((l) => [l.className.split(' ')[1], getComputedStyle(l).color]),
  );
  const colourOf = (kind) => colours.find(([k]) => k === kind)?.[1];
  assert.equal(colourOf('success'), 'rgb(63, 185, 80)', 'green for success');
  assert.equal(colourOf('progress'), 'rgb(240, 136, 62)', 'orange for progress');
  const texts = await page.$$eval('.line', (lines) => lines.map((l) => l.textContent));
  for (const event of ['queued', 'started', 'progress', 'completed']) {
    assert.ok(texts.some((t) => t.includes(`  ${event}  `) && t.includes(job.jobId)), `${event} in ${texts.join('\n')}`);
  }
}

test('the probe served by the cockpit shows a real job in colour', async () => {
  const page = await browser.newPage({ viewport: { width: 1100, height: 520 } });
  await probeShowsAJob(page, `${server.base}/probe`);
  const errors = await page.$$eval('.line.error', (lines) => lines.length);
  assert.equal(errors, 0);
  await page.screenshot({ path: join(SHOTS, 'probe.png') });
  await page.close();
});

test('the probe opened from a file works too (keyless: with COCKPIT_ALLOW_NULL_ORIGIN)', async () => {
  const page = await browser.newPage();
  await probeShowsAJob(page, pathToFileURL(join(ROOT, 'docs', 'mcp', 'sse_probe.html')).href);
  await page.close();
});

test("the probe served by python -m http.server -d docs/mcp/ (the kit's command, on a free port) works", async () => {
  const port = await freePort();
  const web = spawn('python3', ['-m', 'http.server', String(port), '--bind', '127.0.0.1', '-d', join(ROOT, 'docs', 'mcp')], {
    stdio: 'ignore',
  });
  try {
    // Ready when it answers (bounded).
    for (let tries = 0; ; tries += 1) {
      const up = await fetch(`http://127.0.0.1:${port}/sse_probe.html`).then((r) => r.ok, () => false);
      if (up) break;
      assert.ok(tries < 100, 'python -m http.server never answered');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const page = await browser.newPage();
    await probeShowsAJob(page, `http://127.0.0.1:${port}/sse_probe.html`);
    await page.close();
  } finally {
    web.kill();
  }
});
