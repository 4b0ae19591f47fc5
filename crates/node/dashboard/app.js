// The dashboard's entry: loads the node's config, routes hashes to views, keeps the header live.
import { config, h, heads, errorBox, notice, loadLabels } from './views/common.js';

// Views load on first use, so the first page fetches only what it shows.
const views = {
  explorer: () => import('./views/explorer.js'),
  subnets: () => import('./views/subnets.js'),
  market: () => import('./views/market.js'),
  zk: () => import('./views/zk.js'),
  playground: () => import('./views/playground.js'),
  analytics: () => import('./views/analytics.js'),
};

// [pattern, view (root id view-<view>, nav entry), page, title, module export]
const ROUTES = [
  [/^$/, 'explorer', 'home', 'Explorer', 'renderHome'],
  [/^block\/([^/]+)$/, 'explorer', 'block', 'Block', 'renderBlock'],
  [/^tx\/([^/]+)$/, 'explorer', 'tx', 'Transaction', 'renderTx'],
  [/^account\/([^/]+)$/, 'explorer', 'account', 'Account', 'renderAccount'],
  [/^subnets$/, 'subnets', 'list', 'Subnets', 'renderList'],
  [/^subnet\/([^/]+)$/, 'subnets', 'subnet', 'Subnet', 'renderSubnet'],
  [/^market$/, 'market', 'market', 'Market', 'render'],
  [/^zk$/, 'zk', 'zk', 'ZK', 'render'],
  [/^playground$/, 'playground', 'playground', 'Playground', 'render'],
  [/^analytics$/, 'analytics', 'analytics', 'Analytics', 'render'],
];

const main = document.getElementById('main');
let current = null;
let first = true;

async function route() {
  // In-page anchors (#main…) are not routes.
  const inPage = Boolean(location.hash) && !location.hash.startsWith('#/');
  if (inPage && current) return;
  let path = inPage ? '' : location.hash.replace(/^#\/?/, '');
  try { path = decodeURIComponent(path); } catch { /* keep it encoded */ }
  path = path.replace(/\/+$/, '');
  let match = null;
  let entry = null;
  for (const r of ROUTES) {
    match = path.match(r[0]);
    if (match) { entry = r; break; }
  }
  if (current) {
    current.ctrl.abort();
    for (const fn of current.cleanups) { try { fn(); } catch { /* ignore */ } }
  }
  const ctrl = new AbortController();
  const cleanups = [];
  const ctx = {
    signal: ctrl.signal,
    onCleanup: (fn) => cleanups.push(fn),
    get alive() { return !ctrl.signal.aborted; },
  };
  current = { ctrl, cleanups };
  main.replaceChildren();
  for (const a of document.querySelectorAll('#nav a')) {
    if (entry && a.dataset.nav === entry[1]) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!entry) {
    const root = h('section', { id: 'view-notfound', class: 'view' },
      h('h1', { tabindex: '-1' }, 'Not found'),
      notice(`There is no page “${path.slice(0, 80)}”.`), h('p', null, h('a', { href: '#/' }, 'Back to the explorer')));
    main.append(root);
    document.title = 'Not found · Hibana';
    moveFocus();
    return;
  }
  const [, name, page, title, fn] = entry;
  const root = h('section', { id: `view-${name}`, class: 'view', 'data-page': page });
  main.append(root);
  document.title = `${title} · Hibana`;
  moveFocus();
  try {
    const mod = await views[name]();
    if (!ctx.alive) return;
    await mod[fn](root, match.slice(1), ctx);
  } catch (e) {
    if (ctx.alive) root.append(errorBox(e));
  }
}

// After a navigation (not the first load), focus moves to the main region at once, so keyboard
// and screen reader users start at the new page; never later, so it is not taken from a field.
function moveFocus() {
  if (first) { first = false; return; }
  main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

async function loadConfig() {
  try {
    const res = await fetch('dashboard/config.json', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const c = await res.json();
    config.chain_id = typeof c.chain_id === 'string' ? c.chain_id : null;
    config.devnet = c.devnet === true;
    config.gateway = typeof c.gateway === 'string' && c.gateway ? c.gateway.replace(/\/+$/, '') : null;
    config.analytics = typeof c.analytics === 'string' && c.analytics ? c.analytics.replace(/\/+$/, '') : null;
    config.api_key = typeof c.api_key === 'string' && c.api_key ? c.api_key : null;
    config.accounts = Array.isArray(c.accounts)
      ? c.accounts.filter((a) => a && typeof a.address === 'string').slice(0, 100)
        .map((a) => ({ name: String(a.name || ''), address: a.address }))
      : [];
    return null;
  } catch (e) {
    return e;
  }
}

function startHeader() {
  const conn = document.getElementById('conn');
  const height = document.getElementById('head-height');
  const chain = document.getElementById('chain-id');
  if (config.chain_id) chain.textContent = config.chain_id + (config.devnet ? ' (devnet)' : '');
  heads.onMode((m) => {
    conn.textContent = { live: 'live', polling: 'polling', offline: 'node unreachable', connecting: 'connecting…' }[m] || m;
    conn.dataset.mode = m;
    conn.title = m === 'polling' ? 'WebSocket unavailable: asking the node every 2 s' : '';
  });
  // The height changes every block: shown in a separate element that is not a live region.
  heads.subscribe((hd) => { height.textContent = `height ${hd.height.toLocaleString('en-US')}`; });
}

async function boot() {
  const err = await loadConfig();
  document.getElementById('boot')?.remove();
  if (err) main.before(notice(`Could not read the dashboard config (${err.message}); gateway and analytics are treated as absent.`, 'warn'));
  startHeader();
  document.querySelector('a.skip')?.addEventListener('click', (e) => {
    e.preventDefault();
    main.focus();
    main.scrollIntoView();
  });
  // Names for addresses, waited for briefly so the first page can use them.
  await Promise.race([loadLabels(), new Promise((r) => setTimeout(r, 800))]);
  window.addEventListener('hashchange', route);
  route();
}

boot();
