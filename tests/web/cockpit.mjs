// Starting the real mcp-cockpit binary for the JavaScript tests: a fresh directory, a port of our choosing
// (so a restart comes back on the same one), and tools/call over /mcp.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BIN = process.env.COCKPIT_BIN;
if (!BIN) throw new Error('set COCKPIT_BIN to the mcp-cockpit binary');

export function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts the binary; resolves once it logs that it listens. */
export async function startCockpit({ dir, port, env = {}, config = '' } = {}) {
  dir = dir || mkdtempSync(join(tmpdir(), 'cockpit-js-'));
  port = port || (await freePort());
  writeFileSync(join(dir, 'cockpit.toml'), config);
  const child = spawn(BIN, ['--config', join(dir, 'cockpit.toml')], {
    env: { ...process.env, PORT: String(port), LUKHAS_REPO_ROOT: dir, RUST_LOG: 'info', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  await new Promise((resolve, reject) => {
    child.stderr.on('data', (chunk) => {
      log += chunk;
      if (log.includes('listening on port')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`cockpit exited (${code}): ${log}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  return {
    dir,
    port,
    base,
    child,
    async stop(signal = 'SIGKILL') {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.on('exit', resolve));
      child.kill(signal);
      await exited;
    },
    async tool(name, args, key) {
      const headers = { 'Content-Type': 'application/json' };
      if (key) headers['X-API-Key'] = key;
      const res = await fetch(`${base}/mcp`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } }),
      });
      const body = await res.json();
      if (body.error || body.result.isError) throw new Error(JSON.stringify(body));
      return body.result.structuredContent;
    },
  };
}

/** Debian's Chromium, headless, as root, with no calls to the closed network. */
export function launchChromium(chromium) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/** Resolves with the first value `pick` returns for an event of `emitter`, or rejects after `ms`. */
export function waitFor(cockpit, event, pick = () => true, ms = 30000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    const handler = (e) => {
      const value = pick(e);
      if (value) {
        clearTimeout(timer);
        cockpit.off(event, handler);
        resolve(value === true ? e : value);
      }
    };
    cockpit.on(event, handler);
  });
}
