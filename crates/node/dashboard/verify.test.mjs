// Tests of verify.js against the official BLAKE3 vectors and against answers and receipts
// recorded from a real devnet (testdata/). Run: node --test crates/node/dashboard/verify.test.mjs
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import {
  Blake3, StreamHasher, accountKey, addressBytes, addressFromPublicKey, blake3, decodeAccount,
  decodeReceipt, delegationsKey, hex, unhex, verifyAccountAnswer, verifyReceipt, verifyStateProof,
} from './verify.js';

const fixture = (name) => JSON.parse(readFileSync(new URL(`testdata/${name}`, import.meta.url), 'utf8'));
const vectors = fixture('blake3_vectors.json');
const proofs = fixture('state_proofs.json');
const receipts = fixture('receipts.json');

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
