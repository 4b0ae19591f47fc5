// Playground: streamed chat through the gateway with its signed receipt checked here, and the
// Solidity auditor with its findings shown on the source.
import {
  fill, config, h, rpc, section, dl, notice, errText, readJson, fmtHib, fmtNum, fmtTime, truncate, short,
  accountLink, loadVerify, badge, setBadge,
} from './common.js';

const SAMPLE_CONTRACT = `// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;

contract Vault {
    mapping(address => uint256) public balances;

    function deposit() external payable {
        balances[msg.sender] += msg.value;
    }

    function withdraw() external {
        uint256 amount = balances[msg.sender];
        require(amount > 0, "nothing to withdraw");
        (bool ok, ) = msg.sender.call{value: amount}("");
        require(ok, "transfer failed");
        balances[msg.sender] = 0;
    }
}
`;

const MAX_OUTPUT_CHARS = 20000;
const NOT_CHAT = new Set(['all-minilm-l6-v2', 'credit-mlp', 'hibana-audit']);

export async function render(root, _p, ctx) {
  root.append(h('h1', null, 'Playground'));
  if (!config.gateway) {
    root.append(notice('There is no gateway on this node (none in its config), so the playground cannot run: chat and audits go through the OpenAI-compatible gateway. Start one, e.g. with `hibana devnet`.', 'warn'));
    return;
  }
  root.append(h('p', { class: 'help' }, 'Requests go to the gateway at ', h('span', { class: 'mono' }, truncate(config.gateway, 80)),
    '. Each answer carries a receipt signed by the provider; this page checks its signature and that it covers the exact bytes sent and streamed.'));
  const keyInput = config.api_key ? null : h('input', { id: 'api-key', type: 'password', autocomplete: 'off', spellcheck: 'false' });
  if (keyInput) {
    root.append(h('div', { class: 'card' }, h('label', { for: 'api-key' }, 'API key'), keyInput,
      h('p', { class: 'help' }, 'This node has no demo key; give a gateway key (hib-…). It stays in this page.')));
  }
  const apiKey = () => (config.api_key || (keyInput && keyInput.value.trim()) || '');
  root.append(chatSection(ctx, apiKey), auditSection(ctx, apiKey));
}

// ---------- chat ----------

function chatSection(ctx, apiKey) {
  const select = h('select', { id: 'model-select' }, h('option', { value: '' }, 'loading…'));
  const maxTokens = h('input', { id: 'max-tokens', type: 'number', min: '1', max: '1024', value: '64', inputmode: 'numeric' });
  const input = h('textarea', { id: 'chat-input', rows: '3', placeholder: 'Ask something…', 'aria-describedby': 'chat-input-help' });
  const send = h('button', { type: 'submit', id: 'chat-send' }, 'Send');
  const stop = h('button', { type: 'button', id: 'chat-stop', class: 'secondary', disabled: true }, 'Stop');
  const clear = h('button', { type: 'button', id: 'chat-clear', class: 'secondary' }, 'New conversation');
  const historyEl = h('div', { id: 'chat-history', class: 'chat-history' });
  const question = h('div', { id: 'chat-question', class: 'msg msg-user', hidden: true });
  const output = h('div', { id: 'chat-output', class: 'chat-output', role: 'log', 'aria-live': 'polite', 'aria-label': 'Answer', 'aria-busy': 'false' });
  const status = h('p', { id: 'chat-status', role: 'status', class: 'muted' });
  const receiptBox = h('div', { id: 'receipt' }, h('p', { class: 'muted' }, 'The receipt of the next answer appears here.'));
  const form = h('form', { id: 'chat-form', class: 'stack' },
    h('div', { class: 'row wrap-row' },
      h('div', { class: 'field' }, h('label', { for: 'model-select' }, 'Model'), select),
      h('div', { class: 'field narrow' }, h('label', { for: 'max-tokens' }, 'Max tokens'), maxTokens)),
    h('label', { for: 'chat-input' }, 'Message'), input,
    h('p', { class: 'help', id: 'chat-input-help' }, 'Ctrl+Enter sends.'),
    h('div', { class: 'row' }, send, stop, clear));
  const el = section('Chat', 'chat-card', form, historyEl,
    h('h3', null, 'Answer'), question, output, status,
    h('h3', null, 'Receipt'), receiptBox);

  const history = []; // [{role, content}]
  let abort = null;

  loadModels(select, apiKey, status, ctx);

  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); }
  });
  clear.addEventListener('click', () => {
    history.length = 0;
    fill(historyEl);
    fill(output);
    status.textContent = 'New conversation.';
  });
  stop.addEventListener('click', () => { if (abort) abort.abort(); });
  ctx.onCleanup(() => { if (abort) abort.abort(); });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) { status.textContent = 'Write a message first.'; input.focus(); return; }
    if (!select.value) { status.textContent = 'No model to send to.'; return; }
    if (!apiKey()) { status.textContent = 'An API key is needed.'; return; }
    // The previous answer moves into the history.
    if (output.dataset.user) {
      historyEl.append(h('div', { class: 'msg msg-user' }, h('span', { class: 'who' }, 'You'), output.dataset.user),
        h('div', { class: 'msg msg-assistant' }, h('span', { class: 'who' }, 'Model'), output.textContent));
      history.push({ role: 'user', content: output.dataset.user }, { role: 'assistant', content: output.textContent });
      while (history.length > 12) history.shift();
    }
    fill(output);
    output.dataset.user = text;
    fill(question, h('span', { class: 'who' }, 'You'), text);
    question.hidden = false;
    const messages = [...history, { role: 'user', content: text }];
    const n = Math.max(1, Math.min(1024, Number(maxTokens.value) || 64));
    const body = { model: select.value, messages, stream: true, max_tokens: n };
    // The exact bytes sent: encoded once, sent as they are, and given to the receipt check.
    const bytes = new TextEncoder().encode(JSON.stringify(body));
    input.value = '';
    send.disabled = true;
    stop.disabled = false;
    abort = new AbortController();
    output.setAttribute('aria-busy', 'true');
    status.textContent = 'Waiting for the first token…';
    fill(receiptBox, h('p', { class: 'muted' }, 'Waiting for the answer…'));
    try {
      await streamChat(bytes, apiKey(), abort.signal, output, status, receiptBox, ctx);
    } catch (err) {
      if (!ctx.alive) return;
      if (err.name === 'AbortError') status.textContent = 'Stopped.';
      else status.textContent = `The request failed: ${errText(err)}`;
      if (!receiptBox.querySelector('#receipt-status')) fill(receiptBox, receiptStatusOnly('no receipt: the answer did not complete'));
    } finally {
      if (ctx.alive) {
        send.disabled = false;
        stop.disabled = true;
        output.setAttribute('aria-busy', 'false');
        abort = null;
      }
    }
  });
  return el;
}

function receiptStatusOnly(text) {
  const b = badge('receipt-status', text, 'bad');
  return h('p', null, 'Receipt: ', b);
}

async function loadModels(select, apiKey, status, ctx) {
  try {
    const res = await fetch(`${config.gateway}/v1/models`, { headers: apiKey() ? { authorization: `Bearer ${apiKey()}` } : {}, signal: ctx.signal });
    const j = await readJson(res, 'the gateway');
    if (!ctx.alive) return;
    const ids = (Array.isArray(j.data) ? j.data : []).map((m) => m && m.id).filter((x) => typeof x === 'string').slice(0, 100);
    // Subnets are offered as models by name; those of other tasks cannot chat.
    const notChat = new Set(NOT_CHAT);
    try {
      for (const sn of await rpc('subnet_list', [], ctx.signal)) if (!/^(chat|text-generation)$/.test(sn.task)) notChat.add(sn.name);
    } catch { /* the known names only */ }
    if (!ctx.alive) return;
    fill(select);
    const chat = ids.filter((id) => !notChat.has(id));
    for (const id of [...chat, ...ids.filter((id) => notChat.has(id))]) {
      select.append(h('option', { value: id }, notChat.has(id) ? `${truncate(id, 60)} (not a chat model)` : truncate(id, 60)));
    }
    const pick = chat.find((id) => /instruct|chat/i.test(id)) || chat[0] || ids[0];
    if (pick) select.value = pick;
    else { select.append(h('option', { value: '' }, 'no models')); status.textContent = 'The gateway lists no models.'; }
  } catch (e) {
    if (!ctx.alive) return;
    fill(select, h('option', { value: '' }, 'unavailable'));
    status.textContent = `Could not list the gateway's models: ${errText(e)}`;
  }
}

async function streamChat(bytes, key, signal, output, status, receiptBox, ctx) {
  const res = await fetch(`${config.gateway}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, accept: 'text/event-stream' },
    body: bytes,
    signal,
  });
  if (!res.ok) {
    await readJson(res, 'the gateway'); // throws with the gateway's message
    throw new Error(`HTTP ${res.status}`);
  }
  let v = null;
  let hasher = null;
  try {
    v = await loadVerify();
    hasher = new v.StreamHasher();
  } catch (e) {
    v = null;
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  let receiptHex = null;
  let usage = null;
  let chars = 0;
  let tokens = 0;
  let done = false;
  const textNode = document.createTextNode('');
  output.append(textNode);
  const onLine = (raw) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.startsWith('data:')) {
      const payload = line.slice(5).replace(/^\s+/, '');
      if (payload === '[DONE]') { done = true; return; }
      if (receiptHex == null && hasher) hasher.add(payload);
      let j;
      try { j = JSON.parse(payload); } catch { return; }
      if (j.error) throw new Error(typeof j.error === 'string' ? j.error : j.error.message || 'the stream failed');
      const c = j.choices && j.choices[0];
      const piece = c && c.delta && typeof c.delta.content === 'string' ? c.delta.content : '';
      if (piece && chars < MAX_OUTPUT_CHARS) {
        textNode.appendData(piece.slice(0, MAX_OUTPUT_CHARS - chars));
        chars += piece.length;
        tokens += 1;
        status.textContent = `Streaming… ${tokens} tokens`;
      }
      if (j.usage) usage = j.usage;
    } else if (line.startsWith(':')) {
      const c = line.slice(1).trim();
      if (c.startsWith('x-hibana-receipt')) receiptHex = c.slice('x-hibana-receipt'.length).trim();
    }
  };
  while (!done) {
    const { value, done: end } = await reader.read();
    if (end) break;
    buf += decoder.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      onLine(line);
    }
    if (buf.length > 1_000_000) throw new Error('an event of more than 1 MB');
  }
  buf += decoder.decode();
  if (buf) onLine(buf);
  if (done) reader.cancel().catch(() => {});
  if (!ctx.alive) return;
  const used = usage ? ` (${usage.prompt_tokens} prompt + ${usage.completion_tokens} completion tokens)` : '';
  status.textContent = `Done${used}.`;
  await showReceipt(receiptHex, receiptBox, v, bytes, hasher, ctx, 'stream');
}

/** Shows a receipt and checks it; `proof` is { request, responseHash } or { request, response }. */
async function showReceipt(receiptHex, box, v, request, hasherOrResponse, ctx, kind, idPrefix = 'receipt') {
  const statusEl = badge(`${idPrefix}-status`, 'checking the receipt…', 'wait');
  if (!receiptHex) {
    fill(box, h('p', null, 'Receipt: ', statusEl));
    setBadge(statusEl, kind === 'stream' ? 'no receipt: the stream carried none' : 'no receipt: the answer carried none (or the gateway does not expose its header)', 'bad');
    return;
  }
  if (!v) {
    fill(box, h('p', null, 'Receipt: ', statusEl), h('p', { class: 'mono wrap small' }, truncate(receiptHex, 400)));
    setBadge(statusEl, 'cannot check: the receipt checker (verify.js) did not load', 'bad');
    return;
  }
  let r = null;
  try { r = v.decodeReceipt(receiptHex); } catch (e) {
    fill(box, h('p', null, 'Receipt: ', statusEl));
    setBadge(statusEl, `receipt unreadable: ${errText(e)}`, 'bad');
    return;
  }
  const hx = (x) => (x == null ? '—' : typeof x === 'string' ? x : v.hex(x));
  let provider = '—';
  try { provider = v.addressFromPublicKey(r.provider); } catch { /* shown as — */ }
  fill(box, dl([
    ['Check', statusEl],
    ['Provider', h('span', { id: `${idPrefix}-provider` }, provider === '—' ? '—' : accountLink(provider))],
    ['Model hash', short(hx(r.modelHash), 12, 6)],
    ['Request hash', short(hx(r.requestHash), 12, 6)],
    ['Response hash', short(hx(r.responseHash), 12, 6)],
    ['Tokens', `${fmtNum(r.promptTokens)} prompt + ${fmtNum(r.completionTokens)} completion`],
    ['Price', h('span', { id: `${idPrefix}-price` }, fmtHib(r.price))],
    ['Time', fmtTime(r.timestampMs)],
  ]));
  try {
    const opts = kind === 'stream' ? { request, responseHash: hasherOrResponse ? hasherOrResponse.finish() : undefined } : { request, response: hasherOrResponse };
    if (kind === 'stream' && !opts.responseHash) throw new Error('the stream hasher is missing');
    const out = await v.verifyReceipt(receiptHex, opts);
    if (!ctx.alive) return;
    if (out && out.ok) { setBadge(statusEl, 'verified', 'ok'); statusEl.title = truncate(out.reason || '', 300); }
    else setBadge(statusEl, `receipt rejected: ${truncate((out && out.reason) || 'no reason given', 200)}`, 'bad');
  } catch (e) {
    if (ctx.alive) setBadge(statusEl, `receipt rejected: ${errText(e)}`, 'bad');
  }
}

// ---------- audit ----------

function auditSection(ctx, apiKey) {
  const input = h('textarea', { id: 'audit-input', rows: '20', spellcheck: 'false', class: 'code', 'aria-describedby': 'audit-help' });
  input.value = SAMPLE_CONTRACT;
  const run = h('button', { type: 'submit', id: 'audit-run' }, 'Audit');
  const status = h('p', { id: 'audit-status', role: 'status', class: 'muted' });
  const findings = h('ul', { id: 'audit-findings', class: 'findings' });
  const source = h('pre', { id: 'audit-source', class: 'source', tabindex: '0', 'aria-label': 'Audited source with finding lines highlighted' });
  const receiptBox = h('div', { id: 'audit-receipt' });
  const form = h('form', { id: 'audit-form', class: 'stack' },
    h('label', { for: 'audit-input' }, 'Solidity source'), input,
    h('p', { class: 'help', id: 'audit-help' }, 'The sample has a reentrancy bug: the external call comes before the balance update.'),
    h('div', { class: 'row' }, run));
  const results = h('div', { id: 'audit-results', hidden: true },
    h('h3', null, 'Findings'), findings, h('h3', null, 'Source'), source, h('h3', null, 'Receipt'), receiptBox);
  const el = section('Audit a contract', 'audit-card', form, status, results);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = input.value;
    if (!text.trim()) { status.textContent = 'Paste a contract first.'; return; }
    if (!apiKey()) { status.textContent = 'An API key is needed.'; return; }
    const bytes = new TextEncoder().encode(JSON.stringify({ model: 'hibana-audit', path: 'contract.sol', source: text }));
    run.disabled = true;
    results.hidden = false;
    status.textContent = 'Auditing…';
    fill(findings);
    fill(source);
    fill(receiptBox);
    try {
      const res = await fetch(`${config.gateway}/v1/audit`, {
        method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey()}` }, body: bytes, signal: ctx.signal,
      });
      const raw = new Uint8Array(await res.arrayBuffer());
      const text2 = new TextDecoder().decode(raw);
      let doc;
      try { doc = JSON.parse(text2); } catch { throw new Error(`the gateway answered HTTP ${res.status}: ${truncate(text2, 200)}`); }
      if (!res.ok) throw new Error((doc.error && (doc.error.message || doc.error)) || `HTTP ${res.status}`);
      if (!ctx.alive) return;
      const list = Array.isArray(doc.findings) ? doc.findings : [];
      const errors = Array.isArray(doc.errors) ? doc.errors : [];
      status.textContent = `${list.length} finding${list.length === 1 ? '' : 's'} in ${doc.contracts ?? '?'} contract(s)${errors.length ? `, ${errors.length} parse error(s)` : ''}.`;
      renderFindings(list, errors, findings, source, text);
      let v = null;
      try { v = await loadVerify(); } catch { v = null; }
      await showReceipt(res.headers.get('x-hibana-receipt'), receiptBox, v, bytes, raw, ctx, 'body', 'audit-receipt');
    } catch (err) {
      if (ctx.alive) status.textContent = `The audit failed: ${errText(err)}`;
    } finally {
      if (ctx.alive) run.disabled = false;
    }
  });
  return el;
}

function renderFindings(list, errors, ul, pre, text) {
  const lines = text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const marked = new Map(); // line → [findings]
  for (const f of list) {
    const from = Number(f.line) || 0;
    const to = Math.max(from, Number(f.end_line) || from);
    for (let l = from; l <= Math.min(to, from + 50); l++) {
      if (!marked.has(l)) marked.set(l, []);
      marked.get(l).push(f);
    }
  }
  const rows = [];
  lines.slice(0, 2000).forEach((t, i) => {
    const n = i + 1;
    const hit = marked.get(n);
    const row = h('span', { class: `line${hit ? ' hl-line' : ''}`, id: `src-line-${n}`, 'data-line': n, title: hit ? hit.map((f) => `${f.severity}: ${f.title || f.rule}`).join('; ') : null },
      h('span', { class: 'ln', 'aria-hidden': 'true' }, String(n).padStart(3, ' ')), ' ', truncate(t, 400), '\n');
    rows.push(row);
  });
  fill(pre, ...rows);
  if (!list.length && !errors.length) ul.append(h('li', { class: 'muted' }, 'No findings.'));
  for (const f of list.slice(0, 200)) {
    const sev = String(f.severity || 'info').toLowerCase();
    const jump = h('button', { type: 'button', class: 'linkish' }, `line ${f.line}`);
    jump.addEventListener('click', () => {
      const target = document.getElementById(`src-line-${f.line}`);
      if (target) { target.scrollIntoView({ block: 'center' }); pre.focus(); }
    });
    ul.append(h('li', { 'data-rule': truncate(f.rule, 80), 'data-severity': sev, 'data-line': f.line, class: 'finding' },
      h('span', { class: `sev sev-${sev.replace(/[^a-z]/g, '')}` }, sev),
      ' ', h('strong', null, truncate(f.title || f.rule, 160)), ' — ', jump,
      f.function ? ` in ${truncate(f.contract, 60)}.${truncate(f.function, 60)}` : '',
      h('p', null, truncate(f.message, 500)),
      f.help ? h('p', { class: 'help' }, truncate(f.help, 500)) : null,
      h('p', { class: 'muted small' }, `rule ${truncate(f.rule, 80)} · confidence ${truncate(f.confidence, 20)}`)));
  }
  for (const e of errors.slice(0, 50)) {
    ul.append(h('li', { class: 'finding', 'data-rule': 'parse-error' }, h('span', { class: 'sev sev-error' }, 'error'), ` line ${e.line}: ${truncate(e.message, 300)}`));
  }
}
