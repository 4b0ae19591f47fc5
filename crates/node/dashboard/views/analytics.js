// Analytics: read-only SQL over the chain's tables, and questions in plain language (`ask`).
import { fill, config, h, sql, section, table, notice, errorBox, errText, readJson, truncate, NO_ANALYTICS, fmtNum, isAddress, accountLink } from './common.js';
import { autoChart } from './chart.js';

const EXAMPLE_SQL = [
  ['Blocks per minute', "SELECT date_trunc('minute', time) AS minute, count(*) AS blocks, sum(tx_count) AS txs FROM blocks GROUP BY 1 ORDER BY 1"],
  ['Richest accounts', 'SELECT address, balance_hib FROM accounts ORDER BY balance DESC LIMIT 10'],
  ['Transaction kinds', 'SELECT message_types, count(*) AS n FROM transactions GROUP BY message_types ORDER BY n DESC LIMIT 15'],
  ['Transfers by sender', 'SELECT "from", sum(amount_hib) AS sent_hib, count(*) AS transfers FROM transfers GROUP BY "from" ORDER BY sent_hib DESC LIMIT 10'],
  ['Fees per height', 'SELECT height, fees_hib FROM blocks ORDER BY height DESC LIMIT 100'],
];

const EXAMPLE_QUESTIONS = [
  'How much HIB did alice send to bob?',
  'Which accounts hold the most HIB?',
  'How many transactions were there?',
  'Who won the football match?',
];

export async function render(root, _p, ctx) {
  root.append(h('h1', null, 'Analytics'));
  if (!config.analytics) {
    root.append(notice(`${NO_ANALYTICS} Start the node with its analytics indexer (as \`hibana devnet\` does) to query the chain here.`, 'warn'));
    return;
  }
  const statusLine = h('p', { id: 'analytics-status', class: 'help' }, 'Reading the index status…');
  root.append(statusLine, sqlSection(ctx), askSection(ctx), tablesSection(ctx));
  try {
    const res = await fetch(`${config.analytics}/status`, { signal: ctx.signal });
    const s = await readJson(res, 'analytics');
    if (ctx.alive) statusLine.textContent = `Indexed up to height ${fmtNum(s.height)} of ${truncate(s.chain_id, 60)}.`;
  } catch (e) {
    if (ctx.alive) statusLine.textContent = `Analytics did not answer: ${errText(e)}`;
  }
}

function resultTable(id, rows) {
  const cols = [];
  for (const r of rows.slice(0, 200)) {
    if (r && typeof r === 'object') for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  }
  return table({
    id, caption: 'Query result', rows, empty: 'The query returned no rows.',
    columns: cols.slice(0, 40).map((c) => ({
      label: truncate(c, 40),
      num: rows.some((r) => typeof r[c] === 'number'),
      cell: (r) => cellText(r[c]),
    })),
  });
}

function cellText(v) {
  if (v == null) return h('span', { class: 'muted' }, 'null');
  if (typeof v === 'object') return h('code', null, truncate(JSON.stringify(v), 200));
  const s = String(v);
  if (isAddress(s)) return accountLink(s);
  return s.length > 80 ? h('span', { title: truncate(s, 2000) }, truncate(s, 80)) : s;
}

function showRows(box, chartBox, rows, title, charts) {
  for (const c of charts.splice(0)) c.destroy();
  fill(box, h('p', { class: 'muted' }, `${rows.length} row${rows.length === 1 ? '' : 's'}${rows.length >= 500 ? ' (the limit)' : ''}.`), resultTable(`${box.id}-table`, rows));
  fill(chartBox);
  const chart = autoChart(rows, title);
  if (chart) { chartBox.append(chart.el); charts.push(chart); }
}

function sqlSection(ctx) {
  const input = h('textarea', { id: 'sql-input', rows: '4', spellcheck: 'false', class: 'code', 'aria-describedby': 'sql-help' });
  input.value = EXAMPLE_SQL[0][1];
  const run = h('button', { type: 'submit', id: 'sql-run' }, 'Run');
  const status = h('p', { id: 'sql-status', role: 'status', class: 'muted' });
  const result = h('div', { id: 'sql-result' });
  const chartBox = h('div', { id: 'sql-chart' });
  const charts = [];
  ctx.onCleanup(() => charts.forEach((c) => c.destroy()));
  const form = h('form', { id: 'sql-form', class: 'stack' },
    h('label', { for: 'sql-input' }, 'SQL query'), input,
    h('p', { class: 'help', id: 'sql-help' }, 'Read-only SQL (DataFusion) over the chain’s tables; at most 500 rows. Ctrl+Enter runs.'),
    h('div', { class: 'row wrap-row' }, run, h('span', { class: 'muted' }, 'Examples:'),
      EXAMPLE_SQL.map(([label, q]) => h('button', { type: 'button', class: 'secondary example-sql', onclick: () => { input.value = q; form.requestSubmit(); } }, label))));
  input.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); } });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const q = input.value.trim();
    if (!q) { status.textContent = 'Write a query first.'; return; }
    run.disabled = true;
    status.textContent = 'Running…';
    const t0 = performance.now();
    try {
      const rows = await sql(q, 500, ctx.signal);
      if (!ctx.alive) return;
      status.textContent = `Done in ${Math.round(performance.now() - t0)} ms.`;
      showRows(result, chartBox, Array.isArray(rows) ? rows : [], 'Query result', charts);
    } catch (err) {
      if (!ctx.alive) return;
      status.textContent = 'The query failed.';
      fill(result, errorBox(err, 'Error: '));
      fill(chartBox);
    } finally {
      if (ctx.alive) run.disabled = false;
    }
  });
  return section('SQL', 'sql-card', form, status, result, chartBox);
}

function askSection(ctx) {
  const input = h('input', { id: 'ask-input', type: 'text', autocomplete: 'off', maxlength: '500', placeholder: 'e.g. how much HIB did alice send to bob?' });
  const run = h('button', { type: 'submit', id: 'ask-run' }, 'Ask');
  const progress = h('p', { id: 'ask-progress', role: 'status', class: 'muted' });
  const answerText = h('p', { id: 'ask-text', class: 'answer', 'aria-live': 'polite' });
  const sqlBox = h('pre', { id: 'ask-sql', class: 'code-block', hidden: true });
  const sqlLabel = h('h3', { id: 'ask-sql-label', hidden: true }, 'SQL');
  const result = h('div', { id: 'ask-result' });
  const chartBox = h('div', { id: 'ask-chart' });
  const attempts = h('div', { id: 'ask-attempts' });
  const charts = [];
  let abort = null;
  ctx.onCleanup(() => { charts.forEach((c) => c.destroy()); if (abort) abort.abort(); });
  const form = h('form', { id: 'ask-form', class: 'stack' },
    h('label', { for: 'ask-input' }, 'Question'),
    h('div', { class: 'row' }, input, run),
    h('p', { class: 'help' }, 'A small model on this node’s CPU writes SQL for the question and runs it; this takes 5–20 seconds. Answers come from the rows, never from the model alone.'),
    h('div', { class: 'row wrap-row' }, h('span', { class: 'muted' }, 'Try:'),
      EXAMPLE_QUESTIONS.map((q) => h('button', { type: 'button', class: 'secondary example-question', onclick: () => { input.value = q; form.requestSubmit(); } }, q))));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const q = input.value.trim();
    if (!q) { progress.textContent = 'Ask a question first.'; return; }
    if (abort) abort.abort();
    abort = new AbortController();
    const signal = abort.signal;
    run.disabled = true;
    answerText.textContent = '';
    answerText.className = 'answer';
    sqlBox.hidden = true;
    sqlLabel.hidden = true;
    fill(result);
    fill(chartBox);
    fill(attempts);
    const t0 = Date.now();
    progress.textContent = 'Thinking… the model is writing SQL.';
    const bar = h('progress', { id: 'ask-bar', 'aria-label': 'Working on the question' });
    progress.after(bar);
    const tick = setInterval(() => { progress.textContent = `Thinking… ${Math.round((Date.now() - t0) / 1000)} s (usually 5–20 s).`; }, 1000);
    try {
      const res = await fetch(`${config.analytics}/ask`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ question: q }), signal,
      });
      if (res.status === 404 || res.status === 405) throw new Error('this analytics endpoint does not answer questions (no /ask)');
      const ans = await readJson(res, 'analytics');
      if (!ctx.alive || signal.aborted) return;
      const secs = ((Date.now() - t0) / 1000).toFixed(1);
      progress.textContent = ans && ans.answered === true ? `Answered in ${secs} s.` : `Not answered (${secs} s).`;
      renderAnswer(ans, { answerText, sqlBox, sqlLabel, result, chartBox, attempts, charts });
    } catch (err) {
      if (!ctx.alive || err.name === 'AbortError') return;
      progress.textContent = 'No answer.';
      answerText.className = 'answer refusal';
      answerText.textContent = err.status === 503 ? `The asker is not available: ${errText(err)}` : `Could not answer: ${errText(err)}`;
    } finally {
      clearInterval(tick);
      bar.remove();
      if (ctx.alive) run.disabled = false;
    }
  });
  return section('Ask a question', 'ask-card', form, progress, answerText, sqlLabel, sqlBox, result, chartBox, attempts);
}

function renderAnswer(ans, els) {
  const { answerText, sqlBox, sqlLabel, result, chartBox, attempts, charts } = els;
  const answered = ans && ans.answered === true;
  answerText.className = answered ? 'answer' : 'answer refusal';
  answerText.dataset.answered = String(answered);
  answerText.textContent = truncate(ans && ans.text ? ans.text : answered ? '(no text)' : 'The question could not be answered from the chain’s tables.', 2000);
  if (ans && typeof ans.sql === 'string' && ans.sql) {
    sqlLabel.hidden = false;
    sqlLabel.textContent = answered ? 'SQL' : 'Best SQL tried (not an answer)';
    sqlBox.hidden = false;
    sqlBox.textContent = truncate(ans.sql, 4000);
  }
  const rows = Array.isArray(ans && ans.rows) ? ans.rows : [];
  if (answered) showRows(result, chartBox, rows, 'Answer rows', charts);
  else fill(result);
  if (ans && Array.isArray(ans.attempts) && ans.attempts.length) {
    attempts.append(h('details', null, h('summary', null, `Candidates tried (${ans.attempts.length})`),
      h('ol', null, ans.attempts.slice(0, 20).map((a) => h('li', null,
        h('code', { class: 'wrap' }, truncate(a.sql, 600)),
        h('p', { class: 'muted small' }, `${truncate(a.source, 20)} · ${a.error ? `error: ${truncate(a.error, 200)}` : `${a.rows ?? 0} rows`} · ${a.votes ?? 0} votes`))))));
  }
}

function tablesSection(ctx) {
  const box = h('div', { id: 'analytics-tables' }, h('p', { class: 'muted' }, 'Loading the table list…'));
  (async () => {
    try {
      const res = await fetch(`${config.analytics}/tables`, { signal: ctx.signal });
      const list = await readJson(res, 'analytics');
      if (!ctx.alive) return;
      fill(box, ...(Array.isArray(list) ? list : []).slice(0, 50).map((t) => h('details', { class: 'table-def' },
        h('summary', null, h('code', null, truncate(t.name, 40)), ' — ', truncate(t.about || '', 160)),
        h('ul', { class: 'cols' }, (t.columns || []).slice(0, 60).map((c) => h('li', null, h('code', null, truncate(c.name, 40)), ' ', h('span', { class: 'muted' }, truncate(c.type, 40))))))));
    } catch (e) {
      if (ctx.alive) fill(box, errorBox(e));
    }
  })();
  return section('Tables', 'tables-card', box);
}
