// Explorer: chain status, live blocks and transactions, search, block / tx / account pages.
import {
  fill, config, h, rpc, rpcBatch, sql, sqlString, heads, loadVerify, table, tableRow, section, dl, notice,
  errorBox, errText, spinner, short, link, accountLink, nameOf, fmtHib, hibCell, fmtTime, fmtNum,
  truncate, isHex64, isAddress, badge, setBadge,
} from './common.js';

const BLOCKS_SHOWN = 20;
const TX_ITEMS_MAX = 100;

// ---------- transaction hashes ----------
// A block answer names its transactions' hashes (`tx_hashes`); each receipt (status, payer) comes
// from chain_getTx. For an older node without them, hashes come from the analytics `transactions`
// table when it is there, else from the senders' histories (chain_getAccountTxs).

const txInfo = new Map(); // "height:index" → { hash, sender, ok, error }
const fetchedHashes = new Set();

function txKey(height, index) { return `${height}:${index}`; }

function remember(height, index, info) {
  txInfo.set(txKey(height, index), info);
  if (info.hash) fetchedHashes.add(info.hash);
  if (txInfo.size > 3000) {
    const first = txInfo.keys().next().value;
    txInfo.delete(first);
  }
}

function feePayer(receipt) {
  const ev = (receipt.events || []).find((e) => e.kind === 'bank.fee');
  const a = ev && (ev.attributes || []).find(([k]) => k === 'payer');
  return a ? a[1] : null;
}

async function senderOf(signedTx) {
  try {
    const v = await loadVerify();
    return v.addressFromPublicKey(v.unhex(signedTx.tx.signer));
  } catch {
    return null;
  }
}

/** Fills txInfo for the transactions of `blocks` (BlockViews). */
async function resolveTxs(blocks, signal) {
  const missing = [];
  for (const b of blocks) {
    const height = b.block.header.height;
    const hashes = Array.isArray(b.tx_hashes) ? b.tx_hashes : [];
    b.block.txs.forEach((t, i) => { if (!txInfo.has(txKey(height, i))) missing.push({ height, i, t, hash: hashes[i] }); });
  }
  if (!missing.length) return;
  // Nodes name each block's transaction hashes: one receipt lookup each, 20 per batch.
  const named = missing.filter((m) => typeof m.hash === 'string').slice(0, 200);
  for (let k = 0; k < named.length; k += 20) {
    const part = named.slice(k, k + 20);
    const answers = await rpcBatch(part.map((m) => ['chain_getTx', [m.hash]]), signal);
    answers.forEach((a, j) => {
      const tv = a && a.result;
      if (!tv || tv.hash !== part[j].hash) return;
      const r = tv.receipt;
      remember(part[j].height, part[j].i, { hash: tv.hash, sender: feePayer(r), ok: r.outcome.status === 'success', error: r.outcome.error || null });
    });
  }
  if (config.analytics) {
    const lo = Math.min(...missing.map((m) => m.height));
    const hi = Math.max(...missing.map((m) => m.height));
    try {
      const rows = await sql(`SELECT height, tx_index, tx_hash, sender, success, error FROM transactions WHERE height >= ${lo} AND height <= ${hi} ORDER BY height, tx_index LIMIT 2000`, 2000, signal);
      for (const r of rows) {
        remember(Number(r.height), Number(r.tx_index), { hash: r.tx_hash, sender: r.sender, ok: r.success !== false, error: r.error || null });
      }
    } catch { /* fall through to the RPC route */ }
  }
  const rest = missing.filter((m) => !txInfo.has(txKey(m.height, m.i)));
  if (!rest.length) return;
  const senders = new Set();
  for (const m of rest) {
    const s = await senderOf(m.t);
    if (s) senders.add(s);
  }
  if (!senders.size) return;
  const lists = await rpcBatch([...senders].slice(0, 20).map((a) => ['chain_getAccountTxs', [a, 50]]), signal);
  // Interleaved across senders, each newest first.
  const perSender = lists.map((l) => (l.result && l.result.txs) || []);
  const order = [];
  for (let i = 0; i < 50; i++) for (const l of perSender) if (i < l.length) order.push(l[i]);
  const hashes = [...new Set(order)].filter((x) => !fetchedHashes.has(x));
  // Newest first, a few at a time, until every missing transaction is placed.
  const left = () => rest.some((m) => !txInfo.has(txKey(m.height, m.i)));
  for (let k = 0; k < Math.min(hashes.length, 200) && left(); k += 10) {
    const answers = await rpcBatch(hashes.slice(k, k + 10).map((x) => ['chain_getTx', [x]]), signal);
    for (const a of answers) {
      const tv = a.result;
      if (!tv) continue;
      const r = tv.receipt;
      remember(r.height, r.index, { hash: tv.hash, sender: feePayer(r), ok: r.outcome.status === 'success', error: r.outcome.error || null });
    }
  }
}

/** What a transaction does, for one line: kinds, recipient, amount of its transfers. */
export function summarize(signedTx) {
  const msgs = (signedTx.tx && signedTx.tx.messages) || [];
  const first = msgs[0] || {};
  const kind = msgs.map((m) => m.type).join(', ') || '(no messages)';
  const to = first.to || first.payee || first.validator || first.provider || null;
  let amount = null;
  for (const m of msgs) {
    if (m.type !== 'transfer') continue;
    try { amount = (amount || 0n) + BigInt(m.amount); } catch { /* not a number: skipped */ }
  }
  const recipients = new Set(msgs.filter((m) => m.type === 'transfer').map((m) => m.to));
  return { kind, to: typeof to === 'string' ? to : null, amount, more: Math.max(0, recipients.size - 1), count: msgs.length };
}

function txItem(height, index, signedTx) {
  const s = summarize(signedTx);
  const info = txInfo.get(txKey(height, index));
  const li = h('li', { class: 'tx-item', dataset: { height, index } });
  fillTxItem(li, s, info);
  return li;
}

function fillTxItem(li, s, info) {
  fill(li);
  if (info && info.hash) li.dataset.tx = info.hash;
  const head = h('div', { class: 'tx-head' },
    h('span', { class: 'kind' }, s.kind),
    info && info.hash ? link(`#/tx/${info.hash}`, short(info.hash, 8, 6)) : h('span', { class: 'muted' }, 'hash pending'),
    info && info.ok === false ? h('span', { class: 'badge badge-bad' }, 'failed') : null,
  );
  const from = info && info.sender ? accountLink(info.sender) : h('span', { class: 'muted' }, '…');
  const line = h('div', { class: 'tx-line' }, h('span', { class: 'muted' }, 'from '), from);
  if (s.to) line.append(h('span', { class: 'muted' }, ' to '), accountLink(s.to), s.more ? h('span', { class: 'muted' }, ` +${s.more} more`) : '');
  if (s.amount != null) line.append(' ', h('strong', { class: 'amount' }, fmtHib(s.amount)));
  li.append(head, line);
}

async function fillSenders(items, signal) {
  // Senders for items whose hash is still unknown come from the signer's public key.
  for (const { li, s, t, height, index } of items) {
    if (signal.aborted) return;
    const info = txInfo.get(txKey(height, index));
    if (info) { fillTxItem(li, s, info); continue; }
    const sender = await senderOf(t);
    if (sender) fillTxItem(li, s, { sender });
  }
}

// ---------- search ----------

function searchForm(status) {
  const input = h('input', { id: 'search', type: 'search', name: 'q', autocomplete: 'off', spellcheck: 'false', placeholder: 'height, hash, hib1… address or name', 'aria-describedby': 'search-help' });
  const form = h('form', { class: 'search', role: 'search', 'aria-label': 'Search the chain' },
    h('label', { for: 'search' }, 'Search'),
    h('div', { class: 'row' }, input, h('button', { type: 'submit', id: 'search-run' }, 'Search')),
    h('p', { id: 'search-help', class: 'help' }, 'A block height, a block or transaction hash (64 hex), an address (hib1…), or a name.'),
    status);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    search(input.value, status);
  });
  return form;
}

async function search(raw, status) {
  const q = raw.trim();
  fill(status);
  if (!q) { status.textContent = 'Type something to search for.'; return; }
  if (/^\d+$/.test(q)) { location.hash = `#/block/${q}`; return; }
  if (isHex64(q)) {
    status.textContent = 'Looking up the hash…';
    try {
      const b = await rpc('chain_getBlock', [q.toLowerCase()]);
      if (b) { location.hash = `#/block/${b.block.header.height}`; return; }
      location.hash = `#/tx/${q.toLowerCase()}`;
    } catch (e) { status.textContent = `Search failed: ${errText(e)}`; }
    return;
  }
  if (isAddress(q.toLowerCase())) { location.hash = `#/account/${q.toLowerCase()}`; return; }
  const lc = q.toLowerCase();
  const known = config.accounts.filter((a) => a.name.toLowerCase() === lc);
  if (known.length === 1) { location.hash = `#/account/${known[0].address}`; return; }
  if (!config.analytics) {
    status.textContent = `No account named “${truncate(q, 60)}” in this node's config (names from the analytics labels table need analytics, which is not running on this node).`;
    return;
  }
  status.textContent = 'Looking up the name…';
  try {
    const rows = await sql(`SELECT DISTINCT address, name, source FROM labels WHERE lower(name) = lower(${sqlString(q.slice(0, 200))}) LIMIT 20`, 20);
    const addrs = [...new Set(rows.map((r) => r.address))];
    if (addrs.length === 1) { location.hash = `#/account/${addrs[0]}`; return; }
    if (!addrs.length) { status.textContent = `Nothing found for “${truncate(q, 60)}”.`; return; }
    fill(status, `Several accounts are named “${truncate(q, 60)}”: `,
      h('ul', null, rows.map((r) => h('li', null, accountLink(r.address), ` (${truncate(r.source, 30)})`))));
  } catch (e) {
    status.textContent = `Name lookup failed: ${errText(e)}`;
  }
}

// ---------- home ----------

export async function renderHome(root, _params, ctx) {
  const status = h('p', { id: 'search-status', class: 'search-status', role: 'status', 'aria-live': 'polite' });
  const statusBox = h('div', { id: 'chain-status' }, spinner());
  const blocksBox = h('div', { id: 'blocks-box' }, spinner());
  const txList = h('ul', { id: 'txs', class: 'tx-list', 'aria-live': 'off' });
  const txEmpty = h('p', { class: 'muted', id: 'txs-empty' }, 'No transactions in the latest blocks.');
  root.append(
    h('h1', null, 'Explorer'),
    searchForm(status),
    h('div', { class: 'grid2' },
      section('Chain', 'status-card', statusBox),
      section('Transactions', 'txs-card', h('p', { class: 'help' }, 'Transactions of the latest 20 blocks, newest first.'), txEmpty, txList)),
    section('Latest blocks', 'blocks-card', blocksBox),
  );

  let blocks = []; // newest first
  let tbody = null;
  let busy = false;
  let pending = null;

  const columns = [
    { label: 'Height', cell: (b) => link(`#/block/${b.block.header.height}`, fmtNum(b.block.header.height)) },
    { label: 'Hash', cell: (b) => short(b.hash, 10, 6) },
    { label: 'Time', cell: (b) => fmtTime(b.block.header.time_ms) },
    { label: 'Txs', num: true, cell: (b) => String(b.block.txs.length) },
    { label: 'Proposer', cell: (b) => accountLink(b.block.header.proposer) },
  ];
  const rowAttrs = (b) => ({ 'data-height': b.block.header.height });

  async function refreshStatus() {
    try {
      const s = await rpc('chain_status', [], ctx.signal);
      fill(statusBox, dl([
        ['Chain id', h('span', { class: 'mono' }, s.chain_id)],
        ['Height', h('span', { id: 'status-height' }, fmtNum(s.height))],
        ['Latest block', s.latest_block_hash ? short(s.latest_block_hash) : '—'],
        ['Block time', fmtTime(s.latest_time_ms)],
        ['Validators', h('span', { id: 'status-validators' }, String(s.validators.length))],
        ['Voting power', fmtHib(s.validators.reduce((a, v) => a + BigInt(v.power), 0n))],
        ['Mempool', h('span', { id: 'status-mempool' }, `${s.mempool_size} pending`)],
        ['Minimum fee', fmtHib(s.min_fee)],
      ]));
      return s;
    } catch (e) {
      if (ctx.alive) fill(statusBox, errorBox(e, 'Chain status unavailable: '));
      return null;
    }
  }

  async function fetchBlocks(from, to) {
    const hs = [];
    for (let x = to; x >= from && x >= 1 && hs.length < BLOCKS_SHOWN; x--) hs.push(x);
    const answers = await rpcBatch(hs.map((x) => ['chain_getBlock', [x]]), ctx.signal);
    return answers.map((a) => a.result).filter(Boolean);
  }

  function renderBlocks() {
    if (!blocks.length) { fill(blocksBox, notice('No blocks yet.')); tbody = null; return; }
    const t = table({ id: 'blocks', columns, rows: blocks, caption: 'Latest blocks', rowAttrs });
    fill(blocksBox, t);
    tbody = t.querySelector('tbody');
  }

  function renderTxs(newBlocks, prepend) {
    const items = [];
    // newBlocks are newest first; within a block, show the last transaction first.
    const frag = document.createDocumentFragment();
    for (const b of newBlocks) {
      const height = b.block.header.height;
      for (let i = b.block.txs.length - 1; i >= 0; i--) {
        const t = b.block.txs[i];
        const li = txItem(height, i, t);
        items.push({ li, s: summarize(t), t, height, index: i });
        frag.append(li);
      }
    }
    if (prepend) txList.prepend(frag); else txList.append(frag);
    // Keep only the transactions of the blocks shown, and at most TX_ITEMS_MAX.
    const lowest = blocks.length ? blocks[blocks.length - 1].block.header.height : 0;
    for (const li of [...txList.children]) if (Number(li.dataset.height) < lowest) li.remove();
    while (txList.children.length > TX_ITEMS_MAX) txList.lastElementChild.remove();
    txEmpty.hidden = txList.children.length > 0;
    return items;
  }

  async function fillHashes(newBlocks, items) {
    if (!items.length) return;
    try { await resolveTxs(newBlocks, ctx.signal); } catch { /* shown as pending */ }
    if (!ctx.alive) return;
    await fillSenders(items, ctx.signal);
  }

  async function catchUp(height) {
    if (busy) { pending = Math.max(pending || 0, height); return; }
    busy = true;
    try {
      const top = blocks.length ? blocks[0].block.header.height : 0;
      if (height > top) {
        const fresh = await fetchBlocks(Math.max(top + 1, height - BLOCKS_SHOWN + 1), height);
        if (!ctx.alive) return;
        blocks = [...fresh, ...blocks].slice(0, BLOCKS_SHOWN);
        if (!tbody || fresh.length >= BLOCKS_SHOWN) renderBlocks();
        else {
          for (const b of [...fresh].reverse()) tbody.prepend(tableRow(columns, b, 0, rowAttrs));
          while (tbody.children.length > BLOCKS_SHOWN) tbody.lastElementChild.remove();
        }
        const items = renderTxs(fresh, true);
        fillHashes(fresh, items);
      }
    } catch (e) {
      if (ctx.alive && !blocks.length) fill(blocksBox, errorBox(e));
    } finally {
      busy = false;
      if (pending && ctx.alive) { const p = pending; pending = null; catchUp(p); }
    }
  }

  // Retry transactions whose hash was not known yet (the indexer may lag a block or two).
  async function retryPending() {
    const waiting = [...txList.querySelectorAll('li.tx-item:not([data-tx])')];
    if (!waiting.length) return;
    const hsWanted = new Set(waiting.map((li) => Number(li.dataset.height)));
    const bs = blocks.filter((b) => hsWanted.has(b.block.header.height));
    try { await resolveTxs(bs, ctx.signal); } catch { return; }
    for (const li of waiting) {
      const info = txInfo.get(txKey(li.dataset.height, li.dataset.index));
      const b = bs.find((x) => x.block.header.height === Number(li.dataset.height));
      if (info && b) fillTxItem(li, summarize(b.block.txs[Number(li.dataset.index)]), info);
    }
  }

  const s = await refreshStatus();
  if (!ctx.alive) return;
  if (s) {
    const initial = await fetchBlocks(Math.max(1, s.height - BLOCKS_SHOWN + 1), s.height).catch((e) => { fill(blocksBox, errorBox(e)); return null; });
    if (!ctx.alive) return;
    if (initial) {
      blocks = initial;
      renderBlocks();
      const items = renderTxs(blocks, false);
      fillHashes(blocks, items);
    }
  } else {
    fill(blocksBox, notice('The node did not answer; blocks will appear when it does.', 'warn'));
  }

  let lastStatus = 0;
  const unsub = heads.subscribe((hd) => {
    catchUp(hd.height);
    const now = Date.now();
    if (now - lastStatus > 1500) { lastStatus = now; refreshStatus(); }
  });
  const retry = setInterval(retryPending, 3000);
  ctx.onCleanup(() => { unsub(); clearInterval(retry); });
  if (heads.height != null && heads.height > (blocks[0] ? blocks[0].block.header.height : 0)) catchUp(heads.height);
}

// ---------- block page ----------

export async function renderBlock(root, [id], ctx) {
  root.append(h('h1', null, `Block ${truncate(id, 70)}`));
  const box = h('div', null, spinner());
  root.append(box);
  const param = /^\d+$/.test(id) ? Number(id) : id.toLowerCase();
  if (typeof param === 'string' && !isHex64(param)) { fill(box, notice('A block is named by its height or its 64-hex hash.', 'warn')); return; }
  const [bv, events] = await Promise.all([
    rpc('chain_getBlock', [param], ctx.signal),
    typeof param === 'number' ? rpc('chain_getBlockEvents', [param], ctx.signal).catch((e) => e) : Promise.resolve(null),
  ]);
  if (!ctx.alive) return;
  if (!bv) { fill(box, notice(`No block ${truncate(id, 70)} on this node.`, 'warn')); return; }
  const hd = bv.block.header;
  root.querySelector('h1').textContent = `Block ${fmtNum(hd.height)}`;
  const nav = h('p', { class: 'pager' },
    hd.height > 1 ? link(`#/block/${hd.height - 1}`, '← previous') : null, ' ',
    link(`#/block/${hd.height + 1}`, 'next →'));
  const txBox = h('div', null);
  fill(box, nav,
    section('Header', 'block-header', dl([
      ['Height', fmtNum(hd.height)],
      ['Hash', h('span', { class: 'mono wrap' }, bv.hash)],
      ['Parent', hd.height > 1 ? link(`#/block/${hd.height - 1}`, h('span', { class: 'mono wrap' }, hd.parent_hash)) : h('span', { class: 'mono wrap' }, hd.parent_hash)],
      ['Time', fmtTime(hd.time_ms)],
      ['Proposer', accountLink(hd.proposer)],
      ['Chain', hd.chain_id],
      ['State root', h('span', { class: 'mono wrap' }, hd.state_root)],
      ['App hash', h('span', { class: 'mono wrap' }, hd.app_hash)],
      ['Tx root', h('span', { class: 'mono wrap' }, hd.tx_root)],
    ])),
    section(`Transactions (${bv.block.txs.length})`, 'block-txs', txBox),
    section('Block events', 'block-events', eventsView(events)));
  const ul = h('ul', { id: 'block-txs-list', class: 'tx-list' });
  const items = bv.block.txs.map((t, i) => {
    const li = txItem(hd.height, i, t);
    ul.append(li);
    return { li, s: summarize(t), t, height: hd.height, index: i };
  });
  txBox.append(items.length ? ul : h('p', { class: 'muted' }, 'No transactions.'));
  if (items.length) {
    try { await resolveTxs([bv], ctx.signal); } catch { /* pending */ }
    if (ctx.alive) await fillSenders(items, ctx.signal);
  }
}

function eventsView(events) {
  if (events == null) return h('p', { class: 'muted' }, 'Events are listed by height.');
  if (events instanceof Error) return errorBox(events);
  return table({
    id: 'block-events-table',
    caption: 'Events',
    empty: 'No events outside transactions.',
    rows: events,
    columns: [
      { label: 'Kind', cell: (e) => h('span', { class: 'mono' }, truncate(e.kind, 60)) },
      { label: 'Attributes', cell: (e) => attrsView(e.attributes) },
    ],
  });
}

function attrsView(attrs) {
  const ul = h('ul', { class: 'attrs' });
  for (const [k, v] of (attrs || []).slice(0, 30)) ul.append(h('li', null, h('span', { class: 'muted' }, `${truncate(k, 40)}=`), valueView(k, v)));
  return ul;
}

const AMOUNT_KEYS = /(^|_)(amount|deposit|price|fee|bond|reward|stake|escrow|paid|minted|tokens|cumulative|withdrawable|redeemed|value)($|_)/;

function valueView(key, v) {
  if (typeof v === 'string' && isAddress(v)) return accountLink(v);
  if (typeof v === 'string' && isHex64(v)) return short(v);
  if ((typeof v === 'string' || typeof v === 'number') && /^\d+$/.test(String(v)) && AMOUNT_KEYS.test(key)) return hibCell(v);
  if (v !== null && typeof v === 'object') return h('code', { class: 'wrap' }, truncate(JSON.stringify(v), 300));
  return h('span', { class: 'wrap' }, truncate(v, 300));
}

// ---------- transaction page ----------

export async function renderTx(root, [hash], ctx) {
  root.append(h('h1', null, 'Transaction'));
  const box = h('div', null, spinner());
  root.append(box);
  hash = hash.toLowerCase();
  if (!isHex64(hash)) { fill(box, notice('A transaction is named by its 64-hex hash.', 'warn')); return; }
  const tv = await rpc('chain_getTx', [hash], ctx.signal);
  if (!ctx.alive) return;
  if (!tv) {
    const st = await rpc('tx_status', [hash], ctx.signal).catch(() => ({ status: 'unknown' }));
    const text = st.status === 'pending' ? 'This transaction is waiting in the mempool.'
      : st.status === 'rejected' ? `This transaction was rejected: ${truncate(st.reason, 300)}`
        : 'This node does not know this transaction.';
    fill(box, dl([['Hash', h('span', { class: 'mono wrap' }, hash)], ['Status', h('span', { id: 'tx-status' }, st.status)]]), notice(text, st.status === 'rejected' ? 'error' : 'info'));
    return;
  }
  const r = tv.receipt;
  const ok = r.outcome.status === 'success';
  const from = feePayer(r) || await senderOf(tv.tx);
  fill(box, 
    section('Summary', 'tx-summary', dl([
      ['Hash', h('span', { class: 'mono wrap', id: 'tx-hash' }, tv.hash)],
      ['Status', h('span', { id: 'tx-status', class: `badge ${ok ? 'badge-ok' : 'badge-bad'}`, 'data-state': ok ? 'ok' : 'bad' }, ok ? 'success' : `failed: ${truncate(r.outcome.error, 200)}`)],
      ['Block', link(`#/block/${r.height}`, fmtNum(r.height))],
      ['Position', String(r.index)],
      ['From', accountLink(from)],
      ['Signer key', short(tv.tx.tx.signer, 12, 8)],
      ['Nonce', String(tv.tx.tx.nonce)],
      ['Fee paid', hibCell(r.fee)],
      ['Chain', tv.tx.tx.chain_id],
    ])),
    section(`Messages (${tv.tx.tx.messages.length})`, 'tx-messages', messagesView(tv.tx.tx.messages)),
    section(`Events (${r.events.length})`, 'tx-events', table({
      id: 'tx-events-table', caption: 'Events', empty: 'No events.', rows: r.events,
      columns: [
        { label: 'Kind', cell: (e) => h('span', { class: 'mono' }, truncate(e.kind, 60)) },
        { label: 'Attributes', cell: (e) => attrsView(e.attributes) },
      ],
    })));
}

function messagesView(messages) {
  const ol = h('ol', { class: 'messages' });
  for (const m of messages.slice(0, 50)) {
    const pairs = Object.entries(m).filter(([k]) => k !== 'type').slice(0, 30).map(([k, v]) => [k, valueView(k, v)]);
    ol.append(h('li', null, h('strong', { class: 'kind' }, m.type), dl(pairs, 'kv compact')));
  }
  return ol;
}

// ---------- account page ----------

export async function renderAccount(root, [addr], ctx) {
  addr = addr.trim();
  const name = nameOf(addr);
  root.append(h('h1', null, 'Account ', name ? h('span', null, name) : null));
  root.append(h('p', { class: 'mono wrap', id: 'account-address' }, addr));
  const box = h('div', null, spinner());
  root.append(box);
  if (!isAddress(addr)) { fill(box, notice('That is not a hib1… address.', 'warn')); return; }
  const answer = await rpc('state_getAccount', [addr], ctx.signal);
  if (!ctx.alive) return;
  const acct = answer.account;
  const vbadge = badge('verified-badge', 'checking the proof…', 'wait');
  const proven = h('dd', { id: 'proven-balance' }, '—');
  const detail = h('p', { class: 'help', id: 'verified-detail' });
  const history = h('div', { id: 'account-history' }, spinner());
  fill(box, 
    section('Balance', 'account-balance', h('div', { class: 'verify-row' }, h('span', null, 'Proof: '), vbadge), detail,
      h('dl', { class: 'kv' },
        h('dt', null, 'Balance (proved)'), proven,
        h('dt', null, 'Balance (node says)'), h('dd', { id: 'account-balance-value' }, hibCell(acct.balance)),
        h('dt', null, 'Nonce (node says)'), h('dd', { id: 'account-nonce' }, String(acct.nonce)),
        h('dt', null, 'Staked'), h('dd', { id: 'account-stake' }, hibCell(acct.stake)),
        h('dt', null, 'Read at height'), h('dd', null, link(`#/block/${answer.height}`, fmtNum(answer.height))))),
    section('Delegations', 'account-delegations', table({
      id: 'delegations', caption: 'Delegations', empty: 'No delegations.', rows: acct.delegations || [],
      columns: [
        { label: 'Validator', cell: (d) => accountLink(d.validator) },
        { label: 'Tokens', num: true, cell: (d) => hibCell(d.tokens) },
        { label: 'Shares', num: true, cell: (d) => fmtNum(d.shares) },
      ],
    })),
    section('Transactions', 'account-txs', history));
  verifyAccount(addr, answer, vbadge, proven, detail, ctx);
  loadHistory(addr, history, ctx);
}

// The validator set this page trusts, per chain id, for the browser session: taken on first use
// (like the CLI's trusted checkpoint) from the first header checked, then advanced by every
// header checked after it, each signed by more than a third of the set trusted before.
const trustKey = (chainId) => `hibana.trusted-validators.${chainId}`;

function loadTrust(chainId) {
  try {
    const t = JSON.parse(sessionStorage.getItem(trustKey(chainId)) || 'null');
    const ok = t && typeof t === 'object' && t.chainId === chainId && Number.isSafeInteger(t.height)
      && Number.isSafeInteger(t.since) && Array.isArray(t.validators);
    return ok ? t : null;
  } catch {
    return null; // storage off or unreadable: nothing is trusted yet
  }
}

function saveTrust(t) {
  try {
    sessionStorage.setItem(trustKey(t.chainId), JSON.stringify(t));
  } catch { /* storage off or full: the next page trusts on first use again */ }
}

/** An error's text for the badge, which says "verified" only when everything was checked. */
const why = (e) => errText(e).replace(/verified/gi, 'checked');

async function verifyAccount(addr, answer, vbadge, proven, detail, ctx) {
  try {
    let v;
    try { v = await loadVerify(); } catch (e) {
      setBadge(vbadge, `cannot check: the proof checker (verify.js) did not load (${why(e)})`, 'bad');
      return;
    }
    const height = answer.height;
    let checked = null; // { header, now, since, firstUse } once the header is checked
    if (height === 0) {
      // Only a chain with no block yet answers from its genesis state (check_root in the CLI).
      const t = config.chain_id ? loadTrust(config.chain_id) : null;
      if (t && t.height > 0) {
        setBadge(vbadge, `header rejected: the node answered from the genesis state, but this page already checked block ${t.height}`, 'bad');
        return;
      }
    } else {
      const first = await rpc('chain_getCommit', [height], ctx.signal);
      if (!ctx.alive) return;
      if (!first) { setBadge(vbadge, `cannot check: the node has no commit for block ${height} to check its header with`, 'bad'); return; }
      // The chain this page is about; with no config, the header's own (trust on first use).
      const chainId = config.chain_id || (first.header && typeof first.header.chain_id === 'string' ? first.header.chain_id : '');
      if (!chainId) { setBadge(vbadge, 'header rejected: the commit answer names no chain', 'bad'); return; }
      const stored = loadTrust(chainId);
      const fetchCommit = (x) => (x === height ? first : rpc('chain_getCommit', [x], ctx.signal));
      let res;
      try {
        res = await v.verifyHeight(chainId, height, stored, fetchCommit);
      } catch (e) {
        if (!ctx.alive) return;
        const refused = e instanceof v.LightError && e.kind !== 'unsupported';
        setBadge(vbadge, refused ? `header rejected: ${why(e)}` : `cannot check: ${why(e)}`, 'bad');
        return;
      }
      if (!ctx.alive) return;
      const since = stored ? stored.since : res.trusted.height;
      // The set of the highest height checked is kept, as the CLI's verified_header does.
      const latest = loadTrust(chainId);
      if (!latest || latest.height <= res.trusted.height) {
        const { chainId: c, height: hh, validators } = res.trusted;
        saveTrust({ chainId: c, height: hh, validators, since: latest ? latest.since : since });
      }
      checked = { header: res.view.header, now: res.trusted, since, firstUse: !stored };
      if (String(checked.header.state_root).toLowerCase() !== String(answer.state_root).toLowerCase()) {
        setBadge(vbadge, `proof rejected: the answer's state root ${truncate(String(answer.state_root), 16)} is not the root in block ${height}'s header`, 'bad');
        return;
      }
    }
    let got;
    try {
      got = await v.verifyAccountAnswer(addr, answer, checked ? checked.header.state_root : null);
    } catch (e) {
      if (ctx.alive) setBadge(vbadge, `proof rejected: ${why(e)}`, 'bad');
      return;
    }
    if (!ctx.alive) return;
    const balance = BigInt(got.balance);
    const nonce = BigInt(got.nonce);
    fill(proven, hibCell(balance));
    if (balance !== BigInt(answer.account.balance) || nonce !== BigInt(answer.account.nonce)) {
      setBadge(vbadge, 'mismatch: the proof holds other values than the node reported', 'bad');
      detail.textContent = `Proved balance ${fmtHib(balance)} and nonce ${nonce}; the node said ${fmtHib(answer.account.balance)} and ${answer.account.nonce}.`;
      return;
    }
    if (!checked) {
      setBadge(vbadge, 'genesis state: no signed header yet', 'wait');
      detail.textContent = 'The node answered from the genesis state (height 0): the proof matches the state root it gave, but no block has been decided yet, so no validator signatures vouch for that root.';
      return;
    }
    const { header, now, since, firstUse } = checked;
    setBadge(vbadge, 'verified', 'ok');
    const trust = firstUse
      ? `This page took the set of validators that decided block ${header.height} on trust (the first header it checked on this chain in this browser session, like the CLI's trusted checkpoint); a later header decided by another set must be signed by more than a third of the set it trusts.`
      : `Trust in the validator set started at block ${since} (the first header checked on this chain in this browser session) and was carried to block ${now.height}: every header checked since was signed by more than two thirds of its own validator set and, where that set changed, by more than a third of the set trusted before.`;
    detail.textContent = `proof checked against block ${header.height}'s state root; header ${header.height} signed by validators holding ${fmtHib(now.signedPower)} of ${fmtHib(now.totalPower)} voting power. ${trust}`;
  } catch (e) {
    if (ctx.alive) setBadge(vbadge, `cannot check: ${why(e)}`, 'bad');
  }
}

async function loadHistory(addr, box, ctx) {
  try {
    const list = await rpc('chain_getAccountTxs', [addr, 50], ctx.signal);
    const answers = await rpcBatch(list.txs.slice(0, 50).map((x) => ['chain_getTx', [x]]), ctx.signal);
    if (!ctx.alive) return;
    const rows = answers.map((a) => a.result).filter(Boolean);
    fill(box, table({
      id: 'account-txs-table', caption: 'Transactions', empty: 'No transactions.', rows,
      rowAttrs: (tv) => ({ 'data-tx': tv.hash }),
      columns: [
        { label: 'Hash', cell: (tv) => link(`#/tx/${tv.hash}`, short(tv.hash, 8, 6)) },
        { label: 'Block', num: true, cell: (tv) => link(`#/block/${tv.receipt.height}`, fmtNum(tv.receipt.height)) },
        { label: 'Kind', cell: (tv) => summarize(tv.tx).kind },
        { label: 'From', cell: (tv) => { const f = feePayer(tv.receipt); return f === addr ? h('span', { class: 'muted' }, 'this account') : accountLink(f); } },
        { label: 'To', cell: (tv) => { const t = summarize(tv.tx).to; return t === addr ? h('span', { class: 'muted' }, 'this account') : accountLink(t); } },
        { label: 'Amount', num: true, cell: (tv) => { const a = summarize(tv.tx).amount; return a == null ? '—' : hibCell(a); } },
        { label: 'Status', cell: (tv) => (tv.receipt.outcome.status === 'success' ? 'success' : h('span', { class: 'badge badge-bad' }, 'failed')) },
      ],
    }));
  } catch (e) {
    if (ctx.alive) fill(box, errorBox(e));
  }
}
