/*
 * LukhasMCPCockpit — the cockpit's event client. No dependencies; a classic script for browsers (sets
 * globalThis.LukhasMCPCockpit) and a CommonJS module for Node >= 18 (module.exports).
 *
 *   const cockpit = new LukhasMCPCockpit('http://localhost:8766', 'your-api-key');
 *   cockpit.on('completed', (e) => console.log(e.narrative));   // e = {id, topic, event, data, narrative}
 *   cockpit.on('narrative', (e) => ledger.append(e.narrative)); // every event that has one
 *   cockpit.on('error', (e) => console.warn(e.message));        // e = {status?, message, fatal}
 *   cockpit.subscribe('canary/*');
 *
 * The key travels as an X-API-Key header over fetch streaming, never in a URL. The client parses SSE itself,
 * reconnects with capped exponential backoff and Last-Event-ID (so nothing is missed or repeated), and stops
 * for good on 204, on an auth error (401/403: reported once, never retried), or when every topic is a
 * single job or canary whose stream has ended.
 */
(function (root) {
  'use strict';

  const SINGLE_ENTITY = /^(job|canary)\/[A-Za-z0-9_.:-]+$/;

  /** The server's own words for a refused stream (`{"error", "message"}`), else the status. */
  async function messageOf(response) {
    try {
      const body = await response.json();
      if (body && typeof body.message === 'string') return body.message;
    } catch (_) { /* not JSON */ }
    return 'HTTP ' + response.status;
  }

  class LukhasMCPCockpit {
    constructor(baseUrl, apiKey, options) {
      const opts = options || {};
      this.baseUrl = String(baseUrl || '').replace(/\/+$/, '');
      this.apiKey = apiKey || null;
      this.minBackoffMs = opts.minBackoffMs || 500;
      this.maxBackoffMs = opts.maxBackoffMs || 15000;
      this.fetch = opts.fetch || root.fetch.bind(root);
      this.handlers = new Map();
      this.topics = new Set();
      this.lastEventId = opts.lastEventId || null;
      /** `idle` (no topics), `connecting`, `open`, `waiting` (to reconnect), `ended` or `stopped`. */
      this.state = 'idle';
      this._backoff = this.minBackoffMs;
      this._controller = null;
      this._timer = null;
      this._restartQueued = false;
      this._generation = 0;
    }

    on(event, fn) {
      if (!this.handlers.has(event)) this.handlers.set(event, new Set());
      this.handlers.get(event).add(fn);
      return this;
    }

    off(event, fn) {
      const set = this.handlers.get(event);
      if (set) {
        if (fn) set.delete(fn);
        else set.clear();
      }
      return this;
    }

    subscribe(topic) {
      this.topics.add(String(topic));
      this._queueRestart();
      return this;
    }

    unsubscribe(topic) {
      this.topics.delete(String(topic));
      this._queueRestart();
      return this;
    }

    close() {
      this.state = 'stopped';
      this._disconnect();
    }

    _emit(event, payload) {
      const set = this.handlers.get(event);
      if (!set) return;
      for (const fn of Array.from(set)) {
        try {
          fn(payload);
        } catch (e) {
          if (root.console) root.console.error('LukhasMCPCockpit handler failed', e);
        }
      }
    }

    _disconnect() {
      this._generation += 1;
      if (this._timer) clearTimeout(this._timer);
      this._timer = null;
      if (this._controller) this._controller.abort();
      this._controller = null;
    }

    /** Several subscribe() calls in a row make one connection. */
    _queueRestart() {
      if (this._restartQueued || this.state === 'stopped') return;
      this._restartQueued = true;
      Promise.resolve().then(() => {
        this._restartQueued = false;
        if (this.state === 'stopped') return;
        this._disconnect();
        if (this.topics.size === 0) {
          this.state = 'idle';
          return;
        }
        this._backoff = this.minBackoffMs;
        this._connect(this._generation);
      });
    }

    _url() {
      const query = Array.from(this.topics).map((t) => 'topic=' + encodeURIComponent(t)).join('&');
      return this.baseUrl + '/sse?' + query;
    }

    _stop(state, payload) {
      this.state = state;
      this._disconnect();
      this._emit(state === 'ended' ? 'end' : 'error', payload);
    }

    _retry(generation) {
      if (generation !== this._generation || this.state === 'stopped' || this.state === 'ended') return;
      this.state = 'waiting';
      const wait = this._backoff;
      this._backoff = Math.min(this._backoff * 2, this.maxBackoffMs);
      this._timer = setTimeout(() => this._connect(generation), wait);
    }

    async _connect(generation) {
      if (generation !== this._generation) return;
      this.state = 'connecting';
      const controller = new AbortController();
      this._controller = controller;
      const headers = { Accept: 'text/event-stream' };
      if (this.apiKey) headers['X-API-Key'] = this.apiKey;
      if (this.lastEventId !== null) headers['Last-Event-ID'] = String(this.lastEventId);
      let response;
      try {
        response = await this.fetch(this._url(), { headers, signal: controller.signal, cache: 'no-store' });
      } catch (e) {
        if (generation !== this._generation) return;
        this._emit('error', { message: 'cannot reach ' + this.baseUrl + ': ' + e.message, fatal: false });
        return this._retry(generation);
      }
      if (generation !== this._generation) return;
      if (response.status === 204) return this._stop('ended', { reason: 'nothing more to stream' });
      if (response.status === 401 || response.status === 403) {
        const message = await messageOf(response);
        return this._stop('stopped', { status: response.status, message, fatal: true });
      }
      if (!response.ok || !response.body) {
        const fatal = response.status === 400 || response.status === 404;
        const payload = { status: response.status, message: await messageOf(response), fatal };
        if (fatal) return this._stop('stopped', payload);
        this._emit('error', payload);
        return this._retry(generation);
      }
      this.state = 'open';
      this._emit('open', { url: this._url() });
      const ended = await this._read(response.body, generation);
      if (generation !== this._generation) return;
      const allSingle = Array.from(this.topics).every((t) => SINGLE_ENTITY.test(t));
      if (ended && allSingle) return this._stop('ended', { reason: 'every entity ended' });
      this._retry(generation);
    }

    /** Reads and dispatches frames; true if the server ended the stream (not a network failure). */
    async _read(body, generation) {
      const reader = body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return true;
          if (generation !== this._generation) return false;
          buffer += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
            this._frame(block);
          }
        }
      } catch (e) {
        if (generation === this._generation) {
          this._emit('error', { message: 'stream interrupted: ' + e.message, fatal: false });
        }
        return false;
      }
    }

    _frame(block) {
      let id = null;
      let event = 'message';
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (!line || line[0] === ':') continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') id = value;
        else if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
        else if (field === 'retry' && /^\d+$/.test(value)) this.minBackoffMs = Math.max(Number(value), 1);
      }
      if (data.length === 0) return;
      if (id !== null) this.lastEventId = id;
      let parsed;
      try {
        parsed = JSON.parse(data.join('\n'));
      } catch (_) {
        parsed = { raw: data.join('\n') };
      }
      this._backoff = this.minBackoffMs;
      const payload = { id, topic: parsed.topic, event, data: parsed, narrative: parsed.narrative };
      this._emit(event, payload);
      if (payload.narrative) this._emit('narrative', payload);
      this._emit('event', payload);
    }
  }

  root.LukhasMCPCockpit = LukhasMCPCockpit;
  if (typeof module === 'object' && module && module.exports) {
    module.exports = LukhasMCPCockpit;
    module.exports.LukhasMCPCockpit = LukhasMCPCockpit;
  }
})(typeof globalThis !== 'undefined' ? globalThis : this);
