// In-browser checks of what a Hibana node claims: Merkle state proofs (jmt 0.12 over blake3) and
// signed inference receipts (ed25519). The page trusts nothing the node says until it passes here.
//
// Everything mirrors the Rust side byte for byte:
//   - addresses: crates/types/src/address.rs (bech32, HRP "hib", 20 bytes of blake3(public key))
//   - state proofs: crates/types/src/proof.rs and jmt-0.12.0 src/types/proof{,/definition}.rs
//   - account answers: verify_account in crates/rpc/src/client.rs
//   - receipts: crates/types/src/inference.rs, StreamHasher in crates/roles/src/provider/receipts.rs
//   - block headers (light client): verify_header in crates/types/src/light.rs, as the RPC client
//     uses it (verified_header, proven_validators in crates/rpc/src/client.rs)
// No dependencies: the page is served as static files without a bundler.

// ---------------------------------------------------------------------------------------------
// BLAKE3 (hash mode only), written from the BLAKE3 specification.

const IV = new Uint32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);
const CHUNK_START = 1;
const CHUNK_END = 2;
const PARENT = 4;
const ROOT = 8;
const BLOCK_LEN = 64;
const CHUNK_LEN = 1024;

// Message word order of each of the 7 rounds: the spec's permutation applied round after round,
// precomputed so the compression function indexes the block directly.
const SCHEDULE = (() => {
  const permutation = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
  const rounds = [];
  let order = [...Array(16).keys()];
  for (let r = 0; r < 7; r++) {
    rounds.push(order);
    order = permutation.map((i) => order[i]);
  }
  return rounds;
})();

const rotr = (x, n) => (x >>> n) | (x << (32 - n));

/** The compression function: 16 output words (the first 8 are the new chaining value). */
function compress(cv, m, counter, blockLen, flags) {
  const v = new Uint32Array(16);
  v.set(cv, 0);
  v.set(IV.subarray(0, 4), 8);
  v[12] = counter >>> 0;
  v[13] = Math.floor(counter / 0x100000000) >>> 0;
  v[14] = blockLen;
  v[15] = flags;
  const g = (a, b, c, d, x, y) => {
    v[a] = v[a] + v[b] + x;
    v[d] = rotr(v[d] ^ v[a], 16);
    v[c] = v[c] + v[d];
    v[b] = rotr(v[b] ^ v[c], 12);
    v[a] = v[a] + v[b] + y;
    v[d] = rotr(v[d] ^ v[a], 8);
    v[c] = v[c] + v[d];
    v[b] = rotr(v[b] ^ v[c], 7);
  };
  for (const s of SCHEDULE) {
    g(0, 4, 8, 12, m[s[0]], m[s[1]]);
    g(1, 5, 9, 13, m[s[2]], m[s[3]]);
    g(2, 6, 10, 14, m[s[4]], m[s[5]]);
    g(3, 7, 11, 15, m[s[6]], m[s[7]]);
    g(0, 5, 10, 15, m[s[8]], m[s[9]]);
    g(1, 6, 11, 12, m[s[10]], m[s[11]]);
    g(2, 7, 8, 13, m[s[12]], m[s[13]]);
    g(3, 4, 9, 14, m[s[14]], m[s[15]]);
  }
  for (let i = 0; i < 8; i++) {
    v[i] ^= v[i + 8];
    v[i + 8] ^= cv[i];
  }
  return v;
}

/** Little-endian words of a 64-byte block (zero-padded). */
function blockWords(block) {
  const m = new Uint32Array(16);
  for (let i = 0; i < 16; i++) {
    m[i] = block[4 * i] | (block[4 * i + 1] << 8) | (block[4 * i + 2] << 16) | (block[4 * i + 3] << 24);
  }
  return m;
}

/** What is left to compress at the end: kept apart so the ROOT flag can be added last. */
class Output {
  constructor(cv, words, counter, blockLen, flags) {
    Object.assign(this, { cv, words, counter, blockLen, flags });
  }
  chainingValue() {
    return compress(this.cv, this.words, this.counter, this.blockLen, this.flags).slice(0, 8);
  }
  rootBytes() {
    const v = compress(this.cv, this.words, 0, this.blockLen, this.flags | ROOT);
    const out = new Uint8Array(32);
    for (let i = 0; i < 8; i++) {
      out[4 * i] = v[i];
      out[4 * i + 1] = v[i] >>> 8;
      out[4 * i + 2] = v[i] >>> 16;
      out[4 * i + 3] = v[i] >>> 24;
    }
    return out;
  }
}

const parentOutput = (left, right) => {
  const m = new Uint32Array(16);
  m.set(left, 0);
  m.set(right, 8);
  return new Output(IV, m, 0, BLOCK_LEN, PARENT);
};

class ChunkState {
  constructor(counter) {
    this.cv = IV.slice();
    this.counter = counter;
    this.block = new Uint8Array(BLOCK_LEN);
    this.blockLen = 0;
    this.blocksCompressed = 0;
  }
  len() {
    return BLOCK_LEN * this.blocksCompressed + this.blockLen;
  }
  startFlag() {
    return this.blocksCompressed === 0 ? CHUNK_START : 0;
  }
  update(input) {
    let i = 0;
    while (i < input.length) {
      // A full block is compressed only once more input arrives: the chunk's last block needs
      // CHUNK_END, and we cannot know it is last until then.
      if (this.blockLen === BLOCK_LEN) {
        const words = blockWords(this.block);
        this.cv = compress(this.cv, words, this.counter, BLOCK_LEN, this.startFlag()).slice(0, 8);
        this.blocksCompressed++;
        this.block.fill(0);
        this.blockLen = 0;
      }
      const take = Math.min(BLOCK_LEN - this.blockLen, input.length - i);
      this.block.set(input.subarray(i, i + take), this.blockLen);
      this.blockLen += take;
      i += take;
    }
  }
  output() {
    return new Output(
      this.cv, blockWords(this.block), this.counter, this.blockLen, this.startFlag() | CHUNK_END,
    );
  }
}

/** Incremental BLAKE3 (32-byte hash mode). `finalize` does not consume: more may be added. */
export class Blake3 {
  constructor() {
    this.chunk = new ChunkState(0);
    this.cvStack = []; // chaining values of completed subtrees, one per set bit of the count
  }

  /** Adds bytes; returns this for chaining. */
  update(bytes) {
    const input = asBytes(bytes, 'blake3 input');
    let i = 0;
    while (i < input.length) {
      if (this.chunk.len() === CHUNK_LEN) {
        const cv = this.chunk.output().chainingValue();
        const total = this.chunk.counter + 1;
        this.#pushChunk(cv, total);
        this.chunk = new ChunkState(total);
      }
      const take = Math.min(CHUNK_LEN - this.chunk.len(), input.length - i);
      this.chunk.update(input.subarray(i, i + take));
      i += take;
    }
    return this;
  }

  // Merges completed subtrees: after `total` chunks, each trailing zero bit of `total` means
  // two equal-size subtrees that now form a parent.
  #pushChunk(cv, total) {
    let merged = cv;
    while ((total & 1) === 0) {
      merged = parentOutput(this.cvStack.pop(), merged).chainingValue();
      total = Math.floor(total / 2);
    }
    this.cvStack.push(merged);
  }

  /** The 32-byte hash of everything added so far. */
  finalize() {
    let output = this.chunk.output();
    for (let i = this.cvStack.length - 1; i >= 0; i--) {
      output = parentOutput(this.cvStack[i], output.chainingValue());
    }
    return output.rootBytes();
  }
}

/** BLAKE3 of bytes (32 bytes). */
export function blake3(bytes) {
  return new Blake3().update(bytes).finalize();
}

// ---------------------------------------------------------------------------------------------
// Bytes and hex.

function asBytes(value, what) {
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  throw new Error(`${what} must be bytes (a Uint8Array)`);
}

const utf8 = new TextEncoder();

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Lowercase hex of bytes. */
export function hex(bytes) {
  let s = '';
  for (const b of asBytes(bytes, 'hex input')) s += b.toString(16).padStart(2, '0');
  return s;
}

/** Bytes of a hex string (either case); throws on odd length or a non-hex digit. */
export function unhex(str) {
  if (typeof str !== 'string') throw new Error('expected a hex string');
  if (str.length % 2 !== 0) throw new Error(`invalid hex: odd length ${str.length}`);
  if (!/^[0-9a-fA-F]*$/.test(str)) throw new Error('invalid hex: non-hexadecimal character');
  const out = new Uint8Array(str.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(str.substr(2 * i, 2), 16);
  return out;
}

/** 32 bytes of a 64-digit hex hash, with `what` in the error. */
function hash32(str, what) {
  let bytes;
  try {
    bytes = unhex(str);
  } catch (e) {
    throw new Error(`${what} is not hex: ${e.message}`);
  }
  if (bytes.length !== 32) throw new Error(`${what} must be 32 bytes, found ${bytes.length}`);
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Addresses: bech32 with HRP "hib" over 20 bytes of blake3(public key).

const ADDRESS_HRP = 'hib';
const ADDRESS_LEN = 20;
const BECH32_ALPHABET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
// The checksum residues: the Rust side encodes with Bech32 but its decoder (bech32 0.11
// `decode`) accepts Bech32m as well, so both are accepted here too.
const BECH32_CONST = 1;
const BECH32M_CONST = 0x2bc830a3;

function polymod(values) {
  const gen = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = (((chk & 0x1ffffff) << 5) ^ v) >>> 0;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk = (chk ^ gen[i]) >>> 0;
  }
  return chk;
}

function hrpExpand(hrp) {
  const codes = [...hrp].map((c) => c.charCodeAt(0));
  return [...codes.map((c) => c >> 5), 0, ...codes.map((c) => c & 31)];
}

/** The 20 bytes of a `hib1…` address; throws if it is not one. */
export function addressBytes(addr) {
  if (typeof addr !== 'string') throw new Error('an address must be a string');
  const bad = (why) => new Error(`invalid address ${JSON.stringify(addr)}: ${why}`);
  if (addr !== addr.toLowerCase() && addr !== addr.toUpperCase()) throw bad('mixed case');
  const sep = addr.lastIndexOf('1');
  if (sep < 1) throw bad('not a bech32 string (no separator)');
  const hrp = addr.slice(0, sep);
  const data = [];
  for (const c of addr.slice(sep + 1).toLowerCase()) {
    const v = BECH32_ALPHABET.indexOf(c);
    if (v < 0) throw bad(`not a bech32 string (invalid character ${JSON.stringify(c)})`);
    data.push(v);
  }
  if (data.length < 6) throw bad('not a bech32 string (too short for a checksum)');
  const residue = polymod([...hrpExpand(hrp.toLowerCase()), ...data]);
  if (residue !== BECH32_CONST && residue !== BECH32M_CONST) throw bad('bad checksum');
  // Compared as written, like the Rust decoder: an uppercase "HIB1…" is refused there too.
  if (hrp !== ADDRESS_HRP) throw bad(`prefix must be \`${ADDRESS_HRP}\`, found \`${hrp}\``);
  // 5-bit groups to bytes; leftover bits (fewer than 8) are dropped, as bech32 0.11 does.
  const bytes = [];
  let acc = 0;
  let bits = 0;
  for (const v of data.slice(0, -6)) {
    acc = ((acc << 5) | v) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((acc >> bits) & 0xff);
    }
  }
  if (bytes.length !== ADDRESS_LEN) throw bad(`expected ${ADDRESS_LEN} bytes, found ${bytes.length}`);
  return Uint8Array.from(bytes);
}

function encodeAddress(bytes) {
  const data = [];
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = ((acc << 8) | b) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      data.push((acc >> bits) & 31);
    }
  }
  if (bits > 0) data.push((acc << (5 - bits)) & 31);
  const mod = polymod([...hrpExpand(ADDRESS_HRP), ...data, 0, 0, 0, 0, 0, 0]) ^ BECH32_CONST;
  const checksum = [0, 1, 2, 3, 4, 5].map((i) => (mod >>> (5 * (5 - i))) & 31);
  return `${ADDRESS_HRP}1${[...data, ...checksum].map((v) => BECH32_ALPHABET[v]).join('')}`;
}

/** The `hib1…` address of an ed25519 public key (first 20 bytes of its blake3). */
export function addressFromPublicKey(pub) {
  const key = asBytes(pub, 'public key');
  if (key.length !== 32) throw new Error(`a public key is 32 bytes, found ${key.length}`);
  return encodeAddress(blake3(key).subarray(0, ADDRESS_LEN));
}

/** State key of an account: "acct/" ‖ address bytes. */
export function accountKey(addr) {
  return concat(utf8.encode('acct/'), addressBytes(addr));
}

/** State key of an account's delegations: "staking/delegations/" ‖ address bytes. */
export function delegationsKey(addr) {
  return concat(utf8.encode('staking/delegations/'), addressBytes(addr));
}

// ---------------------------------------------------------------------------------------------
// Borsh reading: little-endian integers, fixed arrays, and nothing left over.

class Reader {
  constructor(bytes, what) {
    this.bytes = bytes;
    this.at = 0;
    this.what = what;
  }
  take(n) {
    if (this.at + n > this.bytes.length) {
      throw new Error(`${this.what}: unexpected end of data at byte ${this.at} (needed ${n} more)`);
    }
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  u8() {
    return this.take(1)[0];
  }
  // Integers are read as bigint: u64 and u128 do not fit a JS number.
  uint(bytes) {
    let v = 0n;
    const b = this.take(bytes);
    for (let i = bytes - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    return v;
  }
  u32() {
    return Number(this.uint(4));
  }
  end() {
    if (this.at !== this.bytes.length) {
      throw new Error(`${this.what}: ${this.bytes.length - this.at} trailing bytes`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Jellyfish Merkle tree proofs (jmt 0.12, StateHasher = blake3).

const LEAF_DOMAIN = utf8.encode('JMT::LeafNode');
const INTERNAL_DOMAIN = utf8.encode('JMT::IntrnalNode'); // sic: jmt chops a vowel to fit 16 bytes
const PLACEHOLDER = utf8.encode('SPARSE_MERKLE_PLACEHOLDER_HASH__');
const MAX_SIBLINGS = 256;

const leafHash = (keyHash, valueHash) =>
  new Blake3().update(LEAF_DOMAIN).update(keyHash).update(valueHash).finalize();
const internalHash = (left, right) =>
  new Blake3().update(INTERNAL_DOMAIN).update(left).update(right).finalize();

/**
 * Decodes borsh `SparseMerkleProof`: `leaf: Option<SparseMerkleLeafNode>` (tag 0/1, then key
 * hash and value hash), `siblings: Vec<SparseMerkleNode>` (u32 count, then per node a tag
 * 0 Null | 1 Internal{left,right} | 2 Leaf{key_hash,value_hash}); the PhantomData is empty.
 * Siblings are returned as their hashes, since that is all verification uses.
 */
function decodeProof(bytes) {
  const r = new Reader(bytes, 'state proof');
  let leaf = null;
  const tag = r.u8();
  if (tag === 1) leaf = { keyHash: r.take(32), valueHash: r.take(32) };
  else if (tag !== 0) throw new Error(`state proof: invalid leaf option tag ${tag}`);
  const count = r.u32();
  if (count > MAX_SIBLINGS) {
    throw new Error(`state proof has more than ${MAX_SIBLINGS} (${count}) siblings`);
  }
  const siblings = [];
  for (let i = 0; i < count; i++) {
    const kind = r.u8();
    if (kind === 0) siblings.push(PLACEHOLDER);
    else if (kind === 1) siblings.push(internalHash(r.take(32), r.take(32)));
    else if (kind === 2) siblings.push(leafHash(r.take(32), r.take(32)));
    else throw new Error(`state proof: invalid sibling node tag ${kind}`);
  }
  r.end();
  return { leaf, siblings };
}

// Bit `i` of a 256-bit key hash, most significant bit of byte 0 first (jmt's iter_bits).
const bitAt = (hash, i) => (hash[i >> 3] >> (7 - (i & 7))) & 1;

function commonPrefixBits(a, b) {
  let n = 0;
  while (n < 256 && bitAt(a, n) === bitAt(b, n)) n++;
  return n;
}

/**
 * Throws unless `proofHex` proves that `key` has `value` (or, with null, no value) under the
 * state root `rootHex`: jmt's SparseMerkleProof::verify with KeyHash = blake3(key).
 */
export function verifyStateProof(rootHex, key, value, proofHex) {
  const root = hash32(rootHex, 'state root');
  const keyBytes = asBytes(key, 'state key');
  let proofBytes;
  try {
    proofBytes = unhex(proofHex);
  } catch (e) {
    throw new Error(`state proof is not hex: ${e.message}`);
  }
  const { leaf, siblings } = decodeProof(proofBytes);
  const keyHash = blake3(keyBytes);
  if (value != null) {
    const valueBytes = asBytes(value, 'state value');
    if (leaf === null) throw new Error('expected an inclusion proof, found a non-inclusion proof');
    if (!equalBytes(leaf.keyHash, keyHash)) {
      throw new Error(`keys do not match: key in proof ${hex(leaf.keyHash)}, expected ${hex(keyHash)}`);
    }
    const valueHash = blake3(valueBytes);
    if (!equalBytes(leaf.valueHash, valueHash)) {
      throw new Error(
        `value hashes do not match: in proof ${hex(leaf.valueHash)}, of the value ${hex(valueHash)}`,
      );
    }
  } else if (leaf !== null) {
    // Non-inclusion by another leaf: the key would have landed in that leaf's subtree, where
    // the leaf is the only key, so the key cannot be in the tree.
    if (equalBytes(leaf.keyHash, keyHash)) {
      throw new Error('expected a non-inclusion proof, but the key exists in the proof');
    }
    if (commonPrefixBits(keyHash, leaf.keyHash) < siblings.length) {
      throw new Error(
        'not a valid non-inclusion proof: the key would not end up in the subtree of the leaf in the proof',
      );
    }
  }
  // (No value, no leaf: the key's position is empty; the siblings prove the path from there.)
  let hash = leaf ? leafHash(leaf.keyHash, leaf.valueHash) : PLACEHOLDER;
  // Siblings run from the bottom up; the one at index i sits at depth siblings.length - 1 - i.
  siblings.forEach((sibling, i) => {
    hash = bitAt(keyHash, siblings.length - 1 - i)
      ? internalHash(sibling, hash)
      : internalHash(hash, sibling);
  });
  if (!equalBytes(hash, root)) {
    throw new Error(`root hashes do not match: the proof gives ${hex(hash)}, expected ${hex(root)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Accounts.

/** Decodes a borsh `bank::Account`: balance (Amount = u128) then nonce (u64). */
export function decodeAccount(bytes) {
  const r = new Reader(asBytes(bytes, 'account entry'), 'account entry');
  const balance = r.uint(16);
  const nonce = r.uint(8);
  r.end();
  return { balance, nonce };
}

/** Decodes the borsh `BTreeMap<Address, u128>` of delegations: validator hex → shares. */
function decodeDelegations(bytes) {
  const r = new Reader(bytes, 'delegations entry');
  const count = r.u32();
  if (count * (ADDRESS_LEN + 16) > bytes.length) {
    throw new Error(`delegations entry: ${count} entries cannot fit in ${bytes.length} bytes`);
  }
  const map = new Map();
  for (let i = 0; i < count; i++) {
    const validator = hex(r.take(ADDRESS_LEN));
    map.set(validator, r.uint(16)); // a repeated key overwrites, as borsh's BTreeMap does
  }
  r.end();
  return map;
}

/**
 * Whether a JSON integer equals a proven one. Amounts come as decimal strings, but u64 nonces
 * and u128 shares come as JSON numbers, which JSON.parse rounds beyond 2^53: those can only be
 * compared at double precision.
 */
function sameInteger(proven, shown) {
  if (typeof shown === 'bigint') return shown === proven;
  if (typeof shown === 'string') return /^[0-9]+$/.test(shown) && BigInt(shown) === proven;
  if (typeof shown === 'number' && Number.isInteger(shown) && shown >= 0) {
    return Number.isSafeInteger(shown) ? BigInt(shown) === proven : Number(proven) === shown;
  }
  return false;
}

function optionalHex(value, what) {
  if (value === null || value === undefined) return null;
  try {
    return unhex(value);
  } catch {
    throw new Error(`${what} is not hex`);
  }
}

/**
 * Checks a `state_getAccount` answer for `address` (verify_account in crates/rpc/src/client.rs):
 * both proofs against `answer.state_root`, which must equal the header's state root when given,
 * and the shown balance, nonce and delegations against the proven entries. Returns the proven
 * balance and nonce; throws Error(reason) on any mismatch.
 */
export function verifyAccountAnswer(address, answer, headerStateRootHex) {
  const addr = addressBytes(address);
  if (answer === null || typeof answer !== 'object') throw new Error('the answer is not an object');
  const root = hex(hash32(answer.state_root, 'the answer\'s state root'));
  if (headerStateRootHex != null && hex(hash32(headerStateRootHex, 'the header\'s state root')) !== root) {
    throw new Error(`the answer's state root ${root} is not the block header's ${headerStateRootHex}`);
  }
  const view = answer.account;
  if (view === null || typeof view !== 'object') throw new Error('the answer has no account');
  if (view.address !== undefined && !equalBytes(addressBytes(view.address), addr)) {
    throw new Error(`the answer is about ${view.address}, not ${address}`);
  }

  const accountEntry = optionalHex(answer.account_entry, 'account entry');
  try {
    verifyStateProof(root, accountKey(address), accountEntry, answer.account_proof);
  } catch (e) {
    throw new Error(`account proof: ${e.message}`);
  }
  // An account never touched has no entry: it is the default (zero balance, nonce 0).
  const account = accountEntry ? decodeAccount(accountEntry) : { balance: 0n, nonce: 0n };
  if (!sameInteger(account.balance, view.balance) || !sameInteger(account.nonce, view.nonce)) {
    throw new Error('balance or nonce differs from the proven entry');
  }

  const delegationsEntry = optionalHex(answer.delegations_entry, 'delegations entry');
  try {
    verifyStateProof(root, delegationsKey(address), delegationsEntry, answer.delegations_proof);
  } catch (e) {
    throw new Error(`delegations proof: ${e.message}`);
  }
  const proven = delegationsEntry ? decodeDelegations(delegationsEntry) : new Map();
  const shown = new Map();
  for (const d of Array.isArray(view.delegations) ? view.delegations : []) {
    shown.set(hex(addressBytes(d.validator)), d.shares);
  }
  const same = shown.size === proven.size
    && [...proven].every(([v, shares]) => shown.has(v) && sameInteger(shares, shown.get(v)));
  if (!same) throw new Error('delegations differ from the proven entry');
  return account;
}

// ---------------------------------------------------------------------------------------------
// Inference receipts.

const RECEIPT_SIGN_DOMAIN = utf8.encode('hibana/inference-receipt/v1\0');
const RECEIPT_BODY_LEN = 32 * 4 + 4 + 4 + 16 + 8;

/**
 * Decodes the hex of a borsh `InferenceReceipt`: ReceiptBody { provider: [u8;32], model_hash,
 * request_hash, response_hash: [u8;32], prompt_tokens, completion_tokens: u32, price: u128,
 * timestamp_ms: u64 } then signature: [u8;64].
 */
export function decodeReceipt(hexStr) {
  let bytes;
  try {
    bytes = unhex(String(hexStr).trim());
  } catch (e) {
    throw new Error(`receipt is malformed: ${e.message}`);
  }
  const r = new Reader(bytes, 'receipt is malformed');
  const receipt = {
    provider: r.take(32).slice(),
    modelHash: hex(r.take(32)),
    requestHash: hex(r.take(32)),
    responseHash: hex(r.take(32)),
    promptTokens: r.u32(),
    completionTokens: r.u32(),
    price: r.uint(16),
    timestampMs: Number(r.uint(8)),
    body: bytes.slice(0, RECEIPT_BODY_LEN),
    signature: r.take(64).slice(),
  };
  r.end();
  return receipt;
}

/**
 * Checks a receipt (hex) against what was exchanged: its ed25519 signature over the domain
 * separator and the body, that it covers `request` (the bytes exactly as sent) and the response
 * (`response` bytes, or `responseHash` for a stream, see StreamHasher), and, if `provider` (its
 * 32-byte key) is given, that it signed. Returns {ok, reason, receipt}; throws only on arguments
 * of the wrong type.
 */
export async function verifyReceipt(hexStr, { request, responseHash, response, provider } = {}) {
  let receipt = null;
  const fail = (reason) => ({ ok: false, reason, receipt });
  try {
    receipt = decodeReceipt(hexStr);
  } catch (e) {
    return fail(e.message);
  }
  if (provider != null && !equalBytes(asBytes(provider, 'provider key'), receipt.provider)) {
    return fail(`receipt is signed by ${hex(receipt.provider)}, expected provider ${hex(provider)}`);
  }
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) {
    return fail('this page is not a secure context: open it at 127.0.0.1 or over https to verify signatures');
  }
  let key;
  try {
    key = await subtle.importKey('raw', receipt.provider, { name: 'Ed25519' }, false, ['verify']);
  } catch (e) {
    // An old browser without Ed25519 in WebCrypto fails here too; say which it is.
    return fail(e?.name === 'NotSupportedError'
      ? 'this browser cannot verify Ed25519 signatures (WebCrypto Ed25519 is missing)'
      : 'receipt signature is invalid: the signer\'s public key is not a valid ed25519 key');
  }
  const signed = await subtle.verify('Ed25519', key, receipt.signature, concat(RECEIPT_SIGN_DOMAIN, receipt.body));
  if (!signed) {
    return fail('receipt signature is invalid: the signature does not match the signer\'s public key');
  }
  if (request == null) return fail('no request bytes given to check the receipt against');
  if (hex(blake3(asBytes(request, 'request'))) !== receipt.requestHash) {
    return fail('receipt does not cover the request that was sent');
  }
  let got;
  if (responseHash != null) got = asBytes(responseHash, 'response hash');
  else if (response != null) got = blake3(asBytes(response, 'response'));
  else return fail('no response (or streamed response hash) given to check the receipt against');
  if (hex(got) !== receipt.responseHash) {
    return fail('receipt does not cover the response that was received');
  }
  return {
    ok: true,
    reason: `signed by provider ${addressFromPublicKey(receipt.provider)}; covers this request and response`,
    receipt,
  };
}

const NEWLINE = utf8.encode('\n');

/**
 * Hash of a streamed answer as the provider computes it: each SSE `data:` payload (the text after
 * "data:" with leading whitespace removed, `[DONE]` excluded) as UTF-8, then "\n".
 */
export class StreamHasher {
  constructor() {
    this.hasher = new Blake3();
  }
  add(payload) {
    this.hasher.update(utf8.encode(payload)).update(NEWLINE);
  }
  /** The hash so far (more payloads may still be added). */
  finish() {
    return this.hasher.finalize();
  }
}


// ---------------------------------------------------------------------------------------------
// Light client: whether a block header is the one the validators decided (verify_header in
// crates/types/src/light.rs, used the way verified_header and proven_validators in
// crates/rpc/src/client.rs use it). A header is accepted when the commit signs its hash, when
// validators holding more than two thirds of the power of the set that decided it (staking's
// set in the state before the block, proven under the header's app_hash) signed a precommit for
// it, and, when a set from another height is trusted, when validators holding more than a third
// of that set's power are among the signers.

const VALIDATOR_SET_KEY = utf8.encode('staking/validator_set');
const CONSENSUS_SIGN_DOMAIN = utf8.encode('hibana/consensus/v1');
/** Most validators a set, and most signatures a commit, may have here. */
export const MAX_VALIDATORS = 1024;
const VALIDATOR_INFO_LEN = ADDRESS_LEN + 32 + 16; // address, public key, power (u128)
const U128_MAX = (1n << 128n) - 1n;
const U32_MAX = 0xffffffff;
/** How many times verifyHeight may split the way from a trusted height (as the Rust client). */
const MAX_BISECTIONS = 32;

/**
 * Why a header was not accepted; `kind` is LightError's variant: 'mismatch', 'bad-signature',
 * 'no-quorum', 'untrusted' or 'bad-set'; or 'malformed' for an answer that does not decode or
 * whose validator set proof fails, and 'unsupported' when signatures cannot be checked here.
 */
export class LightError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'LightError';
    this.kind = kind;
  }
}

const mismatch = (why) => new LightError('mismatch', `the commit is not for this header: ${why}`);
const badSignature = (why) => new LightError('bad-signature', `bad commit signature: ${why}`);
const badSet = (why) => new LightError('bad-set', `invalid validator set: ${why}`);
const malformed = (why) => new LightError('malformed', why);

/** Borsh writing: little-endian integers of a given width, strings as u32 length and UTF-8. */
class Writer {
  constructor() {
    this.parts = [];
  }
  bytes(b) {
    this.parts.push(b);
    return this;
  }
  uint(value, width) {
    let v = BigInt(value);
    const out = new Uint8Array(width);
    for (let i = 0; i < width; i++) {
      out[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    return this.bytes(out);
  }
  u8(v) {
    return this.uint(v, 1);
  }
  u32(v) {
    return this.uint(v, 4);
  }
  u64(v) {
    return this.uint(v, 8);
  }
  string(s) {
    const b = utf8.encode(s);
    return this.u32(b.length).bytes(b);
  }
  finish() {
    return concat(...this.parts);
  }
}

// Fields of a JSON answer, checked as serde would parse them into the Rust types.

/**
 * A u64 (or u32) JSON number. JSON.parse rounds integers beyond 2^53, so those cannot be
 * re-encoded exactly and are refused (no real height or time comes near).
 */
function jsonUint(value, what, max = Number.MAX_SAFE_INTEGER) {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) {
    throw malformed(`${what} must be an integer from 0 to ${max}, found ${JSON.stringify(value)}`);
  }
  return value;
}

function jsonString(value, what) {
  if (typeof value !== 'string') throw malformed(`${what} must be a string`);
  // A lone surrogate has no UTF-8 encoding (serde refuses it too).
  if (typeof value.isWellFormed === 'function' && !value.isWellFormed()) {
    throw malformed(`${what} is not valid Unicode`);
  }
  return value;
}

function jsonHash(value, what) {
  try {
    return hash32(value, what);
  } catch (e) {
    throw malformed(e.message);
  }
}

function jsonAddress(value, what) {
  try {
    return addressBytes(value);
  } catch (e) {
    throw malformed(`${what}: ${e.message}`);
  }
}

function jsonFixedHex(value, length, what) {
  let bytes;
  try {
    bytes = unhex(value);
  } catch (e) {
    throw malformed(`${what} is not hex: ${e.message}`);
  }
  if (bytes.length !== length) throw malformed(`${what} must be ${length} bytes, found ${bytes.length}`);
  return bytes;
}

/** An Amount (u128): a string of base units, or a JSON number within 2^53. */
function jsonPower(value, what) {
  let v = null;
  if (typeof value === 'string' && /^[0-9]{1,39}$/.test(value)) v = BigInt(value);
  else if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) v = BigInt(value);
  if (v === null || v > U128_MAX) {
    throw malformed(`${what} must be an amount of base units, found ${JSON.stringify(value)}`);
  }
  return v;
}

/** The borsh encoding of a BlockHeader given as JSON, field by field. */
function encodeHeader(header) {
  if (header === null || typeof header !== 'object') throw malformed('the answer has no header');
  return new Writer()
    .string(jsonString(header.chain_id, 'the header\'s chain id'))
    .u64(jsonUint(header.height, 'the header\'s height'))
    .bytes(jsonHash(header.parent_hash, 'the header\'s parent hash'))
    .u64(jsonUint(header.time_ms, 'the header\'s time'))
    .bytes(jsonAddress(header.proposer, 'the header\'s proposer'))
    .bytes(jsonHash(header.tx_root, 'the header\'s tx root'))
    .bytes(jsonHash(header.state_root, 'the header\'s state root'))
    .bytes(jsonHash(header.app_hash, 'the header\'s app hash'))
    .finish();
}

/** The hash of a block header given as JSON (BlockHeader::hash: blake3 of its borsh), as hex. */
export function blockHash(header) {
  return hex(blake3(encodeHeader(header)));
}

/**
 * What a validator signs to precommit `blockHashBytes` at `height` and `round`:
 * consensus_sign_bytes(chain id, "vote", ConsensusVote { kind: Precommit, height,
 * round: VoteRound::Some(round), value: VoteValue::Block(hash), validator }), i.e. the domain tag,
 * borsh (chain id, "vote"), then the vote's borsh (enum tags are one byte: Precommit = 1,
 * Some = 1, Block = 1).
 */
function precommitSignBytes(chainId, height, round, blockHashBytes, validator) {
  return new Writer()
    .bytes(CONSENSUS_SIGN_DOMAIN)
    .string(chainId)
    .string('vote')
    .u8(1) // VoteKind::Precommit
    .u64(height)
    .u8(1) // VoteRound::Some
    .u32(round)
    .u8(1) // VoteValue::Block
    .bytes(blockHashBytes)
    .bytes(validator)
    .finish();
}

const validatorJson = (v) => ({
  address: encodeAddress(v.address),
  public_key: hex(v.publicKey),
  power: v.power.toString(),
});

/** Decodes the borsh Vec<ValidatorInfo> of the validator set entry (at most MAX_VALIDATORS). */
function decodeValidatorSet(bytes) {
  const r = new Reader(bytes, 'validator set entry');
  const count = r.u32();
  if (count > MAX_VALIDATORS) {
    throw badSet(`the entry holds ${count} validators, more than ${MAX_VALIDATORS}`);
  }
  if (count * VALIDATOR_INFO_LEN !== bytes.length - 4) {
    const need = count * VALIDATOR_INFO_LEN;
    throw malformed(`validator set entry: ${count} validators take ${need} bytes, found ${bytes.length - 4}`);
  }
  const set = [];
  for (let i = 0; i < count; i++) {
    set.push({ address: r.take(ADDRESS_LEN).slice(), publicKey: r.take(32).slice(), power: r.uint(16) });
  }
  r.end();
  return set;
}

/** A validator set given as JSON ({address, public_key, power} each), at most MAX_VALIDATORS. */
function parseValidators(list, what) {
  if (!Array.isArray(list)) throw malformed(`${what} is not a list`);
  if (list.length > MAX_VALIDATORS) {
    throw badSet(`${what} has ${list.length} validators, more than ${MAX_VALIDATORS}`);
  }
  return list.map((v, i) => {
    if (v === null || typeof v !== 'object') throw malformed(`${what}: validator ${i} is not an object`);
    return {
      address: jsonAddress(v.address, `${what}: validator ${i}'s address`),
      publicKey: jsonFixedHex(v.public_key, 32, `${what}: validator ${i}'s public key`),
      power: jsonPower(v.power, `${what}: validator ${i}'s power`),
    };
  });
}

/** Vec<ValidatorInfo> equality: same validators, keys and powers, in the same order. */
function sameSet(a, b) {
  return a.length === b.length && a.every((v, i) => equalBytes(v.address, b[i].address)
    && equalBytes(v.publicKey, b[i].publicKey) && v.power === b[i].power);
}

function totalPower(set) {
  const total = set.reduce((t, v) => t + v.power, 0n);
  if (total > U128_MAX) throw badSet('voting power overflows');
  if (total === 0n) throw badSet('no voting power');
  return total;
}

/** Whether part/total > num/den, exactly. */
const moreThan = (part, total, num, den) => part * den > total * num;

/** The validator set in a commit answer, after checking its proof under the header's app_hash. */
function provenValidators(view, height) {
  if (view.validators_entry == null) {
    throw malformed(`the state before height ${height} records no validator set`);
  }
  const most = 4 + MAX_VALIDATORS * VALIDATOR_INFO_LEN;
  if (typeof view.validators_entry === 'string' && view.validators_entry.length > 2 * most) {
    throw badSet(`the entry is ${view.validators_entry.length / 2} bytes, more than ${MAX_VALIDATORS} validators take`);
  }
  let entry;
  try {
    entry = unhex(view.validators_entry);
  } catch (e) {
    throw malformed(`the validator set entry is not hex: ${e.message}`);
  }
  try {
    // app_hash is the state root after the block before: the state that chose this block's set.
    verifyStateProof(view.header.app_hash, VALIDATOR_SET_KEY, entry, view.validators_proof);
  } catch (e) {
    throw malformed(`validator set proof: ${e.message}`);
  }
  const set = decodeValidatorSet(entry);
  if (!sameSet(set, parseValidators(view.validators, 'the validators shown'))) {
    throw malformed('the validator set differs from the proven entry');
  }
  return set;
}

/** The fields of a Commit given as JSON; at most MAX_VALIDATORS signatures. */
function parseCommit(commit) {
  if (commit === null || typeof commit !== 'object') throw malformed('the answer has no commit');
  if (!Array.isArray(commit.signatures)) throw malformed('the commit\'s signatures are not a list');
  if (commit.signatures.length > MAX_VALIDATORS) {
    throw malformed(`the commit has ${commit.signatures.length} signatures, more than ${MAX_VALIDATORS}`);
  }
  return {
    height: jsonUint(commit.height, 'the commit\'s height'),
    round: jsonUint(commit.round, 'the commit\'s round', U32_MAX),
    blockHash: jsonHash(commit.block_hash, 'the commit\'s block hash'),
    signatures: commit.signatures.map((s, i) => {
      if (s === null || typeof s !== 'object') throw malformed(`commit signature ${i} is not an object`);
      return {
        name: String(s.validator),
        address: jsonAddress(s.validator, `commit signature ${i}'s validator`),
        signature: jsonFixedHex(s.signature, 64, `commit signature ${i}`),
      };
    }),
  };
}

/**
 * Checks ed25519 signatures with WebCrypto, each (key, signer, signature) once: the deciding and
 * the trusted set usually share their validators. Resolves to null, why the signature fails, or
 * an Error when signatures cannot be checked here at all.
 */
function signatureChecker(chainId, commit) {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) {
    throw new LightError('unsupported',
      'this page is not a secure context: open it at 127.0.0.1 or over https to check signatures');
  }
  const done = new Map();
  const check = async (publicKey, s) => {
    let key;
    try {
      key = await subtle.importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
    } catch (e) {
      if (e?.name === 'NotSupportedError') {
        throw new LightError('unsupported',
          'this browser cannot check Ed25519 signatures (WebCrypto Ed25519 is missing)');
      }
      return 'the signer\'s public key is not a valid ed25519 key';
    }
    const message = precommitSignBytes(chainId, commit.height, commit.round, commit.blockHash, s.address);
    let ok = false;
    try {
      ok = await subtle.verify('Ed25519', key, s.signature, message);
    } catch {
      ok = false;
    }
    return ok ? null : 'the signature does not match the signer\'s public key';
  };
  return (publicKey, s) => {
    const id = `${hex(publicKey)}/${hex(s.address)}/${hex(s.signature)}`;
    // Never rejects (an unawaited rejection would go unhandled): an error is the result.
    if (!done.has(id)) done.set(id, check(publicKey, s).catch((e) => e));
    return done.get(id);
  };
}

/**
 * Commit::signed_power: the power of the members of `set` whose valid precommit is in the
 * commit, each counted once. Signatures of others count for nothing; a member signing twice, or
 * a member's signature that fails, is an error.
 */
async function signedPower(commit, set, check) {
  const members = new Map();
  for (const v of set) {
    const id = hex(v.address);
    if (!members.has(id)) members.set(id, v); // the first of a repeated address, as iter().find
  }
  const seen = new Set();
  const counted = [];
  for (const s of commit.signatures) {
    const id = hex(s.address);
    const v = members.get(id);
    if (!v) continue;
    if (seen.has(id)) throw badSignature(`${s.name} signed twice`);
    seen.add(id);
    counted.push({ s, v, result: check(v.publicKey, s) });
  }
  let power = 0n;
  for (const { s, v, result } of counted) {
    const why = await result;
    if (why instanceof Error) throw why;
    if (why) throw badSignature(`${s.name}: ${why}`);
    power += v.power;
    if (power > U128_MAX) throw badSet('voting power overflows');
  }
  return power;
}

/** A trusted set {chainId, height, validators} as verifyCommit returns it (or as saved). */
function parseTrusted(trusted) {
  if (trusted === null || typeof trusted !== 'object') throw malformed('the trusted set is not an object');
  return {
    chainId: jsonString(trusted.chainId, 'the trusted set\'s chain id'),
    height: jsonUint(trusted.height, 'the trusted set\'s height'),
    validators: parseValidators(trusted.validators, 'the trusted set'),
  };
}

/**
 * Checks a `chain_getCommit` answer (`commitView`: header, commit, validators, validators_entry,
 * validators_proof) as the Rust light client does: the validator set entry is proven under the
 * header's app_hash and decoded (the shown `validators` must equal it); the header is of
 * `chainId`, the commit is for its height and signs its hash; the signers hold more than two
 * thirds of that set's power; and, if `trusted` ({chainId, height, validators}, as returned
 * here) is given and its set is another, more than a third of the trusted set's power signed.
 *
 * Resolves to the set to trust from now on, {chainId, height, validators} (validators as
 * {address, public_key, power} JSON, power in base units), with `signedPower` and `totalPower`
 * (decimal strings) of the deciding set. Rejects with a LightError(reason) otherwise.
 */
export async function verifyCommit(chainId, commitView, trusted) {
  if (typeof chainId !== 'string' || chainId === '') throw new TypeError('verifyCommit needs a chain id');
  const trust = trusted == null ? null : parseTrusted(trusted);
  if (trust && trust.chainId !== chainId) {
    throw new LightError('mismatch',
      `the trusted set is of chain ${JSON.stringify(trust.chainId)}, not ${JSON.stringify(chainId)}`);
  }
  if (commitView === null || typeof commitView !== 'object') throw malformed('the node has no commit for this height');
  const header = commitView.header;
  const headerBytes = encodeHeader(header); // also checks every header field
  const commit = parseCommit(commitView.commit);
  const deciding = provenValidators(commitView, header.height);

  if (header.chain_id !== chainId) {
    throw mismatch(`the header is of chain ${JSON.stringify(header.chain_id)}, not ${JSON.stringify(chainId)}`);
  }
  if (commit.height !== header.height) {
    throw mismatch(`commit height ${commit.height} for header height ${header.height}`);
  }
  const hash = blake3(headerBytes);
  if (!equalBytes(commit.blockHash, hash)) {
    throw mismatch(`the commit signs block ${hex(commit.blockHash)}, the header hashes to ${hex(hash)}`);
  }
  const check = signatureChecker(chainId, commit);
  const total = totalPower(deciding);
  const signed = await signedPower(commit, deciding, check);
  if (!moreThan(signed, total, 2n, 3n)) {
    throw new LightError('no-quorum',
      `validators with ${signed} of ${total} voting power signed; more than two thirds are needed`);
  }
  if (trust && !sameSet(trust.validators, deciding)) {
    const trustedTotal = totalPower(trust.validators);
    const trustedSigned = await signedPower(commit, trust.validators, check);
    if (!moreThan(trustedSigned, trustedTotal, 1n, 3n)) {
      throw new LightError('untrusted', `validators this page trusts (height ${trust.height}) hold `
        + `${trustedSigned} of ${trustedTotal} power among the signers; more than a third is needed`);
    }
  }
  return {
    chainId,
    height: header.height,
    validators: deciding.map(validatorJson),
    signedPower: signed.toString(),
    totalPower: total.toString(),
  };
}

/**
 * The header at `height`, checked as the Rust client's verified_header does: `fetchCommit(h)`
 * gives the `chain_getCommit` answer for height h (or null); when too little of `trusted` signed
 * and the way from its height is long, the way is split in two (at most 32 times), each half
 * checked in turn, as CometBFT's light client does. Resolves to {view, trusted}: the answer
 * whose header is now checked, and the set to trust from now on (see verifyCommit).
 */
export async function verifyHeight(chainId, height, trusted, fetchCommit, depth = MAX_BISECTIONS) {
  const view = await fetchCommit(height);
  if (view == null) throw malformed(`the node has no commit for height ${height}`);
  try {
    return { view, trusted: await verifyCommit(chainId, view, trusted) };
  } catch (e) {
    if (!(e instanceof LightError)) throw e;
    const from = trusted?.height;
    if (e.kind !== 'untrusted' || depth <= 0 || !(from < height && height - from > 1)) {
      throw new LightError(e.kind, `the header at height ${height}: ${e.message}`);
    }
    const middle = from + Math.floor((height - from) / 2);
    const between = await verifyHeight(chainId, middle, trusted, fetchCommit, depth - 1);
    return verifyHeight(chainId, height, between.trusted, fetchCommit, depth - 1);
  }
}
