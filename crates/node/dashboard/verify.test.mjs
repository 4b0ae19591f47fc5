// Tests of verify.js against the official BLAKE3 vectors and against answers, receipts and
// commits recorded from a real devnet and a real 4-validator network (testdata/).
// Run: node --test crates/node/dashboard/verify.test.mjs
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import {
  Blake3, LightError, MAX_VALIDATORS, StreamHasher, accountKey, addressBytes, addressFromPublicKey,
  blake3, blockHash, decodeAccount, decodeReceipt, delegationsKey, hex, unhex, verifyAccountAnswer,
  verifyCommit, verifyHeight, verifyReceipt, verifyStateProof,
} from './verify.js';

const fixture = (name) => JSON.parse(readFileSync(new URL(`testdata/${name}`, import.meta.url), 'utf8'));
const vectors = fixture('blake3_vectors.json');
const proofs = fixture('state_proofs.json');
const receipts = fixture('receipts.json');
const commits = fixture('commits.json');

const clone = (v) => structuredClone(v);
/** Hex with one byte flipped (by default near the middle). */
function flipHex(h, at = Math.floor(h.length / 4)) {
  const b = unhex(h);
  b[at] ^= 0x01;
  return hex(b);
}

// ---------------------------------------------------------------------------------------------
// BLAKE3

const patterned = (n) => Uint8Array.from({ length: n }, (_, i) => i % 251);

test('blake3 matches the official test vectors (one-shot)', () => {
  assert.ok(vectors.cases.length >= 35);
  for (const { input_len: n, hash } of vectors.cases) {
    assert.equal(hex(blake3(patterned(n))), hash, `input length ${n}`);
  }
});

test('blake3 gives the same hash however the input is split', () => {
  for (const { input_len: n, hash } of vectors.cases.filter((c) => c.input_len >= 1023)) {
    const input = patterned(n);
    for (const step of [1, 63, 64, 65, 1000, 1024, 1025, 4096]) {
      if (step === 1 && n > 8193) continue; // byte-by-byte on 100 KiB is slow and adds nothing
      const h = new Blake3();
      for (let i = 0; i < n; i += step) h.update(input.subarray(i, i + step));
      assert.equal(hex(h.finalize()), hash, `length ${n} in steps of ${step}`);
    }
  }
});

test('blake3 finalize does not consume the hasher', () => {
  const h = new Blake3().update(patterned(1024));
  assert.equal(hex(h.finalize()), hex(h.finalize()));
  h.update(patterned(2049).subarray(1024));
  const want = vectors.cases.find((c) => c.input_len === 2049).hash;
  // Inputs of i % 251 continue from byte 1024, so this equals the 2049-byte vector.
  assert.equal(hex(h.finalize()), want);
});

// ---------------------------------------------------------------------------------------------
// hex and addresses

test('hex round-trips and unhex rejects bad input', () => {
  assert.equal(hex(unhex('00ff10AB')), '00ff10ab');
  assert.throws(() => unhex('abc'), /odd length/);
  assert.throws(() => unhex('zz'), /non-hexadecimal/);
  assert.throws(() => unhex(null), Error);
});

test('addresses decode to 20 bytes and match Address::from_public_key', () => {
  const { public_key, address } = proofs.validator;
  assert.equal(addressFromPublicKey(unhex(public_key)), address);
  assert.equal(addressBytes(address).length, 20);
  const receipt = decodeReceipt(receipts.plain.receipt_hex);
  assert.equal(addressFromPublicKey(receipt.provider), receipts.provider_address);
  for (const { address: a } of Object.values(proofs.accounts)) {
    assert.equal(hex(addressBytes(a)).length, 40);
  }
});

test('addresses with a bad checksum, prefix, length or case are refused', () => {
  const alice = proofs.accounts.alice.address;
  const last = alice.at(-1);
  assert.throws(() => addressBytes(alice.slice(0, -1) + (last === 'q' ? 'p' : 'q')), /bad checksum/);
  assert.throws(() => addressBytes(alice.replace('hib1', 'hib1q')), /bad checksum/);
  // Valid bech32 strings (checked with a Python reference encoder) of the wrong shape:
  assert.throws(() => addressBytes('cosmos1qurswpc8qurswpc8qurswpc8qurswpc8nn86qp'), /prefix must be `hib`/);
  assert.throws(() => addressBytes('hib1qqqsyqcyq5rqwzqfpg9scrgwpugpzysnzs23v9ccrydpk8qarc0s4zjk69'), /expected 20 bytes, found 32/);
  assert.throws(() => addressBytes('hib1qypqx9fcx5n'), /expected 20 bytes, found 3/);
  assert.throws(() => addressBytes(alice.toUpperCase()), /prefix must be `hib`/);
  assert.throws(() => addressBytes(alice.slice(0, 10) + alice.slice(10).toUpperCase()), /mixed case/);
  assert.throws(() => addressBytes('hib1b' + alice.slice(5)), /invalid character|bad checksum/);
});

test('state keys are the prefix followed by the 20 address bytes', () => {
  const a = proofs.accounts.alice.address;
  assert.equal(hex(accountKey(a)), hex(new TextEncoder().encode('acct/')) + hex(addressBytes(a)));
  assert.equal(
    hex(delegationsKey(a)),
    hex(new TextEncoder().encode('staking/delegations/')) + hex(addressBytes(a)),
  );
});

// ---------------------------------------------------------------------------------------------
// State proofs from a real devnet

const headerRoot = (answer) => proofs.blocks[String(answer.height)].block.header.state_root;

test('the recorded block header is the one the answers were taken at', () => {
  for (const { answer } of Object.values(proofs.accounts)) {
    assert.equal(proofs.blocks[String(answer.height)].block.header.height, answer.height);
  }
});

test('real account answers verify against the block header', () => {
  const { alice, bob, unused } = proofs.accounts;
  const a = verifyAccountAnswer(alice.address, alice.answer, headerRoot(alice.answer));
  assert.equal(a.balance, BigInt(alice.answer.account.balance));
  assert.equal(a.nonce, 2n);
  assert.equal(alice.answer.account.delegations.length, 1); // the delegations entry is exercised
  const b = verifyAccountAnswer(bob.address, bob.answer, headerRoot(bob.answer));
  assert.equal(b.balance, 1_000_001_500_000_000n); // genesis balance + the 1.5HIB transfer
  assert.equal(b.nonce, 0n);
  // Never used: both proofs are non-inclusion proofs and the account is the default.
  assert.equal(unused.answer.account_entry, null);
  assert.deepEqual(verifyAccountAnswer(unused.address, unused.answer, null), { balance: 0n, nonce: 0n });
});

test('state proofs verify directly, for inclusion and non-inclusion', () => {
  const { alice, unused } = proofs.accounts;
  const root = alice.answer.state_root;
  verifyStateProof(root, accountKey(alice.address), unhex(alice.answer.account_entry), alice.answer.account_proof);
  verifyStateProof(root, accountKey(unused.address), null, unused.answer.account_proof);
  verifyStateProof(root, delegationsKey(proofs.accounts.bob.address), null, proofs.accounts.bob.answer.delegations_proof);
  // An inclusion proof does not prove absence, nor another value, nor another key.
  assert.throws(
    () => verifyStateProof(root, accountKey(alice.address), null, alice.answer.account_proof),
    /non-inclusion proof, but the key exists/,
  );
  assert.throws(
    () => verifyStateProof(root, accountKey(alice.address), unhex(proofs.accounts.bob.answer.account_entry), alice.answer.account_proof),
    /value hashes do not match/,
  );
  assert.throws(
    () => verifyStateProof(root, accountKey(unused.address), unhex(alice.answer.account_entry), alice.answer.account_proof),
    /keys do not match/,
  );
  // A non-inclusion proof does not prove a value.
  assert.throws(
    () => verifyStateProof(root, accountKey(unused.address), new Uint8Array(24), unused.answer.account_proof),
    /inclusion proof|keys do not match/,
  );
});

test('a flipped byte anywhere in a proof, an entry or the root fails', () => {
  for (const [name, { address, answer }] of Object.entries(proofs.accounts)) {
    const root = headerRoot(answer);
    const proofLen = answer.account_proof.length / 2;
    // Every byte of the proof: each flip must be caught (by decoding or by the root).
    for (let at = 0; at < proofLen; at++) {
      const bad = clone(answer);
      bad.account_proof = flipHex(answer.account_proof, at);
      assert.throws(() => verifyAccountAnswer(address, bad, root), Error, `${name}: proof byte ${at}`);
    }
    for (let at = 0; at < answer.delegations_proof.length / 2; at += 7) {
      const bad = clone(answer);
      bad.delegations_proof = flipHex(answer.delegations_proof, at);
      assert.throws(() => verifyAccountAnswer(address, bad, root), Error, `${name}: delegations proof byte ${at}`);
    }
    const badRoot = clone(answer);
    badRoot.state_root = flipHex(answer.state_root, 31);
    assert.throws(() => verifyAccountAnswer(address, badRoot, null), /root hashes do not match/);
    assert.throws(() => verifyAccountAnswer(address, answer, flipHex(root, 0)), /not the block header's/);
  }
  const { alice } = proofs.accounts;
  const root = headerRoot(alice.answer);
  for (const field of ['account_entry', 'delegations_entry']) {
    for (let at = 0; at < alice.answer[field].length / 2; at++) {
      const bad = clone(alice.answer);
      bad[field] = flipHex(alice.answer[field], at);
      assert.throws(() => verifyAccountAnswer(alice.address, bad, root), /value hashes do not match/);
    }
  }
});

test('an answer whose view differs from the proven entries fails', () => {
  const { alice, unused } = proofs.accounts;
  const root = headerRoot(alice.answer);
  const cases = [
    [(a) => { a.account.balance = String(BigInt(a.account.balance) + 1n); }, /balance or nonce/],
    [(a) => { a.account.nonce += 1; }, /balance or nonce/],
    [(a) => { a.account.delegations[0].shares += 1; }, /delegations differ/],
    [(a) => { a.account.delegations = []; }, /delegations differ/],
    [(a) => { a.account_entry = null; }, /account proof: .*non-inclusion proof, but the key exists/],
    [(a) => { a.delegations_entry = null; }, /delegations proof/],
    [(a) => { a.account_proof = a.account_proof + '00'; }, /trailing bytes/],
    [(a) => { a.account_proof = a.account_proof.slice(0, -2); }, /unexpected end/],
    [(a) => { a.account_entry += '00'; }, /value hashes do not match/],
  ];
  for (const [mutate, reason] of cases) {
    const bad = clone(alice.answer);
    mutate(bad);
    assert.throws(() => verifyAccountAnswer(alice.address, bad, root), reason);
  }
  // A claimed balance for a never-used account has nothing to stand on.
  const rich = clone(unused.answer);
  rich.account.balance = '5';
  assert.throws(() => verifyAccountAnswer(unused.address, rich, root), /balance or nonce/);
});

test('an answer checked against a wrong address fails', () => {
  const { alice, bob, unused } = proofs.accounts;
  // The view names alice; checked as bob's the view check refuses it, and without the view's
  // address the proofs do (they are for alice's keys).
  assert.throws(() => verifyAccountAnswer(bob.address, alice.answer, null), /not hib1/);
  const anonymous = clone(alice.answer);
  delete anonymous.account.address;
  assert.throws(() => verifyAccountAnswer(bob.address, anonymous, null), /account proof: keys do not match/);
  const unnamed = clone(unused.answer);
  delete unnamed.account.address;
  assert.throws(() => verifyAccountAnswer(alice.address, unnamed, null), /account proof/);
});

test('proofs with too many siblings or bad tags are refused before hashing', () => {
  const root = proofs.accounts.alice.answer.state_root;
  const key = accountKey(proofs.accounts.alice.address);
  const u32 = (n) => hex(Uint8Array.of(n & 255, (n >> 8) & 255, (n >> 16) & 255, n >>> 24));
  assert.throws(() => verifyStateProof(root, key, null, '00' + u32(257) + '00'.repeat(257)), /more than 256 \(257\) siblings/);
  assert.throws(() => verifyStateProof(root, key, null, '00' + u32(0xffffffff)), /more than 256/);
  assert.throws(() => verifyStateProof(root, key, null, '02' + u32(0)), /invalid leaf option tag 2/);
  assert.throws(() => verifyStateProof(root, key, null, '00' + u32(1) + '03'), /invalid sibling node tag 3/);
  assert.throws(() => verifyStateProof(root, key, null, '00' + u32(0) + '00'), /1 trailing bytes/);
  assert.throws(() => verifyStateProof(root, key, null, 'xyz'), /not hex/);
  // An empty tree: no leaf, no siblings proves absence under the placeholder root.
  const placeholder = hex(new TextEncoder().encode('SPARSE_MERKLE_PLACEHOLDER_HASH__'));
  verifyStateProof(placeholder, key, null, '00' + u32(0));
});

test('a non-inclusion proof by a leaf outside the key\'s subtree is refused', () => {
  // A one-level tree built by hand from jmt's definitions: the proof's leaf sits next to an
  // empty sibling, on the side the key's first bit points to. Honest trees cannot produce a
  // leaf there whose key hash starts with the other bit; jmt refuses such a proof even though
  // the hashes add up.
  const enc = new TextEncoder();
  const node = (domain, a, b) => new Blake3().update(enc.encode(domain)).update(a).update(b).finalize();
  const placeholder = enc.encode('SPARSE_MERKLE_PLACEHOLDER_HASH__');
  const key = enc.encode('acct/some key');
  const keyHash = blake3(key);
  const valueHash = blake3(enc.encode('value'));
  const proofFor = (leafKeyHash) => {
    const leaf = node('JMT::LeafNode', leafKeyHash, valueHash);
    const firstBit = keyHash[0] >> 7;
    const root = firstBit ? node('JMT::IntrnalNode', placeholder, leaf) : node('JMT::IntrnalNode', leaf, placeholder);
    return { root: hex(root), proof: `01${hex(leafKeyHash)}${hex(valueHash)}0100000000` };
  };
  const sameFirstBit = keyHash.slice();
  sameFirstBit[31] ^= 1;
  const inside = proofFor(sameFirstBit);
  verifyStateProof(inside.root, key, null, inside.proof);
  const otherFirstBit = keyHash.slice();
  otherFirstBit[0] ^= 0x80;
  const outside = proofFor(otherFirstBit);
  assert.throws(() => verifyStateProof(outside.root, key, null, outside.proof), /not a valid non-inclusion proof/);
  // And the leaf's own key cannot be "proven" absent by its own leaf.
  const own = proofFor(keyHash);
  assert.throws(() => verifyStateProof(own.root, key, null, own.proof), /but the key exists/);
  verifyStateProof(own.root, key, enc.encode('value'), own.proof);
});

test('decodeAccount reads balance (u128) and nonce (u64) and nothing more', () => {
  const entry = unhex(proofs.accounts.alice.answer.account_entry);
  assert.deepEqual(decodeAccount(entry), {
    balance: BigInt(proofs.accounts.alice.answer.account.balance),
    nonce: 2n,
  });
  const max = new Uint8Array(24).fill(0xff);
  assert.deepEqual(decodeAccount(max), { balance: 2n ** 128n - 1n, nonce: 2n ** 64n - 1n });
  assert.throws(() => decodeAccount(new Uint8Array(25)), /trailing bytes/);
  assert.throws(() => decodeAccount(new Uint8Array(23)), /unexpected end/);
});

// ---------------------------------------------------------------------------------------------
// Receipts from a real provider (through the devnet gateway)

test('a real receipt decodes into its fields', () => {
  const r = decodeReceipt(receipts.plain.receipt_hex);
  assert.equal(r.provider.length, 32);
  assert.equal(r.signature.length, 64);
  assert.equal(r.body.length, 160);
  assert.equal(hex(r.body), receipts.plain.receipt_hex.slice(0, 320));
  assert.equal(r.modelHash.length, 64);
  assert.equal(r.requestHash, hex(blake3(unhex(receipts.plain.request_hex))));
  const usage = JSON.parse(Buffer.from(receipts.plain.response_hex, 'hex')).usage;
  assert.equal(r.promptTokens, usage.prompt_tokens);
  assert.equal(r.completionTokens, usage.completion_tokens);
  assert.equal(r.price, 15000n); // 15 tokens at 0.000001HIB
  assert.ok(r.timestampMs > 1.7e12);
  assert.throws(() => decodeReceipt(receipts.plain.receipt_hex + '00'), /trailing bytes/);
  assert.throws(() => decodeReceipt(receipts.plain.receipt_hex.slice(0, -2)), /unexpected end/);
  assert.throws(() => decodeReceipt('zz'), /malformed/);
});

test('a real non-streamed receipt verifies, and any changed byte is caught', async () => {
  const { request_hex, response_hex, receipt_hex } = receipts.plain;
  const request = unhex(request_hex);
  const response = unhex(response_hex);
  const good = await verifyReceipt(receipt_hex, { request, response });
  assert.equal(good.ok, true, good.reason);
  assert.equal(hex(good.receipt.provider), hex(decodeReceipt(receipt_hex).provider));

  const otherRequest = request.slice();
  otherRequest[5] ^= 1;
  assert.deepEqual(
    pick(await verifyReceipt(receipt_hex, { request: otherRequest, response })),
    { ok: false, reason: 'receipt does not cover the request that was sent' },
  );
  const otherResponse = response.slice();
  otherResponse[response.length - 3] ^= 1;
  assert.deepEqual(
    pick(await verifyReceipt(receipt_hex, { request, response: otherResponse })),
    { ok: false, reason: 'receipt does not cover the response that was received' },
  );
  // Flipping any signature byte, or any body byte, breaks the signature.
  for (const at of [0, 31, 32, 100, 150, 159, 160, 191, 192, 223]) {
    const res = await verifyReceipt(flipHex(receipt_hex, at), { request, response });
    assert.equal(res.ok, false, `byte ${at}`);
    assert.match(res.reason, /signature is invalid/, `byte ${at}`);
  }
  const wrongProvider = await verifyReceipt(receipt_hex, { request, response, provider: new Uint8Array(32) });
  assert.match(wrongProvider.reason, /expected provider/);
  const malformed = await verifyReceipt('00', { request, response });
  assert.equal(malformed.ok, false);
  assert.match(malformed.reason, /malformed/);
});

test('a real streamed receipt verifies with the StreamHasher', async () => {
  const { request_hex, response_text, receipt_hex } = receipts.stream;
  const request = unhex(request_hex);
  // The client's view of the stream: data payloads until [DONE], the receipt in a comment.
  const hasher = new StreamHasher();
  let seen = null;
  for (const line of response_text.split('\n')) {
    if (line.startsWith('data:')) {
      const payload = line.slice(5).trimStart();
      if (payload !== '[DONE]') hasher.add(payload);
    } else if (line.startsWith(': x-hibana-receipt ')) {
      seen = line.slice(': x-hibana-receipt '.length).trim();
    }
  }
  assert.equal(seen, receipt_hex);
  const good = await verifyReceipt(receipt_hex, { request, responseHash: hasher.finish() });
  assert.equal(good.ok, true, good.reason);
  // One more payload changes the hash.
  hasher.add('{}');
  const bad = await verifyReceipt(receipt_hex, { request, responseHash: hasher.finish() });
  assert.equal(bad.reason, 'receipt does not cover the response that was received');
});

test('a receipt signed here with a WebCrypto key verifies the same way', async () => {
  const { publicKey, privateKey } = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
  const pub = new Uint8Array(await crypto.subtle.exportKey('raw', publicKey));
  const request = new TextEncoder().encode('{"q":1}');
  const response = new TextEncoder().encode('{"a":2}');
  const le = (v, n) => Uint8Array.from({ length: n }, (_, i) => Number((BigInt(v) >> BigInt(8 * i)) & 255n));
  const body = new Uint8Array([
    ...pub, ...blake3(new TextEncoder().encode('model')), ...blake3(request), ...blake3(response),
    ...le(3, 4), ...le(5, 4), ...le(2n ** 100n, 16), ...le(1_700_000_000_000, 8),
  ]);
  const msg = new Uint8Array([...new TextEncoder().encode('hibana/inference-receipt/v1\0'), ...body]);
  const sig = new Uint8Array(await crypto.subtle.sign('Ed25519', privateKey, msg));
  const receiptHex = hex(body) + hex(sig);
  const res = await verifyReceipt(receiptHex, { request, response, provider: pub });
  assert.equal(res.ok, true, res.reason);
  assert.equal(res.receipt.price, 2n ** 100n);
  assert.equal(res.receipt.promptTokens, 3);
  assert.equal(res.receipt.timestampMs, 1_700_000_000_000);
});

test('without WebCrypto the receipt is reported unverifiable, not valid', async () => {
  const { request_hex, response_hex, receipt_hex } = receipts.plain;
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
  Object.defineProperty(globalThis, 'crypto', { value: {}, configurable: true, writable: true });
  try {
    const res = await verifyReceipt(receipt_hex, { request: unhex(request_hex), response: unhex(response_hex) });
    assert.deepEqual(pick(res), {
      ok: false,
      reason: 'this page is not a secure context: open it at 127.0.0.1 or over https to verify signatures',
    });
  } finally {
    Object.defineProperty(globalThis, 'crypto', saved);
  }
});

function pick({ ok, reason }) {
  return { ok, reason };
}

// ---------------------------------------------------------------------------------------------
// Light client: chain_getCommit answers (testdata/commits.json) from a one-validator devnet and
// from a 4-validator network whose set changed at height 111 (a bond made one validator 1.5x).

const DEVNET = commits.devnet;
const FOUR = commits.four;
const four = (h) => clone(FOUR.commits[String(h)]);
const dev = (h) => clone(DEVNET.commits[String(h)]);
const realViews = () => [
  ...Object.values(DEVNET.commits).map((v) => [DEVNET.chain_id, clone(v)]),
  [DEVNET.chain_id, clone(DEVNET.account.commit)],
  ...Object.values(FOUR.commits).map((v) => [FOUR.chain_id, clone(v)]),
  [FOUR.chain_id, clone(FOUR.account.commit)],
];

/** Asserts that verifyCommit refuses, with a LightError whose message matches `pattern`. */
async function refuses(promise, pattern, kind) {
  let err = null;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected a refusal matching ${pattern}`);
  assert.ok(err instanceof LightError, `not a LightError: ${err?.stack}`);
  assert.match(err.message, pattern);
  if (kind) assert.equal(err.kind, kind, err.message);
  // The dashboard shows the reason next to where "verified" would be: it never says so.
  assert.doesNotMatch(err.message, /verified/i);
  return err;
}

test('the recorded commits cover one and four validators, rounds 0 and 1, and a set change', () => {
  assert.equal(four(1).commit.round, 1);
  assert.equal(four(3).commit.signatures.length, 3);
  assert.equal(four(111).commit.signatures.length, 4);
  assert.notDeepEqual(four(110).validators, four(111).validators);
  assert.equal(dev(5).validators.length, 1);
  assert.equal(FOUR.account.commit.header.height, FOUR.account.answer.height);
  assert.equal(DEVNET.account.commit.header.height, DEVNET.account.answer.height);
});

test('the header hash is BlockHeader::hash: the block hash each real commit signs', () => {
  for (const [, view] of realViews()) assert.equal(blockHash(view.header), view.commit.block_hash);
});

test('real commits verify and give the set that decided them', async () => {
  for (const [chainId, view] of realViews()) {
    const got = await verifyCommit(chainId, view);
    assert.equal(got.chainId, chainId);
    assert.equal(got.height, view.header.height);
    assert.deepEqual(got.validators, view.validators);
    const total = view.validators.reduce((t, v) => t + BigInt(v.power), 0n);
    assert.equal(got.totalPower, String(total));
    assert.ok(BigInt(got.signedPower) * 3n > total * 2n);
    // What it returns is what it takes back as the trusted set.
    assert.equal((await verifyCommit(chainId, view, JSON.parse(JSON.stringify(got)))).height, got.height);
  }
  const after = await verifyCommit(FOUR.chain_id, four(111));
  assert.deepEqual([after.signedPower, after.totalPower], ['4500000000000000', '4500000000000000']);
});

test('a header, its proof and its account answer check out end to end', async () => {
  for (const net of [DEVNET, FOUR]) {
    const { address, answer, commit } = clone(net.account);
    const now = await verifyCommit(net.chain_id, commit);
    assert.equal(commit.header.state_root, answer.state_root);
    const got = verifyAccountAnswer(address, answer, commit.header.state_root);
    assert.equal(got.balance, BigInt(answer.account.balance));
    assert.equal(now.height, answer.height);
  }
  // A made-up header with another state root is refused, whatever root the answer claims.
  const { commit } = clone(FOUR.account);
  commit.header.state_root = FOUR.account.answer.state_root.replace(/^./, (c) => (c === '0' ? '1' : '0'));
  await refuses(verifyCommit(FOUR.chain_id, commit), /the commit signs block .*, the header hashes to/, 'mismatch');
});

test('any changed header field is caught', async () => {
  const base = four(111);
  const other = four(110).header;
  const changes = {
    chain_id: (hd) => { hd.chain_id = 'lc-four '; },
    height: (hd) => { hd.height += 1; },
    parent_hash: (hd) => { hd.parent_hash = flipHex(hd.parent_hash, 31); },
    time_ms: (hd) => { hd.time_ms += 1; },
    proposer: (hd) => { hd.proposer = other.proposer === hd.proposer ? FOUR.commits['111'].validators[1].address : other.proposer; },
    tx_root: (hd) => { hd.tx_root = flipHex(hd.tx_root, 0); },
    state_root: (hd) => { hd.state_root = flipHex(hd.state_root); },
    app_hash: (hd) => { hd.app_hash = flipHex(hd.app_hash); },
  };
  for (const [field, change] of Object.entries(changes)) {
    const view = clone(base);
    change(view.header);
    assert.notEqual(blockHash(view.header), base.commit.block_hash, field);
    // Each field has its own reason: another chain, another height, a state that does not hold
    // the set (app_hash), or a hash the commit does not sign.
    const want = {
      chain_id: /the header is of chain "lc-four ", not "lc-four"/,
      height: /commit height 111 for header height 112/,
      app_hash: /validator set proof: root hashes do not match/,
    }[field] ?? /the commit signs block [0-9a-f]{64}, the header hashes to [0-9a-f]{64}/;
    await refuses(verifyCommit(FOUR.chain_id, view), want);
  }
  // Each integer has its width: a time that does not fit a u64 exactly is refused.
  const big = clone(base);
  big.header.time_ms = 2 ** 64;
  await refuses(verifyCommit(FOUR.chain_id, big), /the header's time must be an integer/, 'malformed');
  // Another chain's commit is another chain's.
  await refuses(verifyCommit('hibana-devnet', clone(base)), /the header is of chain "lc-four", not "hibana-devnet"/, 'mismatch');
});

test('a flipped byte in any signature, or a re-pointed commit, is caught', async () => {
  const base = four(111);
  for (let i = 0; i < base.commit.signatures.length; i++) {
    for (const at of [0, 31, 32, 63]) {
      const view = clone(base);
      view.commit.signatures[i].signature = flipHex(view.commit.signatures[i].signature, at);
      await refuses(verifyCommit(FOUR.chain_id, view), new RegExp(`bad commit signature: ${base.commit.signatures[i].validator}: the signature does not match`), 'bad-signature');
    }
  }
  // A node that re-points the commit at its own header: the signatures no longer cover it.
  const lie = clone(base);
  lie.header.time_ms += 1;
  lie.commit.block_hash = blockHash(lie.header);
  await refuses(verifyCommit(FOUR.chain_id, lie), /bad commit signature: .*does not match/, 'bad-signature');
  // …or says it was decided in another round.
  const round = clone(base);
  round.commit.round = 1;
  await refuses(verifyCommit(FOUR.chain_id, round), /bad commit signature/, 'bad-signature');
  // A signature credited to another member of the set fails under that member's key.
  const swapped = clone(base);
  const [a, b] = swapped.commit.signatures;
  [a.signature, b.signature] = [b.signature, a.signature];
  await refuses(verifyCommit(FOUR.chain_id, swapped), /bad commit signature/, 'bad-signature');
});

test('a flipped byte in the validators entry or its proof, or another shown set, is caught', async () => {
  const base = four(111);
  const entryLen = base.validators_entry.length / 2;
  for (const at of [0, 4, 4 + 20, 4 + 52, entryLen - 1]) {
    const view = clone(base);
    view.validators_entry = flipHex(view.validators_entry, at);
    await refuses(verifyCommit(FOUR.chain_id, view), /validator set proof: value hashes do not match/);
  }
  const proofLen = base.validators_proof.length / 2;
  for (const at of [1, 40, Math.floor(proofLen / 2), proofLen - 1]) {
    const view = clone(base);
    view.validators_proof = flipHex(view.validators_proof, at);
    await refuses(verifyCommit(FOUR.chain_id, view), /validator set proof: /);
  }
  // The set of the state before another block, with its own valid proof, is not this block's.
  const before = four(110);
  const stale = clone(base);
  stale.validators_entry = before.validators_entry;
  stale.validators_proof = before.validators_proof;
  await refuses(verifyCommit(FOUR.chain_id, stale), /validator set proof: /);
  // The JSON `validators` must be the proven set (the proven one is used in any case).
  const shown = clone(base);
  shown.validators[0].power = '1000000000000000';
  await refuses(verifyCommit(FOUR.chain_id, shown), /the validator set differs from the proven entry/);
  const reordered = clone(base);
  reordered.validators.reverse();
  await refuses(verifyCommit(FOUR.chain_id, reordered), /the validator set differs from the proven entry/);
  const missing = clone(base);
  missing.validators_entry = null;
  await refuses(verifyCommit(FOUR.chain_id, missing), /the state before height 111 records no validator set/);
  const notHex = clone(base);
  notHex.validators_entry += 'zz';
  await refuses(verifyCommit(FOUR.chain_id, notHex), /not hex/);
});

test('a commit for another height or another block is refused', async () => {
  const view = four(111);
  view.commit = four(110).commit;
  await refuses(verifyCommit(FOUR.chain_id, view), /the commit is not for this header: commit height 110 for header height 111/, 'mismatch');
  const same = four(110);
  same.commit = four(3).commit;
  await refuses(verifyCommit(FOUR.chain_id, same), /commit height 3 for header height 110/, 'mismatch');
  // The right height but another block's hash.
  const other = four(111);
  other.commit.block_hash = four(110).commit.block_hash;
  await refuses(verifyCommit(FOUR.chain_id, other), /the commit signs block/, 'mismatch');
  await refuses(verifyCommit(FOUR.chain_id, null), /no commit/);
});

test('a signer counted twice is refused, and outsiders count for nothing', async () => {
  const view = four(3);
  view.commit.signatures.push(clone(view.commit.signatures[1]));
  await refuses(verifyCommit(FOUR.chain_id, view), new RegExp(`${view.commit.signatures[1].validator} signed twice`), 'bad-signature');
  // Two signers and a duplicate of one of them do not make three.
  const two = four(3);
  two.commit.signatures = [two.commit.signatures[0], two.commit.signatures[1], clone(two.commit.signatures[0])];
  await refuses(verifyCommit(FOUR.chain_id, two), /signed twice/, 'bad-signature');
  // A devnet validator's real signature (another chain, not a member) is ignored.
  const padded = four(3);
  padded.commit.signatures.pop();
  padded.commit.signatures.push(clone(dev(5).commit.signatures[0]));
  await refuses(verifyCommit(FOUR.chain_id, padded), /validators with 2000000000000000 of 4000000000000000 voting power signed/, 'no-quorum');
  const extra = four(3);
  extra.commit.signatures.push(clone(dev(5).commit.signatures[0]));
  assert.equal((await verifyCommit(FOUR.chain_id, extra)).signedPower, '3000000000000000');
});

test('signers holding two thirds or less of the power are not enough', async () => {
  // 2 of 4 equal validators.
  const half = four(3);
  half.commit.signatures.pop();
  await refuses(verifyCommit(FOUR.chain_id, half), /validators with 2000000000000000 of 4000000000000000 voting power signed; more than two thirds are needed/, 'no-quorum');
  // Exactly two thirds: after the change, the three validators of 1e15 without the one of 1.5e15.
  const big = FOUR.commits['111'].validators.find((v) => v.power === '1500000000000000').address;
  const exact = four(111);
  exact.commit.signatures = exact.commit.signatures.filter((s) => s.validator !== big);
  assert.equal(exact.commit.signatures.length, 3);
  await refuses(verifyCommit(FOUR.chain_id, exact), /3000000000000000 of 4500000000000000 voting power signed/, 'no-quorum');
  // …while the big one and two others are more than two thirds (3.5 of 4.5).
  const enough = four(111);
  enough.commit.signatures = enough.commit.signatures.filter((s) => s.validator === big).concat(
    enough.commit.signatures.filter((s) => s.validator !== big).slice(0, 2));
  assert.equal((await verifyCommit(FOUR.chain_id, enough)).signedPower, '3500000000000000');
  // No signatures at all, and a devnet commit with its only signature removed.
  const none = dev(5);
  none.commit.signatures = [];
  await refuses(verifyCommit(DEVNET.chain_id, none), /validators with 0 of 1000000000000000/, 'no-quorum');
});

test('a set that differs from the trusted one needs more than a third of the trusted power', async () => {
  const keys = await Promise.all([1, 2, 3].map(() => makeValidator(1_000_000_000_000_000n)));
  const real = FOUR.commits['111'].validators;
  const earlier = await verifyCommit(FOUR.chain_id, four(110));
  // The set changed between 110 and 111; all four of the old set signed 111.
  const later = await verifyCommit(FOUR.chain_id, four(111), earlier);
  assert.equal(later.height, 111);
  assert.deepEqual(later.validators, real);
  // A trusted set of which only one third signed: refused (exactly a third is not more).
  const third = { chainId: FOUR.chain_id, height: 7, validators: [real[2], keys[0].info, keys[1].info] };
  const err = await refuses(verifyCommit(FOUR.chain_id, four(111), third),
    /validators this page trusts \(height 7\) hold 1000000000000000 of 3000000000000000 power among the signers; more than a third is needed/, 'untrusted');
  assert.equal(err.kind, 'untrusted');
  // Half of it signed: accepted, and the new set is the one to trust.
  const half = { chainId: FOUR.chain_id, height: 7, validators: [real[2], real[3], keys[0].info, keys[1].info] };
  assert.deepEqual((await verifyCommit(FOUR.chain_id, four(111), half)).validators, real);
  // The same set as trusted needs no overlap check (it is the deciding set).
  const same = { chainId: FOUR.chain_id, height: 200, validators: real };
  assert.equal((await verifyCommit(FOUR.chain_id, four(111), same)).height, 111);
  // A trusted member whose key differs from the signer's: its signature fails under it.
  const rekeyed = { chainId: FOUR.chain_id, height: 7, validators: [{ ...real[2], public_key: real[3].public_key }, keys[0].info] };
  await refuses(verifyCommit(FOUR.chain_id, four(111), rekeyed), /bad commit signature: .*does not match/, 'bad-signature');
  // A set trusted on another chain, an empty set, or a malformed one.
  await refuses(verifyCommit(FOUR.chain_id, four(111), { ...half, chainId: 'hibana-devnet' }), /the trusted set is of chain "hibana-devnet"/, 'mismatch');
  await refuses(verifyCommit(FOUR.chain_id, four(111), { ...half, validators: [] }), /invalid validator set: no voting power/, 'bad-set');
  await refuses(verifyCommit(FOUR.chain_id, four(111), { ...half, validators: [{ ...real[0], power: '-1' }] }), /power must be an amount/, 'malformed');
});

test('a node that makes up a whole validator set is refused by the trusted set', async () => {
  const fake = await Promise.all([1, 2, 3, 4].map(() => makeValidator(1_000_000_000_000_000n)));
  // A header of the real chain at a real height, with another state root, decided by a set the
  // node made up: consistent in itself (it verifies without a trusted set)…
  const real = four(111).header;
  const header = { ...real, state_root: hex(blake3(new TextEncoder().encode('made up'))) };
  const forged = await makeView({ header, set: fake, signers: fake });
  assert.equal((await verifyCommit(FOUR.chain_id, forged)).height, 111);
  // …but none of the trusted set signed it.
  const trusted = await verifyCommit(FOUR.chain_id, four(110));
  await refuses(verifyCommit(FOUR.chain_id, forged, trusted),
    /validators this page trusts \(height 110\) hold 0 of 4000000000000000 power among the signers/, 'untrusted');
  // Even with real signatures of the trusted validators added: they signed another block.
  const padded = clone(forged);
  padded.commit.signatures.push(...four(111).commit.signatures);
  await refuses(verifyCommit(FOUR.chain_id, padded, trusted), /bad commit signature: .*does not match/, 'bad-signature');
});

test('verifyHeight bisects from the trusted height when the set changed too much', async () => {
  const v = await Promise.all(Array.from({ length: 8 }, () => makeValidator(10n)));
  // Heights 1-3: validators 0-3; 4-6: 2-5; 7-9: 4-7. Heights 1 and 9 share no validator.
  const setAt = (height) => (height <= 3 ? v.slice(0, 4) : height <= 6 ? v.slice(2, 6) : v.slice(4, 8));
  const chain = new Map();
  for (let height = 1; height <= 9; height++) {
    const header = synthHeader(height);
    chain.set(height, await makeView({ header, set: setAt(height), signers: setAt(height) }));
  }
  const fetched = [];
  const fetchCommit = async (height) => {
    fetched.push(height);
    return chain.has(height) ? clone(chain.get(height)) : null;
  };
  const start = await verifyCommit('test', chain.get(1));
  await refuses(verifyCommit('test', chain.get(9), start), /trusts \(height 1\) hold 0 of 40/, 'untrusted');
  const { view, trusted } = await verifyHeight('test', 9, start, fetchCommit);
  assert.equal(view.header.height, 9);
  assert.equal(trusted.height, 9);
  assert.deepEqual(trusted.validators, setAt(9).map((k) => k.info));
  assert.deepEqual(fetched, [9, 5, 9]); // 9 refused, 5 from 1, then 9 from 5
  // Without room to split, the refusal is reported with its height.
  await refuses(verifyHeight('test', 9, start, fetchCommit, 0), /^the header at height 9: validators this page trusts/, 'untrusted');
  // Other refusals are not split: a missing commit, or a bad one.
  await refuses(verifyHeight('test', 10, start, fetchCommit), /the node has no commit for height 10/);
  const broken = async (height) => {
    const view = clone(chain.get(height));
    view.commit.signatures.pop();
    view.commit.signatures.pop();
    return view;
  };
  await refuses(verifyHeight('test', 9, start, broken), /^the header at height 9: validators with 20 of 40/, 'no-quorum');
  // A trusted height next to the target cannot be split either.
  const eight = await verifyCommit('test', chain.get(8));
  const fromThree = await verifyCommit('test', chain.get(3));
  await refuses(verifyHeight('test', 4, { ...fromThree, validators: [v[1], v[2], v[6], v[7]].map((k) => k.info) }, fetchCommit),
    /^the header at height 4: validators this page trusts \(height 3\) hold 10 of 40/, 'untrusted');
  assert.equal((await verifyHeight('test', 9, eight, fetchCommit)).trusted.height, 9);
});

test('what is decoded is bounded: set size, signatures, trailing bytes', async () => {
  const [a] = await Promise.all([makeValidator(1n)]);
  const header = synthHeader(4);
  const good = await makeView({ header, set: [a], signers: [a] });
  assert.equal((await verifyCommit('test', good)).height, 4);
  // An entry with a byte more than its validators (a valid proof of it): refused.
  const trailing = await makeView({ header, set: [a], signers: [a], entry: concatBytes(setEntry([a]), [0]) });
  await refuses(verifyCommit('test', trailing), /validator set entry: 1 validators take 68 bytes, found 69/, 'malformed');
  // One that claims more validators than it holds, or more than MAX_VALIDATORS.
  const short = await makeView({ header, set: [a], signers: [a], entry: concatBytes(le(2, 4), setEntry([a]).subarray(4)) });
  await refuses(verifyCommit('test', short), /2 validators take 136 bytes, found 68/, 'malformed');
  const many = await makeView({ header, set: [a], signers: [a], entry: concatBytes(le(MAX_VALIDATORS + 1, 4), setEntry([a]).subarray(4)) });
  await refuses(verifyCommit('test', many), /holds 1025 validators, more than 1024/, 'bad-set');
  // A set of 1025 validators is refused before its proof is even hashed.
  const huge = clone(good);
  huge.validators_entry = hex(concatBytes(le(MAX_VALIDATORS + 1, 4), new Uint8Array(68 * (MAX_VALIDATORS + 1))));
  await refuses(verifyCommit('test', huge), /more than 1024 validators take/, 'bad-set');
  // A commit with more signatures than a set may have validators.
  const crowded = clone(good);
  crowded.commit.signatures = Array.from({ length: MAX_VALIDATORS + 1 }, () => clone(good.commit.signatures[0]));
  await refuses(verifyCommit('test', crowded), /1025 signatures, more than 1024/, 'malformed');
  // Powers are u128: a set whose total overflows is invalid, as in Rust.
  const max = (1n << 128n) - 1n;
  const b = await makeValidator(max);
  const overflow = await makeView({ header, set: [a, b], signers: [a, b] });
  await refuses(verifyCommit('test', overflow), /invalid validator set: voting power overflows/, 'bad-set');
  // A power of 2^128 - 1 alone is fine (and compared exactly).
  const alone = await makeView({ header, set: [b], signers: [b] });
  assert.equal((await verifyCommit('test', alone)).totalPower, String(max));
  // A signature of the wrong length, and a round beyond u32.
  const sigLen = clone(good);
  sigLen.commit.signatures[0].signature += '00';
  await refuses(verifyCommit('test', sigLen), /commit signature 0 must be 64 bytes/, 'malformed');
  const round = clone(good);
  round.commit.round = 2 ** 32;
  await refuses(verifyCommit('test', round), /the commit's round must be an integer from 0 to 4294967295/, 'malformed');
});

// Synthetic networks, built here independently of verify.js's encoders: borsh by hand, keys from
// WebCrypto, and a one-leaf Merkle tree for the validator set entry.

const enc = new TextEncoder();
function le(v, n) {
  return Uint8Array.from({ length: n }, (_, i) => Number((BigInt(v) >> BigInt(8 * i)) & 255n));
}
function concatBytes(...parts) {
  return Uint8Array.from(parts.flatMap((p) => [...p]));
}
const borshString = (s) => concatBytes(le(enc.encode(s).length, 4), enc.encode(s));

async function makeValidator(power) {
  const { publicKey, privateKey } = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
  const pub = new Uint8Array(await crypto.subtle.exportKey('raw', publicKey));
  const address = addressFromPublicKey(pub);
  return { privateKey, pub, address, info: { address, public_key: hex(pub), power: String(power) } };
}

function synthHeader(height) {
  const h32 = (s) => hex(blake3(enc.encode(s)));
  return {
    chain_id: 'test', height, parent_hash: h32(`parent ${height}`), time_ms: 1_700_000_000_000 + height,
    proposer: addressFromPublicKey(new Uint8Array(32).fill(9)), tx_root: h32('txs'),
    state_root: h32(`state ${height}`), app_hash: '00'.repeat(32), // app_hash: set by makeView
  };
}

/** borsh Vec<ValidatorInfo>. */
const setEntry = (set) => concatBytes(le(set.length, 4), ...set.map((k) => concatBytes(addressBytes(k.address), k.pub, le(k.info.power, 16))));

/** A chain_getCommit answer for `header`, decided by `set`, signed by `signers`. */
async function makeView({ header, set, signers, round = 0, entry = setEntry(set) }) {
  // The state before the block holds only the set: a tree of one leaf, whose hash is the root.
  const keyHash = blake3(enc.encode('staking/validator_set'));
  const valueHash = blake3(entry);
  const appHash = hex(blake3(concatBytes(enc.encode('JMT::LeafNode'), keyHash, valueHash)));
  const hd = { ...header, app_hash: appHash };
  const headerBytes = concatBytes(
    borshString(hd.chain_id), le(hd.height, 8), unhex(hd.parent_hash), le(hd.time_ms, 8),
    addressBytes(hd.proposer), unhex(hd.tx_root), unhex(hd.state_root), unhex(hd.app_hash));
  const hash = blake3(headerBytes);
  const signatures = [];
  for (const k of signers) {
    const vote = concatBytes([1], le(hd.height, 8), [1], le(round, 4), [1], hash, addressBytes(k.address));
    const message = concatBytes(enc.encode('hibana/consensus/v1'), borshString(hd.chain_id), borshString('vote'), vote);
    const sig = new Uint8Array(await crypto.subtle.sign('Ed25519', k.privateKey, message));
    signatures.push({ validator: k.address, signature: hex(sig) });
  }
  return {
    header: hd,
    commit: { height: hd.height, round, block_hash: hex(hash), signatures },
    validators: set.map((k) => k.info),
    validators_entry: hex(entry),
    validators_proof: hex(concatBytes([1], keyHash, valueHash, le(0, 4))),
  };
}
