// Shared helpers: DOM building (never innerHTML), JSON-RPC, analytics, formatting, the head feed.

export const MAX_ROWS = 200;
export const BASE_PER_HIB = 1_000_000_000n;

/** The node's dashboard config (filled by app.js before any view renders). */
export const config = {
  chain_id: null, devnet: false, gateway: null, analytics: null, api_key: null, accounts: [],
};

// ---------- DOM ----------

/** Creates an element. Children: nodes, strings (as text), arrays, null. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = String(v);
      else if (k === 'dataset') for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'value') el.value = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.append(c);
    else el.append(document.createTextNode(String(c)));
  }
}

/** Truncates a string to `n` characters (with an ellipsis). */
export function truncate(s, n = 120) {
  s = String(s ?? '');
  return s.length > n ? s.slice(0, n - 1) + '…' : s;
}

/** A shortened hash or address, the full value in its title. */
export function short(v, head = 10, tail = 6) {
  const s = String(v ?? '');
  if (s.length <= head + tail + 1) return h('span', { class: 'mono' }, s);
  return h('span', { class: 'mono', title: s }, s.slice(0, head) + '…' + s.slice(-tail));
}

export function link(href, ...children) {
  return h('a', { href }, ...children);
}

/** Names of addresses from the analytics `labels` table (keyring, node, validator, provider…). */
const labels = new Map();

/** Loads the labels once (best effort, bounded): names shown beside addresses. */
export async function loadLabels() {
  if (!config.analytics) return;
  try {
    const rows = await sql("SELECT address, name, source FROM labels WHERE source IN ('keyring', 'node') ORDER BY source, name LIMIT 500", 500);
    for (const r of rows) {
      if (typeof r.address === 'string' && typeof r.name === 'string' && !labels.has(r.address)) labels.set(r.address, truncate(r.name, 32));
    }
  } catch { /* names are a convenience */ }
}

/** Name of a known address (config accounts, then labels), if any. */
export function nameOf(addr) {
  const a = config.accounts.find((x) => x.address === addr);
  return a ? a.name : labels.get(addr) || null;
}

/** A link to an account page, showing a known name or the shortened address. */
export function accountLink(addr) {
  if (!addr) return h('span', { class: 'muted' }, '—');
  const name = nameOf(addr);
  const a = h('a', { href: `#/account/${encodeURIComponent(addr)}`, title: addr, class: name ? '' : 'mono' });
  if (name) a.append(name);
  else a.append(addr.length > 22 ? addr.slice(0, 12) + '…' + addr.slice(-6) : addr);
  return a;
}

export function notice(text, kind = 'info') {
  return h('p', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : null }, text);
}

export function errorBox(err, prefix = '') {
  return notice(prefix + errText(err), 'error');
}

export function errText(err) {
  if (err == null) return 'unknown error';
  return truncate(err.message || String(err), 400);
}

export function spinner(text = 'Loading…') {
  return h('p', { class: 'muted loading', role: 'status' }, text);
}

/** A key/value list. `pairs`: [label, value(Node|string)] */
export function dl(pairs, cls = 'kv') {
  const d = h('dl', { class: cls });
  for (const [k, v] of pairs) {
    if (v === undefined) continue;
    d.append(h('dt', null, k), h('dd', null, v ?? '—'));
  }
  return d;
}

/**
 * A table in a horizontally scrolling wrapper.
 * columns: [{ label, cell(row, i) → Node|string, num?: bool }]
 */
export function table({ id, columns, rows, empty = 'Nothing yet.', caption, max = MAX_ROWS, rowAttrs }) {
  const wrap = h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': `${caption || 'data'} (table)` });
  if (!rows.length) {
    wrap.removeAttribute('tabindex');
    wrap.removeAttribute('role');
    wrap.append(h('p', { class: 'muted empty', id: id || null }, empty));
    return wrap;
  }
  const t = h('table', { id: id || null });
  if (caption) t.append(h('caption', { class: 'sr-only' }, caption));
  t.append(h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null }, c.label)))));
  const body = h('tbody');
  rows.slice(0, max).forEach((r, i) => body.append(tableRow(columns, r, i, rowAttrs)));
  t.append(body);
  wrap.append(t);
  if (rows.length > max) wrap.append(h('p', { class: 'muted' }, `Showing the first ${max} of ${rows.length} rows.`));
  return wrap;
}

export function tableRow(columns, r, i, rowAttrs) {
  const tr = h('tr', rowAttrs ? rowAttrs(r, i) : null);
  for (const c of columns) {
    let v;
    try { v = c.cell(r, i); } catch { v = '?'; }
    tr.append(h('td', { class: c.num ? 'num' : null }, v ?? '—'));
  }
  return tr;
}

export function section(title, id, ...children) {
  const hid = id ? `${id}-h` : null;
  return h('section', { class: 'card', id: id || null, 'aria-labelledby': hid }, h('h2', { id: hid }, title), ...children);
}

// ---------- formatting ----------

/** Base units (string/number/bigint) to a HIB string, exactly, without floating point. */
export function fmtHib(v, unit = true) {
  let n;
  try { n = typeof v === 'bigint' ? v : BigInt(String(v ?? '0').trim()); } catch { return String(v); }
  const neg = n < 0n;
  if (neg) n = -n;
  const int = (n / BASE_PER_HIB).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  let frac = (n % BASE_PER_HIB).toString().padStart(9, '0').replace(/0+$/, '');
  const s = (neg ? '-' : '') + int + (frac ? '.' + frac : '');
  return unit ? s + ' HIB' : s;
}

export function hibCell(v) {
  return h('span', { class: 'amount', title: `${v} base units` }, fmtHib(v));
}

/** A fixed-point fraction scaled by 1e9 as a percentage. */
export function fmtFrac(v) {
  const n = Number(v) / 1e7;
  return Number.isFinite(n) ? `${n.toFixed(2)}%` : String(v);
}

export function fmtTime(ms) {
  if (ms == null) return '—';
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return String(ms);
  return d.toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
}

export function fmtNum(v) {
  if (v == null) return '—';
  return String(v).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

// ---------- JSON-RPC ----------

export class RpcError extends Error {
  constructor(method, err) {
    const missing = err && err.code === -32601;
    super(missing ? `this node does not serve ${method}` : `${method}: ${err && err.message ? err.message : 'error'}`);
    this.code = err && err.code;
    this.missing = missing;
  }
}

let rpcId = 0;

export async function rpc(method, params = [], signal) {
  const res = await fetch('/', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: ++rpcId, method, params }),
    signal,
  });
  if (!res.ok) throw new Error(`${method}: the node answered HTTP ${res.status}`);
  const j = await res.json();
  if (j.error) throw new RpcError(method, j.error);
  return j.result;
}

/** Several calls in JSON-RPC batches; returns [{result}|{error: Error}] in order. */
export async function rpcBatch(calls, signal) {
  const out = [];
  for (let i = 0; i < calls.length; i += 50) {
    const part = calls.slice(i, i + 50);
    const base = rpcId;
    rpcId += part.length;
    const body = part.map(([method, params], k) => ({ jsonrpc: '2.0', id: base + k + 1, method, params: params || [] }));
    const res = await fetch('/', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });
    if (!res.ok) throw new Error(`the node answered HTTP ${res.status}`);
    const answers = await res.json();
    const byId = new Map((Array.isArray(answers) ? answers : [answers]).map((a) => [a.id, a]));
    part.forEach(([method], k) => {
      const a = byId.get(base + k + 1);
      if (!a) out.push({ error: new Error(`${method}: no answer`) });
      else if (a.error) out.push({ error: new RpcError(method, a.error) });
      else out.push({ result: a.result });
    });
  }
  return out;
}

// ---------- analytics ----------

export const NO_ANALYTICS = 'Analytics is not running on this node (no analytics endpoint in its config), so this part cannot be shown.';

/** Runs read-only SQL on the analytics endpoint; returns the rows. */
export async function sql(query, maxRows = MAX_ROWS, signal) {
  if (!config.analytics) throw new Error(NO_ANALYTICS);
  const res = await fetch(`${config.analytics}/sql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sql: query, format: 'json', max_rows: maxRows }),
    signal,
  });
  return readJson(res, 'analytics');
}

export async function readJson(res, who) {
  const text = await res.text();
  let j;
  try { j = JSON.parse(text); } catch {
    throw new Error(`${who} answered HTTP ${res.status}: ${truncate(text, 200) || 'no body'}`);
  }
  if (!res.ok) {
    const e = j && j.error;
    const msg = typeof e === 'string' ? e : e && e.message ? e.message : `HTTP ${res.status}`;
    const err = new Error(msg);
    err.status = res.status;
    throw err;
  }
  return j;
}

/** SQL string literal with quotes doubled. */
export function sqlString(s) {
  return `'${String(s).replace(/'/g, "''")}'`;
}

// ---------- verify.js (the other engineer's module), loaded lazily ----------

let verifyPromise = null;
export function loadVerify() {
  if (!verifyPromise) verifyPromise = import('../verify.js');
  return verifyPromise;
}

// ---------- head feed: WebSocket subscription with backoff, polling fallback ----------

class HeadFeed {
  constructor() {
    this.listeners = new Set();
    this.modeListeners = new Set();
    this.mode = 'connecting';
    this.height = null;
    this.backoff = 1000;
    this.poller = null;
    this.ws = null;
    this.started = false;
  }

  subscribe(fn) {
    this.listeners.add(fn);
    this.start();
    return () => this.listeners.delete(fn);
  }

  onMode(fn) {
    this.modeListeners.add(fn);
    fn(this.mode);
    return () => this.modeListeners.delete(fn);
  }

  setMode(m) {
    if (m === this.mode) return;
    this.mode = m;
    for (const fn of this.modeListeners) fn(m);
  }

  start() {
    if (this.started) return;
    this.started = true;
    this.connect();
  }

  connect() {
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;
    let ws;
    try { ws = new WebSocket(url); } catch { this.retry(); return; }
    this.ws = ws;
    let subscribed = false;
    ws.onopen = () => {
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'chain_subscribeHeads', params: [] }));
    };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg.id === 1) {
        if (msg.error) { ws.close(); return; }
        subscribed = true;
        this.backoff = 1000;
        this.stopPolling();
        this.setMode('live');
        this.poll(); // catch up on anything missed while reconnecting
      } else if (msg.method === 'chain_newHead' && msg.params && msg.params.result) {
        this.emit(msg.params.result);
      }
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.retry();
    };
  }

  retry() {
    this.setMode('polling');
    this.startPolling();
    const wait = this.backoff;
    this.backoff = Math.min(this.backoff * 2, 30000);
    setTimeout(() => this.connect(), wait);
  }

  startPolling() {
    if (this.poller) return;
    this.poller = setInterval(() => this.poll(), 2000);
    this.poll();
  }

  stopPolling() {
    if (this.poller) clearInterval(this.poller);
    this.poller = null;
  }

  async poll() {
    try {
      const s = await rpc('chain_status');
      if (this.mode === 'offline') this.setMode(this.ws ? 'live' : 'polling');
      if (this.height == null || s.height > this.height) {
        this.emit({ height: s.height, time_ms: s.latest_time_ms, chain_id: s.chain_id, state_root: s.state_root });
      }
    } catch {
      this.setMode('offline');
    }
  }

  emit(header) {
    if (this.height != null && header.height <= this.height) return;
    this.height = header.height;
    for (const fn of this.listeners) {
      try { fn(header); } catch (e) { /* a view's listener must not break the feed */ }
    }
  }
}

export const heads = new HeadFeed();

// ---------- small utilities ----------

export function isHex64(s) {
  return /^[0-9a-fA-F]{64}$/.test(s);
}

export function isAddress(s) {
  return /^hib1[02-9ac-hj-np-z]{6,90}$/.test(s);
}

/** A status badge; `state`: ok | bad | wait | info. Text is set by the caller. */
export function badge(id, text, state = 'wait') {
  return h('span', { id, class: `badge badge-${state}`, 'data-state': state, role: 'status', 'aria-live': 'polite' }, text);
}

export function setBadge(el, text, state) {
  el.textContent = text;
  el.className = `badge badge-${state}`;
  el.dataset.state = state;
}

/** Replaces an element's children, skipping null/false (which replaceChildren would print). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}
