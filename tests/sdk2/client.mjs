// The TypeScript MCP SDK v2 client (`@modelcontextprotocol/client`) in its `auto` mode against a real
// mcp-cockpit: it must land on the 2026-07-28 revision with no initialize (checked on the wire through a
// recording fetch), list tools, run an eval and follow it with job_status, read the job as a resource, and
// hear the job's updates through subscriptions/listen.
// Usage: node client.mjs <base-url> <api-key>
import assert from 'node:assert/strict';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

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
await client.close();
assert.ok(
    methods.filter(m => m !== 'response -').every(m => m.endsWith('2026-07-28')),
    `every request spoke 2026-07-28: ${methods}`
);
console.log(`TypeScript SDK v2: negotiated ${era} (2026-07-28) with ${methods.length} requests, no initialize`);
