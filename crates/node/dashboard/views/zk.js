// ZK: registered models and submitted proofs with the chain's verdicts (from analytics), and a
// lookup of one model or result by RPC with its Merkle proof checked in this page.
import {
  fill, config, h, rpc, sql, table, section, dl, notice, errorBox, errText, spinner, short, link,
  accountLink, hibCell, fmtNum, truncate, isHex64, loadVerify, badge, setBadge,
} from './common.js';

export async function render(root, _p, ctx) {
  root.append(h('h1', null, 'ZK inference'),
    h('p', { class: 'help' }, 'Models registered for zero-knowledge inference, and the proofs submitted for them. The chain checks every proof when its transaction runs: an accepted proof is stored with its result; a rejected one fails its transaction.'));
  const detail = h('div', { id: 'zk-detail', 'aria-live': 'polite' });
  const lookup = lookupForm(detail, ctx);
  if (!config.analytics) {
    root.append(notice('The ZK view needs analytics, which is not running on this node: the lists of models and proofs come from its index. You can still look up one model or result by its hash below.', 'warn'),
      section('Look up', 'zk-lookup-card', lookup, detail));
    return;
  }
  const modelsBox = h('div', null, spinner());
  const proofsBox = h('div', null, spinner());
  root.append(
    section('Registered models', 'zk-models-card', modelsBox),
    section('Proofs and verdicts', 'zk-proofs-card', proofsBox),
    section('Look up', 'zk-lookup-card', lookup, detail));
  const show = (hash) => { lookup.querySelector('input').value = hash; showDetail(hash, detail, ctx); };

  const [models, accepted, rejected] = await Promise.all([
    sql("SELECT height, tx_hash, attributes FROM events WHERE kind = 'verify.model_registered' ORDER BY height DESC LIMIT 100", 100, ctx.signal).catch((e) => e),
    sql('SELECT height, time, tx_hash, id, model, class, output, submitter FROM zk_inferences ORDER BY height DESC LIMIT 100', 100, ctx.signal).catch((e) => e),
    sql("SELECT height, time, tx_hash, sender, error FROM transactions WHERE success = false AND message_types LIKE '%submit_zk_inference%' ORDER BY height DESC LIMIT 50", 50, ctx.signal).catch((e) => e),
  ]);
  if (!ctx.alive) return;

  if (models instanceof Error) fill(modelsBox, errorBox(models));
  else {
    const rows = models.map((r) => { let a = {}; try { a = JSON.parse(r.attributes) || {}; } catch { /* keep empty */ } return { ...r, a }; });
    fill(modelsBox, table({
      id: 'zk-models', caption: 'Registered models', empty: 'No models registered yet.', rows,
      rowAttrs: (r) => ({ 'data-model': r.a.model || '' }),
      columns: [
        { label: 'Model commitment', cell: (r) => (isHex64(r.a.model || '') ? h('button', { type: 'button', class: 'linkish', onclick: () => show(r.a.model) }, short(r.a.model, 10, 6)) : truncate(r.a.model, 70)) },
        { label: 'Owner', cell: (r) => accountLink(r.a.owner) },
        { label: 'Proof system', cell: (r) => truncate(r.a.system || '—', 20) },
        { label: 'k', num: true, cell: (r) => truncate(r.a.k ?? '—', 6) },
        { label: 'Registered', num: true, cell: (r) => link(`#/block/${r.height}`, fmtNum(r.height)) },
        { label: 'Tx', cell: (r) => link(`#/tx/${r.tx_hash}`, short(r.tx_hash, 8, 4)) },
      ],
    }));
  }

  const errs = [accepted, rejected].filter((x) => x instanceof Error);
  const rows = [
    ...(accepted instanceof Error ? [] : accepted.map((r) => ({ ...r, verdict: 'accepted' }))),
    ...(rejected instanceof Error ? [] : rejected.map((r) => ({ ...r, submitter: r.sender, verdict: 'rejected' }))),
  ].sort((a, b) => b.height - a.height);
  fill(proofsBox, ...errs.map((e) => errorBox(e)), table({
    id: 'zk-proofs', caption: 'Proofs', empty: 'No proofs submitted yet.', rows,
    rowAttrs: (r) => ({ 'data-verdict': r.verdict, 'data-zk-id': r.id || '' }),
    columns: [
      { label: 'Verdict', cell: (r) => h('span', { class: `badge ${r.verdict === 'accepted' ? 'badge-ok' : 'badge-bad'}` }, r.verdict) },
      { label: 'Result id', cell: (r) => (r.id ? h('button', { type: 'button', class: 'linkish', onclick: () => show(r.id) }, short(r.id, 10, 6)) : '—') },
      { label: 'Model', cell: (r) => (r.model ? short(r.model, 8, 4) : '—') },
      { label: 'Class', num: true, cell: (r) => (r.class ?? '—') },
      { label: 'Output', cell: (r) => (r.output != null ? h('span', { class: 'mono' }, truncate(r.output, 60)) : truncate(r.error || '', 120)) },
      { label: 'Submitter', cell: (r) => accountLink(r.submitter) },
      { label: 'Height', num: true, cell: (r) => link(`#/block/${r.height}`, fmtNum(r.height)) },
      { label: 'Tx', cell: (r) => link(`#/tx/${r.tx_hash}`, short(r.tx_hash, 8, 4)) },
    ],
  }));
}

function lookupForm(detail, ctx) {
  const input = h('input', { id: 'zk-query', type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: '64 hex characters', 'aria-describedby': 'zk-query-help' });
  const form = h('form', { id: 'zk-lookup', class: 'search' },
    h('label', { for: 'zk-query' }, 'Model commitment or result id'),
    h('div', { class: 'row' }, input, h('button', { type: 'submit', id: 'zk-lookup-run' }, 'Look up')),
    h('p', { class: 'help', id: 'zk-query-help' }, 'Reads the record from the node and checks its Merkle proof here, against the state root in the block header.'));
  form.addEventListener('submit', (e) => { e.preventDefault(); showDetail(input.value.trim().toLowerCase(), detail, ctx); });
  return form;
}

async function showDetail(hash, box, ctx) {
  if (!isHex64(hash)) { fill(box, notice('Give 64 hex characters.', 'warn')); return; }
  fill(box, spinner());
  try {
    let kind = 'inference';
    let ans = await rpc('zk_getInference', [hash], ctx.signal);
    let key = 'verify/inference/';
    if (!ans || ans.absent) {
      const m = await rpc('zk_getModel', [hash], ctx.signal);
      if (m && !m.absent) { ans = m; kind = 'model'; key = 'verify/model/'; }
    }
    if (!ctx.alive) return;
    if (!ans || ans.absent) {
      const status = badge('zk-proof-status', 'checking the proof of absence…', 'wait');
      fill(box, notice('No model and no result with that hash on chain.'), h('p', null, 'Absence proof: ', status));
      if (ans) checkProof(ans, key, hash, null, status, ctx, 'absent');
      return;
    }
    const status = badge('zk-proof-status', 'checking the proof…', 'wait');
    const pairs = kind === 'model' ? [
      ['Kind', 'registered model'],
      ['Commitment', h('span', { class: 'mono wrap' }, ans.commitment)],
      ['Owner', accountLink(ans.owner)],
      ['Circuit size', `2^${ans.k} rows`],
      ['Input shape', JSON.stringify(ans.input_shape)],
      ['Output shape', JSON.stringify(ans.output_shape)],
      ['Output scale', `${ans.output_scale} fractional bits`],
      ['Model file', `${fmtNum(ans.zkm_bytes)} bytes`],
      ['Verification fee', hibCell(ans.verification_fee)],
      ['Registered at', link(`#/block/${ans.registered_at}`, fmtNum(ans.registered_at))],
    ] : [
      ['Kind', 'verified inference (accepted)'],
      ['Result id', h('span', { class: 'mono wrap' }, ans.id)],
      ['Model', short(ans.model, 12, 6)],
      ['Input commitment', short(ans.input_commitment, 12, 6)],
      ['Public input', ans.public_input ? truncate(JSON.stringify(ans.public_input), 200) : 'hidden (only its commitment)'],
      ['Output', truncate(JSON.stringify(ans.output), 200)],
      ['Output values', truncate(ans.output_values.join(', '), 200)],
      ['Class', String(ans.class)],
      ['Submitter', accountLink(ans.submitter)],
      ['Included at', link(`#/block/${ans.included_at}`, fmtNum(ans.included_at))],
    ];
    fill(box, dl([...pairs, ['Read at', `height ${fmtNum(ans.height)}`], ['Record proof', status]]));
    checkProof(ans, key, hash, ans.entry, status, ctx, 'found');
  } catch (e) {
    if (ctx.alive) fill(box, errorBox(e));
  }
}

async function checkProof(ans, prefix, hash, entryHex, status, ctx, what) {
  try {
    const bv = await rpc('chain_getBlock', [ans.height], ctx.signal);
    if (!bv) { setBadge(status, `cannot check: no block ${ans.height}`, 'bad'); return; }
    const v = await loadVerify();
    const keyBytes = new Uint8Array([...new TextEncoder().encode(prefix), ...v.unhex(hash)]);
    const ok = await v.verifyStateProof(bv.block.header.state_root, keyBytes, entryHex == null ? null : v.unhex(entryHex), ans.proof);
    if (!ctx.alive) return;
    if (ok === false) setBadge(status, 'proof rejected', 'bad');
    else setBadge(status, what === 'absent' ? 'verified (absent)' : 'verified', 'ok');
  } catch (e) {
    if (ctx.alive) setBadge(status, `proof rejected: ${errText(e)}`, 'bad');
  }
}
