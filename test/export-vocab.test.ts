// GGUF vocabularies from Hugging Face tokenizer.json files, proven in real llama.cpp (node-llama-cpp's CPU
// build): a GPT-2-style byte-level BPE trained here on TinyStories becomes GGUF 'gpt2' (merges, control
// tokens, pre-tokenizer 'gpt-2', BOS/EOS, add_bos), the same with Llama 3's split regex and ignore_merges
// becomes pre-tokenizer 'llama-bpe' (unknown pre-tokenizers are refused), and Llama 2's real 32,000-piece vocabulary as a
// byte-fallback tokenizer.json (no tokenizer.model) becomes GGUF 'llama' with scores from the merge
// ranks. llama.cpp tokenizes text exactly as Tailor's tokenizer.json tokenizer does (and, for Llama 2,
// as the official SentencePiece golden ids); stories260K shipped with only a tokenizer.json writes the
// same greedy story in llama.cpp as in Tailor.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { getLlama, LlamaLogLevel, type Llama, type LlamaModel, type Token } from 'node-llama-cpp';
import { Model } from '../electron/core/engine/engine.js';
import { exportModel, ggufVocabFromTokenizerJson } from '../electron/core/export/export.js';
import { readGgufHeader } from '../electron/core/formats/gguf-write.js';
import { randomModel } from '../electron/core/formats/model-tensors.js';
import { writeHfFolder } from '../electron/core/formats/safetensors-write.js';
import { generateText } from '../electron/core/text/generate.js';
import { parseModelProto, type Tokenizer } from '../electron/core/tokenizer/index.js';
import { LLAMA3_PRE_REGEX } from '../electron/core/tokenizer/gguf-vocab.js';
import { shared, tempDir } from './helpers/paths.js';
import { llamaStyleTokenizerJson, trainByteLevelBpe } from './helpers/tokenizer-json.js';

const dir = tempDir('tailor-export-vocab-');
const TEXT = fs.readFileSync(shared('datasets', 'tinystories', 'validation_head.txt'), 'utf8');
const golden = JSON.parse(fs.readFileSync(shared('fixtures', 'golden', 'tokenizers.json'), 'utf8')) as Record<'llama2', { cases: Array<{ text: string; ids: number[] }> }>;
const SAMPLES = [
  TEXT.slice(400_000, 400_600),
  'Once upon a time, there was a little girl named Lily. She loved to play outside!',
  "I'm sure you'll see it. Don't worry -- we've got 12345 apples, 7 pears & 3.14 pies.",
  '  leading spaces,\ttabs\nand new lines\n\n  then   runs of   spaces  ',
  'Café déjà vu: naïve über-cool 🙂 emoji, 数字 and ß.',
];

let llama: Llama | undefined;
after(async () => { await llama?.dispose(); });

async function llamaModel(file: string): Promise<LlamaModel> {
  llama ??= await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  return llama.loadModel({ modelPath: file });
}

/** A random-weight model folder of `vocab` tokens with only these tokenizer files beside it. */
function folderWith(name: string, vocab: number, files: Record<string, unknown>): string {
  const d = path.join(dir, name);
  writeHfFolder(d, randomModel({ dim: 32, nLayers: 1, nHead: 2, nKvHead: 2, ffn: 32, vocabSize: vocab, contextLength: 128, seed: 3 }));
  for (const [f, v] of Object.entries(files)) fs.writeFileSync(path.join(d, f), JSON.stringify(v));
  return d;
}

async function exportGguf(src: string, name: string): Promise<{ file: string; tok: Tokenizer; kv: Map<string, unknown> }> {
  const m = await Model.load(src);
  try {
    const file = path.join(dir, name);
    await exportModel(m, { format: 'gguf', out: file });
    return { file, tok: m.requireTokenizer(), kv: readGgufHeader(fs.readFileSync(file)).kv };
  } finally {
    m.dispose();
  }
}

/** Tailor reading the exported GGUF's embedded vocabulary. */
async function ggufTokenizer(file: string): Promise<Tokenizer> {
  const m = await Model.load(file);
  const t = m.requireTokenizer();
  m.dispose();
  return t;
}

test("a GPT-2-style byte-level BPE tokenizer.json becomes GGUF 'gpt2'; llama.cpp tokenizes like Tailor", async () => {
  const json = trainByteLevelBpe(TEXT.slice(0, 200_000), 300, ['<|begin_of_text|>', '<|end_of_text|>']);
  const n = 256 + 300 + 2;
  const src = folderWith('bytelevel', n, {
    'tokenizer.json': json,
    'tokenizer_config.json': { bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>', add_bos_token: true },
  });
  const { file, tok, kv } = await exportGguf(src, 'bytelevel.gguf');
  assert.equal(tok.kind, 'hf-json');
  assert.equal(kv.get('tokenizer.ggml.model'), 'gpt2');
  assert.equal(kv.get('tokenizer.ggml.pre'), 'gpt-2');
  assert.equal((kv.get('tokenizer.ggml.merges') as string[]).length, 300);
  assert.equal((kv.get('tokenizer.ggml.merges') as string[])[0], ((json.model as { merges: string[][] }).merges[0]).join(' '));
  const types = kv.get('tokenizer.ggml.token_type') as number[];
  assert.deepEqual([types[n - 2], types[n - 1]], [3, 3], 'special tokens are control tokens');
  assert.ok(types.slice(0, n - 2).every((t) => t === 1));
  assert.equal(kv.get('tokenizer.ggml.bos_token_id'), n - 2);
  assert.equal(kv.get('tokenizer.ggml.eos_token_id'), n - 1);
  assert.equal(kv.get('tokenizer.ggml.add_bos_token'), true);
  const ours = await ggufTokenizer(file);
  assert.equal(ours.kind, 'gguf-gpt2');
  const lm = await llamaModel(file);
  try {
    assert.equal(lm.tokens.bos, n - 2);
    assert.equal(lm.tokens.eos, n - 1);
    assert.equal(lm.tokens.shouldPrependBosToken, true);
    for (const text of SAMPLES) {
      const ids = tok.encode(text);
      assert.ok(ids.length < new TextEncoder().encode(text).length, 'merges apply');
      assert.deepEqual(lm.tokenize(text).map(Number), ids, `llama.cpp: ${JSON.stringify(text)}`);
      assert.deepEqual(ours.encode(text), ids, `Tailor's GGUF tokenizer: ${JSON.stringify(text)}`);
      assert.equal(lm.detokenize(ids as Token[]), text);
    }
  } finally {
    await lm.dispose();
  }
});

test("a Llama-3-style byte-level tokenizer.json (split regex, ignore_merges) becomes pre 'llama-bpe'; unknown pre-tokenizers are refused", async () => {
  const json = trainByteLevelBpe(TEXT.slice(0, 200_000), 300, ['<|begin_of_text|>', '<|end_of_text|>']);
  json.pre_tokenizer = { type: 'Sequence', pretokenizers: [
    { type: 'Split', pattern: { Regex: LLAMA3_PRE_REGEX }, behavior: 'Isolated', invert: false },
    { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
  ] };
  (json.model as Record<string, unknown>).ignore_merges = true;
  const src = folderWith('llama3-style', 558, { 'tokenizer.json': json, 'tokenizer_config.json': { bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>' } });
  const { file, tok, kv } = await exportGguf(src, 'llama3-style.gguf');
  assert.equal(kv.get('tokenizer.ggml.pre'), 'llama-bpe');
  const lm = await llamaModel(file);
  try {
    for (const text of [...SAMPLES, 'x 123456 and 7890!']) assert.deepEqual(lm.tokenize(text).map(Number), tok.encode(text), `llama.cpp: ${JSON.stringify(text)}`);
  } finally {
    await lm.dispose();
  }
  const odd = { ...json, pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: '\\s+' }, behavior: 'Isolated', invert: false }, { type: 'ByteLevel', use_regex: false }] } };
  assert.throws(() => ggufVocabFromTokenizerJson(odd), (e: { code?: string }) => e.code === 'E_UNSUPPORTED');
  assert.throws(() => ggufVocabFromTokenizerJson({ model: { type: 'Unigram', vocab: [] } }), (e: { code?: string }) => e.code === 'E_UNSUPPORTED');
});

test("Llama 2's vocabulary as a byte-fallback tokenizer.json (no tokenizer.model) becomes GGUF 'llama' with merge-rank scores", async () => {
  const proto = parseModelProto(fs.readFileSync(shared('models', 'llama2-tokenizer', 'tokenizer.model')));
  const json = llamaStyleTokenizerJson(proto);
  const meta = ggufVocabFromTokenizerJson(json);
  assert.equal(meta.model, 'llama');
  assert.equal(meta.merges, undefined);
  assert.deepEqual(meta.tokens, proto.pieces.map((p) => p.piece));
  assert.deepEqual(meta.tokenTypes, proto.pieces.map((p) => p.type), 'unknown, control, byte and normal pieces as SentencePiece has them');
  assert.deepEqual([meta.bosId, meta.eosId, meta.unkId, meta.addBos, meta.addSpacePrefix], [1, 2, 0, true, true]);
  // every merged piece ranks as SentencePiece's scores rank it
  const merged = proto.pieces.map((p, id) => ({ id, s: p.score, r: meta.scores[id] })).filter((x) => x.r > -(json.model as { merges: unknown[] }).merges.length);
  assert.ok(merged.length > 29_000, `${merged.length} pieces come from merges`);
  for (let i = 1; i < merged.length; i++) {
    const [a, b] = [merged[i - 1], merged[i]];
    if (a.s !== b.s) assert.equal(Math.sign(a.r - b.r), Math.sign(a.s - b.s), `pieces ${a.id} and ${b.id} keep their order`);
  }
  const src = folderWith('llama2-json', 32_000, { 'tokenizer.json': json });
  const { file, tok, kv } = await exportGguf(src, 'llama2-json.gguf');
  assert.equal(tok.kind, 'hf-json');
  assert.equal(kv.get('tokenizer.ggml.model'), 'llama');
  const ours = await ggufTokenizer(file);
  const lm = await llamaModel(file);
  try {
    assert.equal(lm.tokens.shouldPrependBosToken, true);
    for (const c of golden.llama2.cases) {
      assert.deepEqual(tok.encode(c.text), c.ids, `tokenizer.json: ${JSON.stringify(c.text)}`);
      assert.deepEqual(ours.encode(c.text), c.ids, `Tailor's GGUF tokenizer: ${JSON.stringify(c.text)}`);
      assert.deepEqual(lm.tokenize(c.text).map(Number), c.ids, `llama.cpp: ${JSON.stringify(c.text)}`);
    }
    for (const text of SAMPLES) assert.deepEqual(lm.tokenize(text).map(Number), tok.encode(text), `llama.cpp: ${JSON.stringify(text)}`);
  } finally {
    await lm.dispose();
  }
});

test('stories260K shipped with only a tokenizer.json: its GGUF writes the same greedy story in llama.cpp as in Tailor', async () => {
  const hf = shared('models', 'stories260K-hf');
  const src = path.join(dir, 'stories-json');
  fs.mkdirSync(src);
  for (const f of ['config.json', 'model.safetensors']) fs.copyFileSync(path.join(hf, f), path.join(src, f));
  fs.writeFileSync(path.join(src, 'tokenizer.json'), JSON.stringify(llamaStyleTokenizerJson(parseModelProto(fs.readFileSync(path.join(hf, 'tokenizer.model'))))));
  const { file } = await exportGguf(src, 'stories-json.gguf');
  const lm = await llamaModel(file);
  const ctx = await lm.createContext({ contextSize: 128, threads: 1, flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
  const gen: Token[] = [];
  try {
    for await (const t of ctx.getSequence().evaluate([lm.tokens.bos!, ...lm.tokenize('Once upon a time')], { temperature: 0 })) {
      gen.push(t);
      if (gen.length >= 40) break;
    }
  } finally {
    await ctx.dispose();
    await lm.dispose();
  }
  const m = await Model.load(hf);
  try {
    const ours = await generateText(m, 'Once upon a time', { maxTokens: 40 });
    assert.deepEqual(gen.map(Number), ours.ids.slice(0, gen.length));
    assert.match(ours.text, /Lily/);
  } finally {
    m.dispose();
  }
});
