// Market: compute providers, orders and leases; payment channels and redemptions; data bounties.
import {
  fill, config, h, rpc, rpcBatch, sql, table, section, notice, errorBox, spinner, short, link, accountLink,
  hibCell, fmtNum, truncate, NO_ANALYTICS,
} from './common.js';

export async function render(root, _p, ctx) {
  root.append(h('h1', null, 'Market'),
    h('nav', { class: 'toc', 'aria-label': 'On this page' }, h('ul', null,
      h('li', null, h('a', { href: '#market-providers', 'data-local': '' }, 'Providers')),
      h('li', null, h('a', { href: '#market-orders', 'data-local': '' }, 'Orders')),
      h('li', null, h('a', { href: '#market-leases', 'data-local': '' }, 'Leases')),
      h('li', null, h('a', { href: '#market-channels', 'data-local': '' }, 'Channels')),
      h('li', null, h('a', { href: '#market-data', 'data-local': '' }, 'Data bounties')))));
  // In-page links must not change the route hash.
  root.querySelector('.toc').addEventListener('click', (e) => {
    const a = e.target.closest('a[data-local]');
    if (!a) return;
    e.preventDefault();
    const target = document.getElementById(a.getAttribute('href').slice(1));
    if (target) { target.scrollIntoView(); const hd = target.querySelector('h2'); if (hd) { hd.setAttribute('tabindex', '-1'); hd.focus(); } }
  });
  const parts = {
    providers: h('div', null, spinner()),
    orders: h('div', null, spinner()),
    leases: h('div', null, spinner()),
    marketEvents: h('div', null),
    channels: h('div', null, spinner()),
    redemptions: h('div', null),
    data: h('div', null, spinner()),
  };
  root.append(
    section('Providers', 'market-providers', parts.providers),
    section('Open orders', 'market-orders', parts.orders),
    section('Leases', 'market-leases', parts.leases, h('h3', null, 'Market events'), parts.marketEvents),
    section('Payment channels', 'market-channels', parts.channels, h('h3', null, 'Redemptions and channel events'), parts.redemptions),
    section('Data bounties', 'market-data', parts.data));
  const jobs = [
    providers(parts.providers, ctx), orders(parts.orders, ctx), leases(parts.leases, ctx),
    channels(parts.channels, ctx), bounties(parts.data, ctx),
    analyticsTable(parts.marketEvents, ctx, 'market-events',
      'SELECT height, time, kind, provider, owner, order_id, lease_id, CAST(amount AS VARCHAR) AS amount, CAST(price_per_block AS VARCHAR) AS price_per_block FROM market_events ORDER BY height DESC, event_index DESC LIMIT 50',
      [
        { label: 'Height', num: true, cell: (r) => link(`#/block/${r.height}`, fmtNum(r.height)) },
        { label: 'Kind', cell: (r) => truncate(r.kind, 40) },
        { label: 'Provider', cell: (r) => (r.provider ? accountLink(r.provider) : '—') },
        { label: 'Owner', cell: (r) => (r.owner ? accountLink(r.owner) : '—') },
        { label: 'Order', num: true, cell: (r) => (r.order_id ?? '—') },
        { label: 'Lease', num: true, cell: (r) => (r.lease_id ?? '—') },
        { label: 'Amount', num: true, cell: (r) => (r.amount ? hibCell(r.amount) : '—') },
        { label: 'Price/block', num: true, cell: (r) => (r.price_per_block ? hibCell(r.price_per_block) : '—') },
      ], 'No market events indexed yet.'),
    analyticsTable(parts.redemptions, ctx, 'channel-events',
      'SELECT height, time, kind, channel_id, payer, payee, CAST(amount AS VARCHAR) AS amount FROM channel_events ORDER BY height DESC, event_index DESC LIMIT 50',
      [
        { label: 'Height', num: true, cell: (r) => link(`#/block/${r.height}`, fmtNum(r.height)) },
        { label: 'Kind', cell: (r) => truncate(r.kind, 40) },
        { label: 'Channel', num: true, cell: (r) => (r.channel_id ?? '—') },
        { label: 'Payer', cell: (r) => (r.payer ? accountLink(r.payer) : '—') },
        { label: 'Payee', cell: (r) => (r.payee ? accountLink(r.payee) : '—') },
        { label: 'Amount', num: true, cell: (r) => (r.amount ? hibCell(r.amount) : '—') },
      ], 'No channel events indexed yet.'),
  ];
  await Promise.allSettled(jobs);
}

async function guard(box, ctx, fn) {
  try { await fn(); } catch (e) { if (ctx.alive) fill(box, errorBox(e)); }
}

function providers(box, ctx) {
  return guard(box, ctx, async () => {
    const list = await rpc('market_providers', [], ctx.signal);
    if (!ctx.alive) return;
    fill(box, 
      h('p', { class: 'help' }, 'Attributes are as the providers declared them. Bond is stake held in escrow; no reputation score is kept on chain.'),
      table({
        id: 'providers', caption: 'Providers', empty: 'No providers registered.', rows: list,
        rowAttrs: (p) => ({ 'data-provider': p.address }),
        columns: [
          { label: 'Provider', cell: (p) => accountLink(p.address) },
          { label: 'Region', cell: (p) => truncate(p.attributes.region || '—', 32) },
          { label: 'Cores', num: true, cell: (p) => fmtNum(p.attributes.cores) },
          { label: 'Memory', num: true, cell: (p) => `${fmtNum(p.attributes.memory_mib)} MiB` },
          { label: 'GPU', cell: (p) => (p.attributes.gpu_count ? `${p.attributes.gpu_count} × ${truncate(p.attributes.gpu_model, 40)}` : 'none') },
          { label: 'Models', cell: (p) => modelsCell(p.attributes.models) },
          { label: 'Price/block', num: true, cell: (p) => hibCell(p.price_per_block) },
          { label: 'Price/token', num: true, cell: (p) => hibCell(p.price_per_token) },
          { label: 'Bond', num: true, cell: (p) => hibCell(p.bond) },
          { label: 'Bids', num: true, cell: (p) => fmtNum(p.open_bids) },
          { label: 'Leases', num: true, cell: (p) => fmtNum(p.active_leases) },
          { label: 'Since', num: true, cell: (p) => link(`#/block/${p.registered_at}`, fmtNum(p.registered_at)) },
          { label: 'Endpoint', cell: (p) => h('span', { class: 'mono' }, truncate(p.endpoint, 48)) },
        ],
      }));
  });
}

function modelsCell(models) {
  if (!models || !models.length) return '—';
  const ul = h('ul', { class: 'plain' });
  for (const m of models.slice(0, 16)) ul.append(h('li', null, short(m, 8, 4)));
  return ul;
}

function orders(box, ctx) {
  return guard(box, ctx, async () => {
    const list = await rpc('market_orders', [], ctx.signal);
    const views = await rpcBatch(list.slice(0, 50).map((o) => ['market_order', [o.id]]), ctx.signal);
    if (!ctx.alive) return;
    const bids = new Map(views.map((v, i) => [list[i].id, v.result ? v.result.bids : null]));
    fill(box, table({
      id: 'orders', caption: 'Open orders', empty: 'No open orders.', rows: list,
      rowAttrs: (o) => ({ 'data-order': o.id }),
      columns: [
        { label: 'Id', num: true, cell: (o) => String(o.id) },
        { label: 'Owner', cell: (o) => accountLink(o.owner) },
        { label: 'Needs', cell: (o) => resources(o.resources) },
        { label: 'Duration', num: true, cell: (o) => `${fmtNum(o.duration_blocks)} blocks` },
        { label: 'Max price/block', num: true, cell: (o) => hibCell(o.max_price_per_block) },
        { label: 'Deposit', num: true, cell: (o) => hibCell(o.deposit) },
        { label: 'Expires', num: true, cell: (o) => fmtNum(o.expires_at) },
        { label: 'Bids', cell: (o) => bidsCell(bids.get(o.id)) },
      ],
    }));
  });
}

function resources(r) {
  const parts = [`≥${r.min_cores} cores`];
  if (r.min_memory_mib) parts.push(`≥${fmtNum(r.min_memory_mib)} MiB`);
  if (r.gpu_count) parts.push(`${r.gpu_count} × ${truncate(r.gpu_model || 'GPU', 30)}`);
  if (r.region) parts.push(truncate(r.region, 30));
  const el = h('span', null, parts.join(', '));
  if (r.model) el.append(', model ', short(r.model, 8, 4));
  return el;
}

function bidsCell(bids) {
  if (bids == null) return '?';
  if (!bids.length) return h('span', { class: 'muted' }, 'none');
  const ul = h('ul', { class: 'plain' });
  for (const b of bids.slice(0, 32)) ul.append(h('li', null, accountLink(b.provider), ' at ', hibCell(b.price_per_block)));
  return ul;
}

function leases(box, ctx) {
  return guard(box, ctx, async () => {
    if (!config.accounts.length) {
      fill(box, notice('Leases are listed per account, and this node’s config names no accounts.'));
      return;
    }
    const answers = await rpcBatch(config.accounts.map((a) => ['market_leases', [a.address]]), ctx.signal);
    if (!ctx.alive) return;
    const seen = new Map();
    for (const a of answers) for (const lv of a.result || []) seen.set(lv.lease.id, lv);
    const rows = [...seen.values()].sort((a, b) => b.lease.id - a.lease.id);
    const failed = answers.find((a) => a.error);
    fill(box, 
      h('p', { class: 'help' }, `Active leases owned or served by the accounts this node knows (${config.accounts.map((a) => a.name).join(', ')}).`),
      failed ? errorBox(failed.error) : null,
      table({
        id: 'leases', caption: 'Leases', empty: 'No active leases for these accounts.', rows,
        rowAttrs: (lv) => ({ 'data-lease': lv.lease.id }),
        columns: [
          { label: 'Id', num: true, cell: (lv) => String(lv.lease.id) },
          { label: 'Order', num: true, cell: (lv) => String(lv.lease.order) },
          { label: 'Owner', cell: (lv) => accountLink(lv.lease.owner) },
          { label: 'Provider', cell: (lv) => accountLink(lv.lease.provider) },
          { label: 'Price/block', num: true, cell: (lv) => hibCell(lv.lease.price_per_block) },
          { label: 'Escrow left', num: true, cell: (lv) => hibCell(lv.lease.escrow) },
          { label: 'Paid', num: true, cell: (lv) => hibCell(lv.lease.paid) },
          { label: 'Withdrawable', num: true, cell: (lv) => hibCell(lv.withdrawable) },
          { label: 'Blocks', cell: (lv) => `${fmtNum(lv.lease.started_at)} → ${fmtNum(lv.lease.ends_at)}` },
          { label: 'Status', cell: (lv) => lv.lease.status + (lv.overdrawn ? ' (escrow exhausted)' : '') },
        ],
      }));
  });
}

function channels(box, ctx) {
  return guard(box, ctx, async () => {
    if (!config.accounts.length) {
      fill(box, notice('Channels are listed per payer, and this node’s config names no accounts.'));
      return;
    }
    const answers = await rpcBatch(config.accounts.map((a) => ['channel_list', [a.address]]), ctx.signal);
    if (!ctx.alive) return;
    const seen = new Map();
    for (const a of answers) for (const c of (a.result && a.result.channels) || []) seen.set(c.id, c);
    const rows = [...seen.values()].sort((a, b) => a.id - b.id);
    const failed = answers.find((a) => a.error);
    fill(box, 
      h('p', { class: 'help' }, 'Open channels funded by the accounts this node knows.'),
      failed ? errorBox(failed.error) : null,
      table({
        id: 'channels', caption: 'Payment channels', empty: 'No open channels paid by these accounts.', rows,
        rowAttrs: (c) => ({ 'data-channel': c.id }),
        columns: [
          { label: 'Id', num: true, cell: (c) => String(c.id) },
          { label: 'Payer', cell: (c) => accountLink(c.payer) },
          { label: 'Payee', cell: (c) => accountLink(c.payee) },
          { label: 'Deposit', num: true, cell: (c) => hibCell(c.deposit) },
          { label: 'Redeemed', num: true, cell: (c) => hibCell(c.redeemed) },
          { label: 'Left', num: true, cell: (c) => hibCell((BigInt(c.deposit) - BigInt(c.redeemed)).toString()) },
          { label: 'Voucher nonce', num: true, cell: (c) => fmtNum(c.nonce) },
          { label: 'Opened', num: true, cell: (c) => fmtNum(c.opened_at) },
          { label: 'Expires', num: true, cell: (c) => fmtNum(c.expires_at) },
          { label: 'Status', cell: (c) => c.status + (c.settling_until != null ? ` (settling until ${c.settling_until})` : '') },
        ],
      }));
  });
}

function analyticsTable(box, ctx, id, query, columns, empty) {
  if (!config.analytics) {
    fill(box, notice(NO_ANALYTICS));
    return Promise.resolve();
  }
  fill(box, spinner());
  return guard(box, ctx, async () => {
    const rows = await sql(query, 50, ctx.signal);
    if (!ctx.alive) return;
    fill(box, table({ id, caption: id, empty, rows, columns }), h('p', { class: 'help' }, 'From the analytics index (newest 50).'));
  });
}

function bounties(box, ctx) {
  return guard(box, ctx, async () => {
    const list = await rpc('data_bounties', [50], ctx.signal);
    if (!ctx.alive) return;
    if (!list.length) { fill(box, h('p', { class: 'muted', id: 'bounties' }, 'No data bounties yet.')); return; }
    const shown = list.slice(0, 10);
    const details = await rpcBatch(shown.flatMap((b) => [['data_bounty', [b.id]], ['data_items', [b.id, 0, 100]]]), ctx.signal);
    if (!ctx.alive) return;
    const container = h('div', null, table({
      id: 'bounties', caption: 'Bounties', rows: list,
      rowAttrs: (b) => ({ 'data-bounty': b.id }),
      columns: [
        { label: 'Id', num: true, cell: (b) => String(b.id) },
        { label: 'Title', cell: (b) => truncate(b.terms.title, 60) },
        { label: 'Owner', cell: (b) => accountLink(b.owner) },
        { label: 'Status', cell: (b) => b.status },
        { label: 'Reward/item', num: true, cell: (b) => hibCell(b.terms.reward_per_item) },
        { label: 'Submitted', num: true, cell: (b) => fmtNum(b.submitted) },
        { label: 'Accepted', num: true, cell: (b) => fmtNum(b.accepted) },
        { label: 'Rejected', num: true, cell: (b) => fmtNum(b.rejected) },
        { label: 'Unreviewed', num: true, cell: (b) => fmtNum(b.unreviewed) },
        { label: 'Escrowed', num: true, cell: (b) => hibCell(b.escrowed) },
        { label: 'Paid', num: true, cell: (b) => hibCell(b.paid) },
        { label: 'Deadline', num: true, cell: (b) => fmtNum(b.terms.deadline) },
      ],
    }));
    shown.forEach((b, i) => {
      const bv = details[2 * i].result;
      const items = details[2 * i + 1].result;
      const d = h('details', { class: 'bounty', id: `bounty-${b.id}` },
        h('summary', null, `Bounty ${b.id}: ${truncate(b.terms.title, 60)} — items and reviews`));
      if (details[2 * i + 1].error) d.append(errorBox(details[2 * i + 1].error));
      else d.append(table({
        id: `items-${b.id}`, caption: `Items of bounty ${b.id}`, empty: 'No items submitted.', rows: items.items,
        rowAttrs: (it) => ({ 'data-item': it.id }),
        columns: [
          { label: 'Item', num: true, cell: (it) => String(it.id) },
          { label: 'Contributor', cell: (it) => accountLink(it.contributor) },
          { label: 'Content hash', cell: (it) => short(it.hash, 8, 4) },
          { label: 'Size', num: true, cell: (it) => `${fmtNum(it.size)} B` },
          { label: 'Submitted', num: true, cell: (it) => fmtNum(it.submitted_at) },
          { label: 'Reviews', cell: (it) => reviewsCell(it.reviews) },
          { label: 'Outcome', cell: (it) => h('span', { class: `outcome outcome-${it.status}` }, it.status + (it.settled_at != null ? ` at ${fmtNum(it.settled_at)}` : '')) },
        ],
      }));
      if (bv && bv.reviewers.length) {
        d.append(h('h4', null, 'Reviewers'), table({
          id: `reviewers-${b.id}`, caption: `Reviewers of bounty ${b.id}`, rows: bv.reviewers,
          columns: [
            { label: 'Reviewer', cell: (r) => accountLink(r.address) },
            { label: 'Stake', num: true, cell: (r) => hibCell(r.stake) },
            { label: 'Assigned', num: true, cell: (r) => fmtNum(r.assigned) },
            { label: 'Revealed', num: true, cell: (r) => fmtNum(r.revealed) },
            { label: 'Agreed', num: true, cell: (r) => fmtNum(r.agreed) },
            { label: 'Missed', num: true, cell: (r) => fmtNum(r.missed) },
            { label: 'Slashed', num: true, cell: (r) => hibCell(r.slashed) },
            { label: 'Earned', num: true, cell: (r) => hibCell(r.earned) },
          ],
        }));
      }
      container.append(d);
    });
    if (list.length > shown.length) container.append(h('p', { class: 'muted' }, `Items are shown for the first ${shown.length} bounties.`));
    fill(box, container);
  });
}

function reviewsCell(reviews) {
  if (!reviews || !reviews.length) return '—';
  const ul = h('ul', { class: 'plain' });
  for (const r of reviews.slice(0, 7)) {
    const verdict = r.verdict === true ? 'accept' : r.verdict === false ? 'reject' : r.commitment ? 'committed' : 'no vote';
    ul.append(h('li', null, accountLink(r.reviewer), `: ${verdict}`));
  }
  return ul;
}

