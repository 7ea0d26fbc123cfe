// dashboard/sseClient.js under Node's own test runner, against the real binary.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

import { startCockpit, waitFor } from './cockpit.mjs';

const require = createRequire(import.meta.url);
const LukhasMCPCockpit = require('../../dashboard/sseClient.js');

test('named events, narratives and patterns arrive, and a single-job stream ends the client', async () => {
  const server = await startCockpit();
  try {
    const all = new LukhasMCPCockpit(server.base, 'any-key-is-ignored-when-keyless');
    const names = [];
    const narratives = [];
    all.on('event', (e) => names.push(e.event));
    all.on('narrative', (e) => narratives.push(e.narrative));
    const opened = waitFor(all, 'open');
    all.subscribe('job/*');
    await opened;
    const completed = waitFor(all, 'completed');
    const job = await server.tool('run_eval', { taskId: 'probe', configId: 'js' });
    const done = await completed;
    assert.equal(done.topic, `job/${job.jobId}`);
    assert.equal(done.data.status, 'completed');
    assert.deepEqual(names.slice(0, 2), ['queued', 'started']);
    assert.ok(narratives.every((n) => /^\[\d{4}-\d\d-\d\d \d\d:\d\d\] job_/.test(n)), narratives.join('\n'));
    all.close();

    // A single job: replayed from its start, and the client stops by itself after the end.
    const one = new LukhasMCPCockpit(server.base, null);
    const seen = [];
    one.on('event', (e) => seen.push(e.event));
    const ended = waitFor(one, 'end');
    one.subscribe(`job/${job.jobId}`);
    await ended;
    assert.deepEqual(seen, ['queued', 'started', 'progress', 'completed']);
    assert.equal(one.state, 'ended');
  } finally {
    await server.stop();
  }
});

test('a restart mid-stream resumes from Last-Event-ID with no gap and no duplicate', async () => {
  let server = await startCockpit();
  const { dir, port } = server;
  const client = new LukhasMCPCockpit(server.base, null, { minBackoffMs: 100, maxBackoffMs: 400 });
  const ids = [];
  const messages = [];
  client.on('note', (e) => {
    ids.push(Number(e.id));
    messages.push(e.data.message);
  });
  try {
    const opened = waitFor(client, 'open');
    client.subscribe('ops/*');
    await opened;
    const third = waitFor(client, 'note', (e) => e.data.message === 'note 3');
    for (const n of [1, 2, 3]) await server.tool('publish_note', { topic: 'ops/deploys', message: `note ${n}` });
    await third;
    await server.stop();
    const sixth = waitFor(client, 'note', (e) => e.data.message === 'note 6');
    server = await startCockpit({ dir, port });
    // Published before the client is back: it gets them from the log with Last-Event-ID.
    for (const n of [4, 5, 6]) await server.tool('publish_note', { topic: 'ops/deploys', message: `note ${n}` });
    await sixth;
    assert.deepEqual(messages, ['note 1', 'note 2', 'note 3', 'note 4', 'note 5', 'note 6']);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b));
    assert.equal(new Set(ids).size, ids.length);
  } finally {
    client.close();
    await server.stop();
  }
});

test('a wrong key is an error event and the client stops instead of retrying', async () => {
  const server = await startCockpit({ env: { LUKHAS_MCP_API_KEYS: 'right-key' } });
  try {
    const client = new LukhasMCPCockpit(server.base, 'wrong-key');
    const errors = [];
    client.on('error', (e) => errors.push(e));
    const failed = waitFor(client, 'error');
    client.subscribe('job/*');
    const error = await failed;
    assert.equal(error.status, 401);
    assert.equal(error.fatal, true);
    assert.equal(client.state, 'stopped');
    // Stopped for good: no timer, no connection attempt left.
    assert.equal(client._timer, null);
    assert.equal(errors.length, 1);

    const right = new LukhasMCPCockpit(server.base, 'right-key');
    const opened = waitFor(right, 'open');
    right.subscribe('job/*');
    await opened;
    right.close();
  } finally {
    await server.stop();
  }
});

test("a refused topic stops the client with the server's own message, not just the status", async () => {
  const server = await startCockpit();
  try {
    for (const [topic, status, words] of [['jobs', 400, 'topic'], ['job/no-such-job', 404, 'no-such-job']]) {
      const client = new LukhasMCPCockpit(server.base, null);
      const failed = waitFor(client, 'error');
      client.subscribe(topic);
      const error = await failed;
      assert.equal(error.status, status);
      assert.equal(error.fatal, true);
      assert.ok(error.message.includes(words) && !error.message.startsWith('HTTP '), error.message);
      assert.equal(client.state, 'stopped');
    }
  } finally {
    await server.stop();
  }
});

test("the kit's Example Integration runs unchanged in Node", async () => {
  const server = await startCockpit({ config: '[canary]\nmin_interval = "10ms"\n[policies."*"."*"]\ninterval = "200ms"\n' });
  const latencies = [];
  const errorRates = [];
  const updateLatencyChart = (v) => latencies.push(v);
  const updateErrorChart = (v) => errorRates.push(v);
  try {
    // The kit's snippet, verbatim but for the base URL.
    const cockpit = new LukhasMCPCockpit(server.base, 'your-api-key');
    cockpit.on('completed', (event) => {
      console.log(event.narrative);
    });
    cockpit.on('metric', (event) => {
      updateLatencyChart(event.data.latency_p95_ms);
      updateErrorChart(event.data.error_rate);
    });
    cockpit.subscribe('canary/*');

    const promoted = waitFor(cockpit, 'promoted');
    await waitFor(cockpit, 'open');
    await server.tool('start_canary', {
      modelId: 'lukhas-v2', fromGate: 'stage', toGate: 'production',
      sloPolicy: { latency_p95_ms: 800, error_rate: 0.01 },
    });
    await promoted;
    assert.equal(latencies.length, 3);
    assert.ok(latencies.every((v) => v > 0 && v < 800) && errorRates.every((v) => v >= 0 && v < 0.01));
    cockpit.close();
  } finally {
    await server.stop();
  }
});
