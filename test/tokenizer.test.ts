// Tests for the tokenizers (electron/core/tokenizer): SentencePiece against the golden ids of the official
// library (tok512 and Llama 2), decoding and streaming, llama2.c tok.bin, GGUF 'llama' and 'gpt2'
// vocabularies, HF tokenizer.json, the loader, and malformed inputs (TokenizerError, never a crash/hang).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { shared, tempDir } from './helpers/paths.js';
import { bytesToUnicode, llamaStyleTokenizerJson } from './helpers/tokenizer-json.js';
import {
  Llama2cTokenizer,
  SentencePieceTokenizer,
  TokenizerError,
  loadTokenizerFor,
  parseLlama2cTokenizer,
  parseModelProto,
  tokenizerFromGgufMetadata,
  type ModelProto,
  type Tokenizer,
} from '../electron/core/tokenizer/index.js';

interface GoldenCase {
  text: string;
  ids: number[];
  pieces: string[];
}
const golden = JSON.parse(fs.readFileSync(shared('fixtures', 'golden', 'tokenizers.json'), 'utf8')) as Record<
  'tok512' | 'llama2',
  { model: string; cases: GoldenCase[] }
>;
const stories = JSON.parse(fs.readFileSync(shared('fixtures', 'golden', 'stories260K.json'), 'utf8')) as {
  greedy: { ids: number[]; text: string };
};
const TOK512_MODEL = shared('models', 'stories260K', 'tok512.model');
const TOK512_BIN = shared('models', 'stories260K', 'tok512.bin');
const LLAMA2_MODEL = shared('models', 'llama2-tokenizer', 'tokenizer.model');

const tok512 = SentencePieceTokenizer.fromBuffer(fs.readFileSync(TOK512_MODEL));
const llama2 = SentencePieceTokenizer.fromBuffer(fs.readFileSync(LLAMA2_MODEL));
const tok512bin = Llama2cTokenizer.fromBuffer(fs.readFileSync(TOK512_BIN));

/** Golden texts SentencePiece with remove_extra_whitespaces changes (leading / repeated spaces). */
const hasSpaceRuns = (s: string): boolean => s !== s.replace(/^ +| +$/g, '').replace(/ {2,}/g, ' ');

/** Pushes ids one at a time through a streaming decoder; returns the chunks (flush last). */
function stream(tok: Tokenizer, ids: readonly number[]): string[] {
  const d = tok.createDecoder();
  const out = ids.map((id) => d.push(id));
  out.push(d.flush());
  return out;
}

function expectCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof TokenizerError && err.code === code);
}

/** GGUF-style metadata for a 'llama' vocabulary, taken from a parsed tokenizer.model. */
function ggufMetaFrom(model: ModelProto): Record<string, unknown> {
  return {
    'tokenizer.ggml.model': 'llama',
    'tokenizer.ggml.tokens': model.pieces.map((p) => p.piece),
    'tokenizer.ggml.scores': Float32Array.from(model.pieces.map((p) => p.score)),
    'tokenizer.ggml.token_type': model.pieces.map((p) => p.type),
    'tokenizer.ggml.bos_token_id': 1n,
    'tokenizer.ggml.eos_token_id': 2,
    'tokenizer.ggml.unknown_token_id': 0,
    'tokenizer.ggml.add_bos_token': true,
  };
}

for (const name of ['tok512', 'llama2'] as const) {
  test(`sentencepiece ${name}: every golden case gives the official ids and pieces`, () => {
    const tok = name === 'tok512' ? tok512 : llama2;
    assert.equal(tok.kind, 'sentencepiece');
    for (const c of golden[name].cases) {
      const ids = tok.encode(c.text);
      assert.deepEqual(ids, c.ids, `ids of ${JSON.stringify(c.text)}`);
      assert.deepEqual(ids.map((id) => tok.idToPiece(id)), c.pieces, `pieces of ${JSON.stringify(c.text)}`);
    }
  });

  test(`sentencepiece ${name}: decode(encode(x)) === x where SentencePiece round-trips`, () => {
    const tok = name === 'tok512' ? tok512 : llama2;
    for (const c of golden[name].cases) {
      // tok512 normalizes whitespace (remove_extra_whitespaces); Llama 2 does not
      const expected = name === 'tok512' && hasSpaceRuns(c.text) ? c.text.replace(/^ +| +$/g, '').replace(/ {2,}/g, ' ') : c.text;
      assert.equal(tok.decode(tok.encode(c.text)), expected, JSON.stringify(c.text));
      assert.equal(tok.decode(tok.encode(c.text, { bos: true, eos: true })), expected);
    }
  });
}

test('sentencepiece: metadata, BOS/EOS options and ranges', () => {
  assert.equal(tok512.vocabSize, 512);
  assert.equal(llama2.vocabSize, 32000);
  for (const tok of [tok512, llama2]) {
    assert.equal(tok.bosId, 1);
    assert.equal(tok.eosId, 2);
    assert.equal(tok.addBos, true);
    assert.deepEqual(tok.encode('Once', { bos: true, eos: true }).slice(0, 1), [1]);
    assert.equal(tok.encode('Once', { eos: true }).at(-1), 2);
    expectCode(() => tok.idToPiece(tok.vocabSize), 'E_RANGE');
    expectCode(() => tok.idToPiece(-1), 'E_RANGE');
  }
  // <unk> decodes to the trainer spec's unk_surface: the default ' ⁇ ' for Llama 2; llama2.c's training
  // script passed r" \342\201\207 " (a raw string), so tok512 stores those backslashes literally
  assert.equal(llama2.decode([0]), ' \u2047 ');
  assert.equal(tok512.decode([0]), ' \\342\\201\\207 ');
  assert.equal(tok512.decode([99999]), '\uFFFD');
});

test('golden greedy ids (after BOS) decode to the golden text with tok512, in one go and streamed', () => {
  const { ids, text } = stories.greedy;
  assert.equal(ids[0], 1);
  for (const tok of [tok512, tok512bin]) {
    assert.equal(tok.decode(ids), text, tok.kind);
    assert.equal(stream(tok, ids).join(''), text, tok.kind);
  }
});

test('streaming decoder holds back a character split over byte tokens', () => {
  for (const tok of [tok512, llama2]) {
    const ids = tok.encode('emoji 🙂 ok');
    const chunks = stream(tok, ids);
    assert.equal(chunks.join(''), 'emoji 🙂 ok');
    const first = ids.indexOf(243); // <0xF0>
    assert.ok(first > 0);
    assert.deepEqual(chunks.slice(first, first + 3), ['', '', '']);
    assert.equal(chunks[first + 3], '🙂');
    assert.ok(chunks.every((c) => !c.includes('\uFFFD')));
  }
  // an unfinished sequence comes out of flush() as U+FFFD; an invalid one is one U+FFFD per byte
  const d = tok512.createDecoder();
  assert.equal(d.push(243), '');
  assert.equal(d.push(162), '');
  assert.equal(d.flush(), '\uFFFD\uFFFD');
  assert.equal(tok512.decode([243, 162, 412]), '\uFFFD\uFFFDa');
  // skipLeadingSpace: false keeps the dummy-prefix space (continuing text already shown)
  const d2 = tok512.createDecoder({ skipLeadingSpace: false });
  assert.equal(tok512.encode('Once upon').map((id) => d2.push(id)).join('') + d2.flush(), ' Once upon');
});

test('llama2.c tok512.bin: same ids as tok512.model except where SentencePiece collapses whitespace', () => {
  const vocab = parseLlama2cTokenizer(fs.readFileSync(TOK512_BIN));
  assert.equal(vocab.pieces.length, 512);
  assert.equal(vocab.maxTokenLength, 7);
  assert.equal(tok512bin.kind, 'llama2c');
  assert.equal(tok512bin.vocabSize, 512);
  const SPACE = 410; // " "
  for (const c of golden.tok512.cases) {
    const ids = tok512bin.encode(c.text);
    if (!hasSpaceRuns(c.text)) {
      assert.deepEqual(ids, c.ids, JSON.stringify(c.text));
      assert.deepEqual(ids.map((id) => tok512bin.idToPiece(id)), c.pieces.map((p) => p.replaceAll('\u2581', ' ')));
    }
    // llama2.c never collapses whitespace, so it round-trips every case
    assert.equal(tok512bin.decode(ids), c.text, JSON.stringify(c.text));
  }
  // by design: each extra space stays a " " token
  const byText = new Map(golden.tok512.cases.map((c) => [c.text, c.ids]));
  assert.deepEqual(tok512bin.encode('  two leading spaces'), [SPACE, SPACE, ...byText.get('  two leading spaces')!]);
  const tabs = byText.get('tabs\tand  doubles')!;
  assert.deepEqual(tok512bin.encode('tabs\tand  doubles'), [...tabs.slice(0, 7), SPACE, ...tabs.slice(7)]);
  assert.deepEqual(tok512bin.encode(' '), [SPACE, SPACE]);
});

test("GGUF 'llama' metadata from tok512.model: same ids as the .model without whitespace runs, as llama2.c with", () => {
  const tok = tokenizerFromGgufMetadata(ggufMetaFrom(parseModelProto(fs.readFileSync(TOK512_MODEL))));
  assert.equal(tok.kind, 'gguf-llama');
  assert.equal(tok.vocabSize, 512);
  assert.equal(tok.bosId, 1);
  assert.equal(tok.addBos, true);
  for (const c of golden.tok512.cases) {
    const ids = tok.encode(c.text);
    if (!hasSpaceRuns(c.text)) assert.deepEqual(ids, c.ids, JSON.stringify(c.text));
    // llama.cpp's SPM and llama2.c agree: space prefix, no whitespace collapsing
    assert.deepEqual(ids, tok512bin.encode(c.text), JSON.stringify(c.text));
    assert.equal(tok.decode(ids), c.text);
  }
  assert.equal(tok.decode(stories.greedy.ids), stories.greedy.text);
});

test("GGUF 'llama' metadata from Llama 2's tokenizer.model reproduces every Llama 2 golden case", () => {
  const tok = tokenizerFromGgufMetadata(ggufMetaFrom(parseModelProto(fs.readFileSync(LLAMA2_MODEL))));
  for (const c of golden.llama2.cases) {
    assert.deepEqual(tok.encode(c.text), c.ids, JSON.stringify(c.text));
    assert.equal(tok.decode(c.ids), c.text);
  }
});

test("GGUF 'llama' metadata read from stories260K.gguf", async (t) => {
  // the GGUF reader belongs to the formats layer; skip if it is not there
  const modPath = '../electron/core/formats/gguf-write.js';
  const mod = (await import(modPath).catch(() => null)) as { readGgufHeader?: (b: Uint8Array) => { kv: Map<string, unknown> } } | null;
  if (mod?.readGgufHeader === undefined) return t.skip('formats/gguf-write.js readGgufHeader not available');
  const meta = Object.fromEntries(mod.readGgufHeader(fs.readFileSync(shared('models', 'stories260K', 'stories260K.gguf'))).kv);
  const tok = await loadTokenizerFor(shared('models', 'stories260K', 'stories260K.gguf'), { ggufMetadata: meta, vocabSize: 512 });
  assert.equal(tok.kind, 'gguf-llama');
  assert.deepEqual(tok.encode('Once upon a time', { bos: true }), stories.greedy.ids.slice(0, 5));
  assert.equal(tok.decode(stories.greedy.ids), stories.greedy.text);
});

// ---- byte-level BPE (GGUF 'gpt2' and tokenizer.json) --------------------------------------------------

/** A tiny byte-level vocabulary: 256 byte tokens, a few merges, BOS/EOS control tokens. */
function tinyByteLevel(): { tokens: string[]; merges: string[]; types: number[] } {
  const tokens = bytesToUnicode();
  const merges = ['h e', 'Ġ t', 'Ġt he', 't he', '1 2', '3 4', '12 34'];
  for (const m of merges) tokens.push(m.replace(' ', ''));
  tokens.push('<|begin_of_text|>', '<|end_of_text|>');
  const types = tokens.map((_, i) => (i >= tokens.length - 2 ? 3 : 1));
  return { tokens, merges, types };
}

function gpt2Meta(pre?: string): Record<string, unknown> {
  const { tokens, merges, types } = tinyByteLevel();
  const meta: Record<string, unknown> = {
    'tokenizer.ggml.model': 'gpt2',
    'tokenizer.ggml.tokens': tokens,
    'tokenizer.ggml.merges': merges,
    'tokenizer.ggml.token_type': types,
    'tokenizer.ggml.bos_token_id': tokens.length - 2,
    'tokenizer.ggml.eos_token_id': BigInt(tokens.length - 1),
  };
  if (pre !== undefined) meta['tokenizer.ggml.pre'] = pre;
  return meta;
}

test("GGUF 'gpt2' byte-level BPE through @huggingface/tokenizers", () => {
  const tok = tokenizerFromGgufMetadata(gpt2Meta());
  const { tokens } = tinyByteLevel();
  assert.equal(tok.kind, 'gguf-gpt2');
  assert.equal(tok.vocabSize, tokens.length);
  assert.equal(tok.addBos, false);
  const ids = tok.encode('the the');
  assert.deepEqual(ids.map((id) => tok.idToPiece(id)), ['the', 'Ġthe']);
  assert.deepEqual(ids, [tokens.indexOf('the'), tokens.indexOf('Ġthe')]);
  assert.equal(tok.decode(ids), 'the the');
  const withSpecials = tok.encode('the the', { bos: true, eos: true });
  assert.deepEqual(withSpecials, [tok.bosId, ...ids, tok.eosId]);
  assert.equal(tok.decode(withSpecials), 'the the');
  // GPT-2 regex: " 123456" is one pre-token, so "12 34" can merge across the digits
  assert.deepEqual(tok.encode('x 123456').map((id) => tok.idToPiece(id)), ['x', 'Ġ', '1234', '5', '6']);
  // bytes of an emoji stream out whole
  const e = tok.encode('a 🙂!');
  assert.equal(tok.decode(e), 'a 🙂!');
  const chunks = stream(tok, e);
  assert.equal(chunks.join(''), 'a 🙂!');
  assert.ok(chunks.every((c) => !c.includes('\uFFFD')));
  assert.equal(tok.decode([]), '');
  assert.deepEqual(tok.encode(''), []);
});

test("GGUF 'gpt2' with pre 'llama-bpe' uses the Llama 3 regex (digits in groups of 3) and adds BOS", () => {
  const tok = tokenizerFromGgufMetadata(gpt2Meta('llama-bpe'));
  assert.equal(tok.addBos, true);
  assert.deepEqual(tok.encode('x 123456').map((id) => tok.idToPiece(id)), ['x', 'Ġ', '12', '3', '4', '5', '6']);
  assert.equal(tok.decode(tok.encode("I'M here 123456\n\n ok")), "I'M here 123456\n\n ok");
});

test('tokenizer.json (+ tokenizer_config.json) folder through loadTokenizerFor', async () => {
  const { tokens, merges } = tinyByteLevel();
  const dir = tempDir();
  const n = tokens.length;
  const json = {
    version: '1.0',
    added_tokens: [
      { id: n - 2, content: '<|begin_of_text|>', special: true, normalized: false, lstrip: false, rstrip: false, single_word: false },
      { id: n - 1, content: '<|end_of_text|>', special: true, normalized: false, lstrip: false, rstrip: false, single_word: false },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, fuse_unk: false, byte_fallback: false, vocab: Object.fromEntries(tokens.map((t, i) => [t, i])), merges },
  };
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
  fs.writeFileSync(path.join(dir, 'config.json'), '{}');
  fs.writeFileSync(
    path.join(dir, 'tokenizer_config.json'),
    JSON.stringify({ bos_token: '<|begin_of_text|>', eos_token: { content: '<|end_of_text|>' }, add_bos_token: true }),
  );
  const tok = await loadTokenizerFor(dir);
  assert.equal(tok.kind, 'hf-json');
  assert.equal(tok.vocabSize, n);
  assert.equal(tok.bosId, n - 2);
  assert.equal(tok.eosId, n - 1);
  assert.equal(tok.addBos, true);
  const ids = tok.encode('the the', { bos: true });
  assert.deepEqual(ids, [n - 2, tokens.indexOf('the'), tokens.indexOf('Ġthe')]);
  assert.equal(tok.decode(ids), 'the the');
  assert.equal(stream(tok, tok.encode('ok 🙂 café')).join(''), 'ok 🙂 café');
  // the model file itself also finds it
  assert.equal((await loadTokenizerFor(path.join(dir, 'config.json'))).kind, 'hf-json');
  // a broken tokenizer.json is a TokenizerError
  const bad = tempDir();
  fs.writeFileSync(path.join(bad, 'tokenizer.json'), '{"model": 3');
  await assert.rejects(loadTokenizerFor(path.join(bad, 'tokenizer.json')), (e: unknown) => e instanceof TokenizerError && e.code === 'E_FORMAT');
});

test('Llama-2-style tokenizer.json made from tok512 agrees with the GGUF llama path and decodes the golden story', async () => {
  const model = parseModelProto(fs.readFileSync(TOK512_MODEL));
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(llamaStyleTokenizerJson(model)));
  const tok = await loadTokenizerFor(dir); // no tokenizer_config.json: BOS from the post-processor template
  assert.equal(tok.kind, 'hf-json');
  assert.equal(tok.bosId, 1);
  assert.equal(tok.eosId, 2);
  assert.equal(tok.addBos, true);
  const gguf = tokenizerFromGgufMetadata(ggufMetaFrom(model));
  for (const c of golden.tok512.cases) {
    const ids = tok.encode(c.text);
    assert.deepEqual(ids, gguf.encode(c.text), JSON.stringify(c.text));
    assert.equal(tok.decode(ids), c.text);
  }
  assert.equal(tok.decode(stories.greedy.ids), stories.greedy.text);
  assert.equal(stream(tok, stories.greedy.ids).join(''), stories.greedy.text);
  assert.equal(stream(tok, tok.encode('emoji 🙂 ok')).join(''), 'emoji 🙂 ok');
});

test('Llama 2: decode(encode(x)) === x on random mixed text (spaces, tabs, CJK, emoji, combining marks)', () => {
  const alphabet = ['a', 'e', 't', 'h', ' ', ' ', '  ', '\n', '\t', 'é', 'ï', '数', '🙂', '!', "'", '1', '0', 'ing', 'the', '\u200b', 'ß', '\u0301', '\r', 'Q'];
  let seed = 99;
  const rand = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let trial = 0; trial < 500; trial++) {
    let s = '';
    for (let i = Math.floor(rand() * 25); i > 0; i--) s += alphabet[Math.floor(rand() * alphabet.length)];
    const ids = llama2.encode(s);
    assert.equal(llama2.decode(ids), s, JSON.stringify(s));
    assert.equal(stream(llama2, ids).join(''), s, JSON.stringify(s));
  }
});

// ---- Unigram -------------------------------------------------------------------------------------------

test('sentencepiece Unigram: Viterbi over piece scores, runs of unknown characters become one <unk>', () => {
  const base = parseModelProto(fs.readFileSync(TOK512_MODEL));
  const piece = (p: string, score: number, type = 1): { piece: string; score: number; type: number } => ({ piece: p, score, type });
  const model: ModelProto = {
    pieces: [
      piece('<unk>', 0, 2), piece('<s>', 0, 3), piece('</s>', 0, 3),
      piece('\u2581', -2), piece('a', -3), piece('b', -3), piece('\u2581a', -2.5), piece('ab', -1), piece('\u2581ab', -4),
    ],
    trainerSpec: { ...base.trainerSpec, modelType: 1, byteFallback: false },
    normalizerSpec: base.normalizerSpec,
  };
  const tok = new SentencePieceTokenizer(model);
  // ▁ab: [▁ab] = -4, [▁a b] = -5.5, [▁ ab] = -3 (best), [▁ a b] = -8
  assert.deepEqual(tok.encode('ab').map((id) => tok.idToPiece(id)), ['\u2581', 'ab']);
  assert.deepEqual(tok.encode('a  ab'), [6, 3, 7]);
  assert.deepEqual(tok.encode('abcd b'), [3, 7, 0, 3, 5]);
  assert.equal(tok.decode(tok.encode('ab ab')), 'ab ab');
});

// ---- loader ----------------------------------------------------------------------------------------------

test('loadTokenizerFor: HF folder with tokenizer.model, llama2.c checkpoint, tokenizer files, errors', async () => {
  const hf = await loadTokenizerFor(shared('models', 'stories260K-hf'));
  assert.equal(hf.kind, 'sentencepiece');
  assert.equal(hf.addBos, true);
  assert.deepEqual(hf.encode('Once upon a time'), golden.tok512.cases[0].ids);

  const l2c = await loadTokenizerFor(shared('models', 'stories260K', 'stories260K.bin'), { vocabSize: 512 });
  assert.equal(l2c.vocabSize, 512);
  assert.deepEqual(l2c.encode('Hello world'), golden.tok512.cases[1].ids);
  assert.equal((await loadTokenizerFor(TOK512_BIN)).kind, 'llama2c');
  assert.equal((await loadTokenizerFor(TOK512_MODEL)).kind, 'sentencepiece');

  const meta = ggufMetaFrom(parseModelProto(fs.readFileSync(TOK512_MODEL)));
  assert.equal((await loadTokenizerFor('/nonexistent/model.gguf', { ggufMetadata: meta })).kind, 'gguf-llama');

  const empty = tempDir();
  fs.writeFileSync(path.join(empty, 'model.bin'), new Uint8Array(16));
  await assert.rejects(loadTokenizerFor(path.join(empty, 'model.bin')), (e: unknown) => {
    assert.ok(e instanceof TokenizerError && e.code === 'E_NO_TOKENIZER');
    assert.match(e.message, /tokenizer\.json/);
    assert.match(e.message, /tok\*\.bin/);
    return true;
  });
  await assert.rejects(loadTokenizerFor(shared('models', 'stories260K', 'stories260K.bin'), { vocabSize: 32000 }), (e: unknown) => {
    assert.ok(e instanceof TokenizerError && e.code === 'E_NO_TOKENIZER');
    assert.match(e.message, /vocab size 512/);
    return true;
  });
  await assert.rejects(loadTokenizerFor(path.join(empty, 'missing')), (e: unknown) => e instanceof TokenizerError && e.code === 'E_NO_TOKENIZER');
  await assert.rejects(loadTokenizerFor(path.join(empty, 'x.gguf'), { ggufMetadata: { 'tokenizer.ggml.model': 'bert', 'tokenizer.ggml.tokens': ['a'] } }),
    (e: unknown) => e instanceof TokenizerError && e.code === 'E_UNSUPPORTED');
});

// ---- malformed input ---------------------------------------------------------------------------------------

test('malformed protobuf is a TokenizerError E_FORMAT, never a crash or a hang', () => {
  const good = fs.readFileSync(TOK512_MODEL);
  const cases: Array<[string, Uint8Array]> = [
    ['empty', new Uint8Array(0)],
    ['truncated in half', good.subarray(0, good.length >> 1)],
    ['truncated by one byte', good.subarray(0, good.length - 1)],
    ['11-byte varint', new Uint8Array([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])],
    ['length past the end', new Uint8Array([0x0a, 0xff, 0xff, 0x03, 0x01])],
    ['group wire type', new Uint8Array([0x0b, 0x0c])],
    ['field number 0', new Uint8Array([0x02, 0x00])],
    ['piece without text', new Uint8Array([0x0a, 0x05, 0x15, 0x00, 0x00, 0x80, 0x3f])],
    ['piece string of wrong wire type', new Uint8Array([0x0a, 0x02, 0x08, 0x01])],
    ['invalid UTF-8 piece', new Uint8Array([0x0a, 0x04, 0x0a, 0x02, 0xc3, 0x28])],
    ['text file', new TextEncoder().encode('this is not a model\n')],
  ];
  for (const [what, bytes] of cases) {
    expectCode(() => parseModelProto(bytes), 'E_FORMAT');
    expectCode(() => SentencePieceTokenizer.fromBuffer(bytes), 'E_FORMAT');
    void what;
  }
  // random corruption: parse and build either succeed or throw TokenizerError
  let seed = 12345;
  const rand = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let trial = 0; trial < 300; trial++) {
    const bytes = Uint8Array.from(good);
    for (let k = 0; k < 1 + trial % 5; k++) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
    try {
      SentencePieceTokenizer.fromBuffer(bytes).encode('Once upon a time, 🙂');
    } catch (err) {
      assert.ok(err instanceof TokenizerError, `trial ${trial}: ${String(err)}`);
    }
  }
});

test('truncated or corrupt llama2.c tokenizer is a TokenizerError E_FORMAT', async () => {
  const good = fs.readFileSync(TOK512_BIN);
  for (const cut of [0, 2, 5, 10, 1000, good.length - 1]) {
    expectCode(() => Llama2cTokenizer.fromBuffer(good.subarray(0, cut)), 'E_FORMAT');
  }
  // fewer tokens than the model's vocab size
  expectCode(() => Llama2cTokenizer.fromBuffer(good, { vocabSize: 513 }), 'E_FORMAT');
  assert.equal(Llama2cTokenizer.fromBuffer(good, { vocabSize: 300 }).vocabSize, 300);
  // a negative length
  const neg = Uint8Array.from(good);
  new DataView(neg.buffer).setInt32(8, -5, true);
  expectCode(() => Llama2cTokenizer.fromBuffer(neg), 'E_FORMAT');
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'tok512.bin'), good.subarray(0, 1000));
  await assert.rejects(Llama2cTokenizer.load(path.join(dir, 'tok512.bin')), (e: unknown) => e instanceof TokenizerError && e.code === 'E_FORMAT');
});

test('inconsistent GGUF tokenizer metadata is a TokenizerError', () => {
  const base = gpt2Meta();
  expectCode(() => tokenizerFromGgufMetadata({}), 'E_NO_TOKENIZER');
  expectCode(() => tokenizerFromGgufMetadata({ 'tokenizer.ggml.model': 'llama' }), 'E_NO_TOKENIZER');
  expectCode(() => tokenizerFromGgufMetadata({ ...base, 'tokenizer.ggml.merges': undefined }), 'E_FORMAT');
  expectCode(() => tokenizerFromGgufMetadata({ ...base, 'tokenizer.ggml.token_type': [1, 2] }), 'E_FORMAT');
  expectCode(() => tokenizerFromGgufMetadata({ 'tokenizer.ggml.model': 'llama', 'tokenizer.ggml.tokens': ['a', 7] }), 'E_FORMAT');
  expectCode(() => tokenizerFromGgufMetadata({ 'tokenizer.ggml.model': 'llama', 'tokenizer.ggml.tokens': 'abc' }), 'E_FORMAT');
  expectCode(() => tokenizerFromGgufMetadata({ 'tokenizer.ggml.model': 't5', 'tokenizer.ggml.tokens': ['a'] }), 'E_UNSUPPORTED');
});
