// Drives a running devnet's dashboard in headless Chromium the way a person would, for
// crates/node/tests/dashboard.rs. Usage:
//   node e2e.mjs --url http://127.0.0.1:PORT/ --bin path/to/hibana --home DEVNET_HOME --shots DIR
//   node e2e.mjs --url http://127.0.0.1:PORT/ --bench [--runs 7]   (page weight and first paint only)
// Prints one JSON object: {checks: {name: true|"why not"}, console: [...], shots: [...],
// load: {kb, requests, first_contentful_paint_ms, dom_content_loaded_ms}}. Exits 1 if any check
// failed or the page logged an error or a warning.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => {
    if (a.startsWith('--')) pairs.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : true]);
    return pairs;
  }, []),
);
const base = String(args.url).replace(/\/?$/, '/');
const shots = String(args.shots || '.');
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const consoleLog = [];
const checks = {};
const result = { checks, console: consoleLog, shots: [] };

function watch(page, where) {
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') consoleLog.push(`${where}: ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => consoleLog.push(`${where}: uncaught: ${e.message}`));
}

async function check(name, fn) {
  try {
    await fn();
    checks[name] = true;
  } catch (e) {
    checks[name] = String(e && e.message ? e.message : e).split('\n')[0];
  }
}

// Page weight and time to first render of a first load (empty cache).
async function measureLoad() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  watch(page, 'load');
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  let bytes = 0;
  let requests = 0;
  cdp.on('Network.loadingFinished', (e) => {
    bytes += e.encodedDataLength;
    requests += 1;
  });
  await page.goto(base, { waitUntil: 'networkidle' });
  const timing = await page.evaluate(() => {
    const paint = performance.getEntriesByName('first-contentful-paint')[0];
    const nav = performance.getEntriesByType('navigation')[0];
    return {
      fcp: paint ? paint.startTime : null,
      dcl: nav ? nav.domContentLoadedEventEnd : null,
    };
  });
  await context.close();
  return {
    kb: Math.round((bytes / 1024) * 10) / 10,
    requests,
    first_contentful_paint_ms: timing.fcp === null ? null : Math.round(timing.fcp),
    dom_content_loaded_ms: timing.dcl === null ? null : Math.round(timing.dcl),
  };
}

const VIEWS = [
  ['explorer', '#/'],
  ['subnets', '#/subnets'],
  ['market', '#/market'],
  ['zk', '#/zk'],
  ['playground', '#/playground'],
  ['analytics', '#/analytics'],
];
const WIDTHS = [
  ['desktop', { width: 1280, height: 800 }],
  ['phone', { width: 390, height: 844 }],
];

async function everyViewAtBothWidths() {
  for (const [label, viewport] of WIDTHS) {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    watch(page, label);
    for (const [view, hash] of VIEWS) {
      await check(`${view} view loads (${label})`, async () => {
        await page.goto(base + hash);
        await page.waitForSelector(`#view-${view}`, { state: 'visible', timeout: 20000 });
        // Let the view fetch its data before the picture is taken.
        await page.waitForLoadState('networkidle', { timeout: 20000 }).catch(() => {});
        const file = join(shots, `${view}-${label}.png`);
        await page.screenshot({ path: file, fullPage: true });
        result.shots.push(file);
      });
    }
    await context.close();
  }
}

function cli(...rest) {
  return execFileSync(String(args.bin), ['--json', ...rest, '--home', String(args.home)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function flows() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  watch(page, 'flows');
  const config = await (await fetch(base + 'dashboard/config.json')).json();
  const bob = config.accounts.find((a) => a.name === 'bob').address;

  await check('a transfer made with the CLI appears live in the explorer', async () => {
    await page.goto(base + '#/');
    await page.waitForSelector('#blocks tr[data-height]', { timeout: 20000 });
    const sent = JSON.parse(cli('tx', 'transfer', '--from', 'alice', '--to', bob, '--amount', '1.5HIB'));
    const hash = sent.tx_hash || sent.hash || (sent.receipt && sent.receipt.tx_hash);
    if (!hash) throw new Error(`the CLI printed no tx hash: ${JSON.stringify(sent).slice(0, 200)}`);
    // No reload: the row must arrive through the page's own subscription.
    await page.waitForSelector(`[data-tx="${hash}"]`, { timeout: 20000 });
  });

  await check('the account page verifies its Merkle proof in the browser', async () => {
    await page.goto(base + `#/account/${bob}`);
    await page.waitForFunction(
      () => /\bverified\b/i.test(document.querySelector('#verified-badge')?.textContent || '') &&
        !/not verified|unverified/i.test(document.querySelector('#verified-badge')?.textContent || ''),
      null,
      { timeout: 20000 },
    );
  });

  await check('the search finds an account by name', async () => {
    await page.goto(base + '#/');
    await page.fill('#search', 'bob');
    await page.press('#search', 'Enter');
    await page.waitForFunction((b) => location.hash.includes(b), bob, { timeout: 10000 });
  });

  await check('a chat streams and shows a verified receipt', async () => {
    await page.goto(base + '#/playground');
    await page.waitForSelector('#chat-input', { timeout: 10000 });
    await page.fill('#chat-input', 'Say hello in three words.');
    await page.click('#chat-send');
    await page.waitForFunction(() => (document.querySelector('#chat-output')?.textContent || '').trim().length > 0, null, {
      timeout: 60000,
    });
    await page.waitForFunction(
      () => /^\s*verified/i.test(document.querySelector('#receipt-status')?.textContent || ''),
      null,
      { timeout: 120000 },
    );
  });

  await check('the audit box finds the reentrancy bug and highlights its line', async () => {
    await page.goto(base + '#/playground');
    await page.waitForSelector('#audit-input', { timeout: 10000 });
    await page.click('#audit-run');
    await page.waitForFunction(
      () => [...document.querySelectorAll('#audit-findings [data-rule]')].some((f) => /reentran/i.test(f.getAttribute('data-rule') + f.textContent)),
      null,
      { timeout: 60000 },
    );
    await page.waitForSelector('.hl-line', { timeout: 5000 });
  });

  await check('a SQL query shows its rows', async () => {
    await page.goto(base + '#/analytics');
    await page.fill('#sql-input', 'SELECT count(*) AS n FROM blocks');
    await page.click('#sql-run');
    await page.waitForSelector('#sql-result table tbody tr', { timeout: 30000 });
  });

  await check('an ask question shows its SQL and rows', async () => {
    await page.goto(base + '#/analytics');
    await page.fill('#ask-input', 'How many blocks are there?');
    await page.click('#ask-run');
    await page.waitForFunction(() => /select/i.test(document.querySelector('#ask-sql')?.textContent || ''), null, {
      timeout: 120000,
    });
    await page.waitForSelector('#ask-result table tbody tr', { timeout: 10000 });
  });

  await check('the subnets view shows the demo network paying', async () => {
    await page.goto(base + '#/subnets');
    await page.waitForSelector('#view-subnets a[href^="#/subnet/"]', { timeout: 20000 });
    await page.click('#view-subnets a[href^="#/subnet/"]');
    await page.waitForSelector('#view-subnets canvas, #view-subnets svg', { timeout: 20000 });
  });
  await context.close();
}

// The median of `runs` cold loads, and a side-by-side table on stderr.
async function bench(runs) {
  const loads = [];
  for (let i = 0; i < runs; i += 1) loads.push(await measureLoad());
  const median = (key) => {
    const values = loads.map((l) => l[key]).filter((v) => v !== null).sort((a, b) => a - b);
    return values.length ? values[Math.floor(values.length / 2)] : null;
  };
  const summary = {
    runs,
    kb: median('kb'),
    requests: median('requests'),
    first_contentful_paint_ms: median('first_contentful_paint_ms'),
    dom_content_loaded_ms: median('dom_content_loaded_ms'),
  };
  process.stderr.write(
    `dashboard first load, cold cache, 1280x800, median of ${runs}\n` +
      `  transferred        ${summary.kb} KB in ${summary.requests} requests\n` +
      `  first paint        ${summary.first_contentful_paint_ms} ms\n` +
      `  DOMContentLoaded   ${summary.dom_content_loaded_ms} ms\n`,
  );
  return summary;
}

try {
  if (args.bench) {
    result.load = await bench(Number(args.runs) || 7);
  } else {
    result.load = await measureLoad();
    await everyViewAtBothWidths();
    await flows();
  }
} catch (e) {
  checks.driver = String(e && e.stack ? e.stack : e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result, null, 2));
const failed = Object.values(checks).some((v) => v !== true) || consoleLog.length > 0;
process.exit(failed ? 1 : 0);
