// Subnets: the list, and per subnet its neurons, emissions over time, weights heat map, red flags.
import {
  fill, h, rpc, table, section, dl, notice, errorBox, spinner, link, accountLink, hibCell,
  fmtFrac, fmtNum, truncate,
} from './common.js';
import { lineChart } from './chart.js';

/** Epochs without a reveal after which a validator's weights count as stale. */
const STALE_TEMPOS = 2;

export async function renderList(root, _p, ctx) {
  root.append(h('h1', null, 'Subnets'));
  const box = h('div', null, spinner());
  root.append(box);
  const list = await rpc('subnet_list', [], ctx.signal);
  if (!ctx.alive) return;
  fill(box, 
    h('p', { class: 'help' }, 'Each subnet serves one task; every tempo the Yuma consensus epoch pays its miners and validators.'),
    table({
      id: 'subnets', caption: 'Subnets', empty: 'No subnets on this chain yet.', rows: list,
      rowAttrs: (s) => ({ 'data-subnet': s.id }),
      columns: [
        { label: 'Id', num: true, cell: (s) => String(s.id) },
        { label: 'Name', cell: (s) => link(`#/subnet/${s.id}`, truncate(s.name, 40)) },
        { label: 'Task', cell: (s) => truncate(s.task, 30) },
        { label: 'Owner', cell: (s) => accountLink(s.owner) },
        { label: 'Tempo', num: true, cell: (s) => fmtNum(s.params.tempo) },
        { label: 'Epochs', num: true, cell: (s) => fmtNum(s.epochs) },
        { label: 'Last epoch', num: true, cell: (s) => (s.last_epoch_height ? link(`#/block/${s.last_epoch_height}`, fmtNum(s.last_epoch_height)) : '—') },
        { label: 'Deposit', num: true, cell: (s) => hibCell(s.deposit) },
      ],
    }));
}

export async function renderSubnet(root, [id], ctx) {
  root.append(h('h1', null, `Subnet ${truncate(id, 40)}`));
  const box = h('div', null, spinner());
  root.append(box);
  const key = /^\d+$/.test(id) ? Number(id) : id;
  const [view, weights, emissions] = await Promise.all([
    rpc('subnet_get', [key], ctx.signal),
    rpc('subnet_weights', [key], ctx.signal).catch((e) => e),
    rpc('subnet_emissions', [key, 64], ctx.signal).catch((e) => e),
  ]);
  if (!ctx.alive) return;
  if (!view) { fill(box, notice(`No subnet “${truncate(id, 40)}” on this chain.`, 'warn')); return; }
  const sn = view.subnet;
  root.querySelector('h1').textContent = `Subnet ${sn.id}: ${truncate(sn.name, 40)}`;
  const tempo = Math.max(1, Number(sn.params.tempo));
  const byUid = new Map((weights instanceof Error ? [] : weights).map((w) => [w.uid, w]));

  const neurons = view.neurons;
  const validators = neurons.filter((n) => n.role === 'validator');
  const miners = neurons.filter((n) => n.role === 'miner');

  // Red flags.
  const flags = h('ul', { id: 'subnet-flags', class: 'flags' });
  if (!(weights instanceof Error)) {
    for (const v of validators) {
      const w = byUid.get(v.uid);
      const at = w && w.revealed ? w.revealed.revealed_at : null;
      const age = at == null ? null : view.height - at;
      if (at == null) {
        flags.append(h('li', { class: 'flag', 'data-flag': 'stale-weights', 'data-uid': v.uid },
          h('strong', null, 'Stale weights: '), `validator uid ${v.uid} (`, accountLink(v.account), ') has never revealed weights.'));
      } else if (age > STALE_TEMPOS * tempo) {
        flags.append(h('li', { class: 'flag', 'data-flag': 'stale-weights', 'data-uid': v.uid },
          h('strong', null, 'Stale weights: '), `validator uid ${v.uid} (`, accountLink(v.account),
          `) last revealed weights at height ${fmtNum(at)}, ${fmtNum(age)} blocks ago (more than ${STALE_TEMPOS} tempos of ${tempo} blocks).`));
      }
    }
  }
  const flagsBox = h('div', null,
    weights instanceof Error ? errorBox(weights, 'Weights unavailable: ') : null,
    flags.children.length ? flags : h('p', { id: 'subnet-flags-none', class: 'muted' }, `No stale weights: every validator revealed within the last ${STALE_TEMPOS} tempos.`),
    h('p', { class: 'notice notice-info', id: 'copying-detector' }, 'Weight copying: the anomaly detector that would flag validators copying others’ weights is not built yet, so no verdict is shown here.'));

  // Neurons table.
  const neuronsTable = table({
    id: 'neurons', caption: 'Neurons', empty: 'No neurons registered.', rows: neurons,
    rowAttrs: (n) => ({ 'data-uid': n.uid }),
    columns: [
      { label: 'Uid', num: true, cell: (n) => String(n.uid) },
      { label: 'Role', cell: (n) => n.role + (n.permit ? ' (permit)' : '') },
      { label: 'Account', cell: (n) => accountLink(n.account) },
      { label: 'Stake', num: true, cell: (n) => hibCell(n.stake) },
      { label: 'Incentive', num: true, cell: (n) => fmtFrac(n.incentive) },
      { label: 'Dividends', num: true, cell: (n) => fmtFrac(n.dividends) },
      { label: 'Trust', num: true, cell: (n) => fmtFrac(n.role === 'validator' ? n.validator_trust : n.trust) },
      { label: 'Emission (last)', num: true, cell: (n) => hibCell(n.last_emission) },
      { label: 'Emission (total)', num: true, cell: (n) => hibCell(n.total_emission) },
      { label: 'Last update', num: true, cell: (n) => {
        if (n.role !== 'validator') return h('span', { class: 'muted', title: 'registered at' }, `reg. ${fmtNum(n.registered_at)}`);
        const w = byUid.get(n.uid);
        return w && w.revealed ? link(`#/block/${w.revealed.revealed_at}`, fmtNum(w.revealed.revealed_at)) : h('span', { class: 'muted' }, 'never');
      } },
    ],
  });

  // Emission chart.
  const chartBox = h('div', { id: 'emission-chart-box' });
  if (emissions instanceof Error) chartBox.append(errorBox(emissions, 'Emissions unavailable: '));
  else if (!emissions.length) chartBox.append(h('p', { class: 'muted' }, 'No epoch has run yet.'));
  else {
    const epochs = [...emissions].sort((a, b) => a.height - b.height);
    const uids = [...new Set(epochs.flatMap((e) => e.paid.map((p) => p[0])))].sort((a, b) => a - b).slice(0, 6);
    const toHib = (v) => Number(BigInt(v)) / 1e9; // for plotting only; tables show exact values
    const series = [
      { label: 'minted (HIB)', values: epochs.map((e) => toHib(e.minted)) },
      ...uids.map((u) => ({ label: `uid ${u} (HIB)`, values: epochs.map((e) => { const p = e.paid.find((x) => x[0] === u); return p ? toHib(p[2]) : 0; }) })),
    ];
    const chart = lineChart({ id: 'emission-chart', title: `Emission per epoch (last ${epochs.length} epochs)`, x: epochs.map((e) => e.height), series, xLabel: 'height', yLabel: 'HIB' });
    chartBox.append(chart.el);
    ctx.onCleanup(() => chart.destroy());
  }

  fill(box, 
    section('Overview', 'subnet-overview', dl([
      ['Name', truncate(sn.name, 40)],
      ['Task', truncate(sn.task, 40)],
      ['Owner', accountLink(sn.owner)],
      ['Neurons', `${neurons.length} (${miners.length} miners, ${validators.length} validators)`],
      ['Tempo', `${fmtNum(tempo)} blocks`],
      ['Epochs run', fmtNum(sn.epochs)],
      ['Next epoch', `height ${fmtNum(view.next_epoch)}`],
      ['Emission per epoch', hibCell(view.epoch_emission)],
      ['Created at', link(`#/block/${sn.created_at}`, fmtNum(sn.created_at))],
      ['Read at', `height ${fmtNum(view.height)}`],
    ])),
    section('Red flags', 'subnet-redflags', flagsBox),
    section('Neurons', 'subnet-neurons', neuronsTable),
    section('Emission over time', 'subnet-emission', chartBox),
    section('Weights', 'subnet-weights', weights instanceof Error ? errorBox(weights) : heatmap(weights, validators, miners, neurons, view.height)));
}

function heatColor(f) {
  // From the surface colour to the accent: mixed in the browser with color-mix when available.
  const pct = Math.round(f * 100);
  return `color-mix(in srgb, var(--accent) ${pct}%, var(--surface))`;
}

function heatmap(weights, validators, miners, neurons, height) {
  const revealed = weights.filter((w) => w.revealed);
  const pending = weights.filter((w) => w.pending && w.pending.length);
  const minerUids = [...new Set([
    ...miners.map((m) => m.uid),
    ...revealed.flatMap((w) => w.revealed.weights.map((x) => x[0])),
  ])].sort((a, b) => a - b).slice(0, 64);
  const valUids = [...new Set([...validators.map((v) => v.uid), ...weights.map((w) => w.uid)])].sort((a, b) => a - b).slice(0, 64);
  const byUid = new Map(weights.map((w) => [w.uid, w]));
  const acct = new Map(neurons.map((n) => [n.uid, n.account]));
  if (!valUids.length || !minerUids.length) return h('p', { class: 'muted', id: 'weights-heatmap' }, 'No validator weights yet.');
  const t = h('table', { id: 'weights-heatmap', class: 'heatmap' },
    h('caption', { class: 'sr-only' }, 'Weights heat map: rows are validators, columns are miners'),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'validator \\ miner'), minerUids.map((m) => h('th', { scope: 'col', title: acct.get(m) || '' }, `uid ${m}`)), h('th', { scope: 'col' }, 'revealed at'))));
  const tb = h('tbody');
  for (const v of valUids) {
    const w = byUid.get(v);
    const map = new Map(w && w.revealed ? w.revealed.weights.map(([m, ppm]) => [m, ppm]) : []);
    const tr = h('tr', { 'data-validator': v }, h('th', { scope: 'row', title: acct.get(v) || '' }, `uid ${v}`));
    for (const m of minerUids) {
      const ppm = map.get(m) || 0;
      const f = ppm / 1e6;
      const label = `validator ${v} → miner ${m}: ${(f * 100).toFixed(1)}%`;
      const td = h('td', { class: 'heat', title: label, 'aria-label': label, 'data-miner': m, 'data-weight': ppm }, w && w.revealed ? `${(f * 100).toFixed(1)}%` : '—');
      td.style.backgroundColor = heatColor(f);
      if (f > 0.55) td.classList.add('heat-strong');
      tr.append(td);
    }
    tr.append(h('td', { class: 'num' }, w && w.revealed ? `${fmtNum(w.revealed.revealed_at)} (${fmtNum(height - w.revealed.revealed_at)} ago)` : 'never'));
    tb.append(tr);
  }
  t.append(tb);
  const legend = h('p', { class: 'heat-legend', 'aria-hidden': 'true' }, '0%', h('span', { class: 'heat-scale' }), '100%');
  return h('div', null,
    h('p', { class: 'help' }, 'Revealed weights: rows are validators, columns are miners; each cell is the share of the validator’s weight on that miner.'),
    h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Weights heat map' }, t), legend,
    pending.length ? h('p', { class: 'help', id: 'weights-pending' }, `Commitments awaiting reveal: ${pending.map((w) => `uid ${w.uid} (${w.pending.length}, from height ${w.pending.map((p) => p.height).join(', ')})`).join('; ')}.`) : null);
}
