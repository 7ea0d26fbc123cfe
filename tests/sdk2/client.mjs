// The TypeScript MCP SDK v2 client (`@modelcontextprotocol/client`) in its `auto` mode against a real
// mcp-cockpit: it must land on the 2026-07-28 revision with no initialize (checked on the wire through a
// recording fetch), list tools, run an eval and follow it with job_status, read the job as a resource, hear
// the job's updates through subscriptions/listen, complete a run_eval taskId, and — through the official
// Tasks extension client (`@modelcontextprotocol/ext-tasks`) — run evals as tasks: one cancelled, and one
// that runs 90 s to its end with the SDK's default request timeout (60 s), which only polling survives.
// Usage: node client.mjs <base-url> <api-key>
import assert from 'node:assert/strict';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { createTaskSessionFromClient, resultFromTaskOutcome } from '@modelcontextprotocol/ext-tasks/client';

const [base, key] = process.argv.slice(2);
const methods = [];
const recordingFetch = async (url, init) => {
    if (init?.body) {
        const body = JSON.parse(init.body);
        methods.push(`${body.method ?? 'response'} ${new Headers(init.headers).get('mcp-protocol-version') ?? '-'}`);
    }
    return fetch(url, init);
};

const client = new Client({ name: 'cockpit-sdk2-test', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
    requestInit: { headers: { 'X-API-Key': key } },
    fetch: recordingFetch
});
await client.connect(transport);
assert.equal(client.getProtocolEra(), 'modern', 'auto mode lands on 2026-07-28');
assert.ok(!methods.some(m => m.startsWith('initialize')), `no initialize on the wire: ${methods}`);
assert.equal(methods[0], 'server/discover 2026-07-28', `the probe comes first: ${methods}`);

const era = client.getProtocolEra();
const { tools } = await client.listTools();
assert.ok(tools.some(t => t.name === 'run_eval'), 'run_eval is listed');

const started = await client.callTool({ name: 'run_eval', arguments: { taskId: 'demo', configId: 'sdk2' } });
assert.equal(started.isError, false);
const jobId = started.structuredContent.jobId;
const uri = `cockpit://job/${jobId}`;

let updated;
const heard = new Promise(resolve => (updated = resolve));
client.setNotificationHandler('notifications/resources/updated', async notification => {
    if (notification.params.uri === uri) updated();
});
const subscription = await client.listen({ resourceSubscriptions: [uri] });
assert.deepEqual(subscription.honoredFilter.resourceSubscriptions, [uri]);
await heard;

let status;
for (let i = 0; i < 200; i++) {
    status = (await client.callTool({ name: 'job_status', arguments: { jobId } })).structuredContent;
    if (status.status === 'completed') break;
    await new Promise(resolve => setTimeout(resolve, 100));
}
assert.equal(status.status, 'completed');
const read = await client.readResource({ uri });
assert.equal(JSON.parse(read.contents[0].text).jobId, jobId);

await subscription.close();

const completion = await client.complete({
    ref: { type: 'ref/prompt', name: 'evaluate' },
    argument: { name: 'taskId', value: 'nin' }
});
assert.deepEqual(completion.completion.values, ['ninety'], 'run_eval task ids complete by prefix');

// The Tasks extension speaks 2026-07-28 task traffic through a request path of the host's own; this one
// gives each request its JSON-RPC id and POSTs it with the revision's headers and the key, as the SDK's
// transport does.
const framing = {
    protocolVersion: '2026-07-28',
    clientInfo: { name: 'cockpit-sdk2-test', version: '1.0.0' },
    clientCapabilities: { extensions: { 'io.modelcontextprotocol/tasks': {} } }
};
let rawId = 1000;
const rawDispatch = async unframed => {
    const request = { jsonrpc: '2.0', id: rawId++, ...unframed };
    const name = request.params?.name ?? request.params?.uri ?? request.params?.taskId;
    const headers = {
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
        'X-API-Key': key,
        'MCP-Protocol-Version': framing.protocolVersion,
        'Mcp-Method': request.method,
        ...(name === undefined ? {} : { 'Mcp-Name': String(name) })
    };
    methods.push(`${request.method} ${framing.protocolVersion}`);
    const response = await fetch(`${base}/mcp`, { method: 'POST', headers, body: JSON.stringify(request) });
    return response.json();
};
const tasks = createTaskSessionFromClient(client, { endpointId: 'cockpit', rawDispatch, v2RequestFraming: framing });

const doomed = await tasks.callTool('run_eval', { taskId: 'ninety', configId: 'cancel-me', wait: true });
assert.equal(doomed.kind, 'task', 'a waiting run_eval becomes a task');
const doomedId = doomed.handle.taskId;
await doomed.cancel();
let cancelled;
for (let i = 0; i < 100 && cancelled !== 'cancelled'; i++) {
    cancelled = (await client.callTool({ name: 'job_status', arguments: { jobId: doomedId } })).structuredContent.status;
    await new Promise(resolve => setTimeout(resolve, 100));
}
assert.equal(cancelled, 'cancelled', 'tasks/cancel cancels the job behind the task');
await doomed.close();

const long = await tasks.callTool('run_eval', { taskId: 'ninety', configId: 'long', wait: true });
assert.equal(long.kind, 'task');
const began = Date.now();
const { outcome } = await long.settle();
const finished = resultFromTaskOutcome(outcome);
assert.equal(finished.structuredContent.status, 'completed', 'the 90 s eval completes as a task');
assert.ok(Date.now() - began > 60_000, 'it outlived the default request timeout');
await tasks.close();
await client.close();
assert.ok(
    methods.filter(m => m !== 'response -').every(m => m.endsWith('2026-07-28')),
    `every request spoke 2026-07-28: ${methods}`
);
console.log(`TypeScript SDK v2: negotiated ${era} (2026-07-28) with ${methods.length} requests, no initialize`);
