// export.ts — a model (tailored or not) out to the tools analysts use: GGUF for llama.cpp / Ollama /
// LM Studio (architecture `llama` when every layer has the same shape, `deci` with per-layer arrays
// otherwise; the tokenizer embedded), a Hugging Face folder (safetensors, optionally sharded, config with
// per-layer lists, tokenizer files, generation_config.json, a model card), or a PEFT adapter beside the
// pruned base it fits. Every write is atomic (a temporary name, fsync, rename) and never replaces an
// existing output without force.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Model } from '../engine/engine.js';
import { EngineError } from '../engine/errors.js';
import { isUniform, paramCount, type ModelTensors } from '../formats/model-tensors.js';
import { writeGguf, type GgufDtype, type GgufTokenizerMeta } from '../formats/gguf-write.js';
import { writeHfFolder } from '../formats/safetensors-write.js';
import { parseModelProto, PieceType } from '../tokenizer/proto.js';
import { atomicWriteDir, atomicWriteFile } from '../train/atomic.js';

export type ExportFormat = 'gguf' | 'hf' | 'peft';

/** GGUF's `llama` tokenizer vocabulary from a SentencePiece model file. */
export function ggufVocabFromSentencePiece(bytes: Uint8Array, addBos = true): GgufTokenizerMeta {
  const proto = parseModelProto(bytes);
  const ts = proto.trainerSpec;
  return {
    model: 'llama',
    tokens: proto.pieces.map((p) => p.piece),
    scores: proto.pieces.map((p) => p.score),
    tokenTypes: proto.pieces.map((p) => (p.type >= PieceType.NORMAL && p.type <= PieceType.BYTE ? p.type : PieceType.NORMAL)),
    bosId: ts.bosId >= 0 ? ts.bosId : 1,
    eosId: ts.eosId >= 0 ? ts.eosId : 2,
    addBos,
    addSpacePrefix: proto.normalizerSpec.addDummyPrefix,
  };
}

/** The vocabulary of a loaded model for embedding in GGUF: its own GGUF metadata, or the SentencePiece
 *  model beside it. */
export function ggufVocabFor(model: Model): GgufTokenizerMeta {
  const src = model.info.path;
  if (model.info.format === 'gguf') {
    const m = model.metadata();
    const arr = (k: string) => (Array.isArray(m[k]) ? (m[k] as unknown[]) : undefined);
    const tokens = arr('tokenizer.ggml.tokens');
    if (!tokens) throw new EngineError('E_NO_TOKENIZER', `${src} has no embedded vocabulary to carry over`);
    return {
      model: m['tokenizer.ggml.model'] === 'gpt2' ? 'gpt2' : 'llama',
      tokens: tokens.map(String),
      scores: (arr('tokenizer.ggml.scores') ?? tokens.map(() => 0)).map(Number),
      tokenTypes: (arr('tokenizer.ggml.token_type') ?? tokens.map(() => 1)).map(Number),
      merges: arr('tokenizer.ggml.merges')?.map(String),
      bosId: Number(m['tokenizer.ggml.bos_token_id'] ?? model.info.bosId),
      eosId: Number(m['tokenizer.ggml.eos_token_id'] ?? model.info.eosId),
      addBos: m['tokenizer.ggml.add_bos_token'] !== false,
      addSpacePrefix: m['tokenizer.ggml.add_space_prefix'] !== false,
    };
  }
  const dir = fs.statSync(src).isDirectory() ? src : path.dirname(src);
  const cands = ['tokenizer.model', ...fs.readdirSync(dir).filter((f) => /^tok.*\.model$/.test(f))].map((f) => path.join(dir, f)).filter((f) => fs.existsSync(f));
  if (cands.length === 0)
    throw new EngineError('E_NO_TOKENIZER', `no SentencePiece tokenizer.model beside ${src} to embed in the GGUF (tokenizer.json-only models: export to hf instead)`);
  const buf = fs.readFileSync(cands[0]);
  return ggufVocabFromSentencePiece(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), model.tokenizer?.addBos ?? true);
}

export interface ExportOptions {
  format: ExportFormat;
  out: string;
  dtype?: GgufDtype;
  force?: boolean;
  name?: string;
  /** how the model was tailored, for the GGUF description and the model card */
  description?: string;
  /** Hugging Face: shard above this many bytes */
  shardBytes?: number;
  /** PEFT: the adapter folder to export (the base is exported beside it) */
  adapterDir?: string;
  /** model card sections (evaluation table, recovery) in Markdown */
  cardExtra?: string;
}

export interface ExportResult { paths: string[]; bytes: number; format: ExportFormat; architecture?: string }

function tokenizerFiles(model: Model): string[] {
  const src = model.info.path;
  const dir = fs.statSync(src).isDirectory() ? src : path.dirname(src);
  const files = ['tokenizer.json', 'tokenizer.model', 'tokenizer_config.json', 'special_tokens_map.json'].map((f) => path.join(dir, f)).filter((f) => fs.existsSync(f));
  if (!files.some((f) => /tokenizer\.(json|model)$/.test(f))) {
    const tm = fs.readdirSync(dir).find((f) => /^tok.*\.model$/.test(f));
    if (tm) files.push(path.join(dir, tm));
  }
  return files;
}

function dirBytes(p: string): number {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.size;
  return fs.readdirSync(p).reduce((s, f) => s + dirBytes(path.join(p, f)), 0);
}

function modelCard(model: Model, t: ModelTensors, o: ExportOptions): string {
  const i = model.info;
  const uniform = isUniform(t);
  return [
    `# ${o.name ?? path.basename(i.path)}`,
    '',
    `A LLaMA-architecture model exported by Tailor from \`${path.basename(i.path)}\`.`,
    '',
    o.description ? `${o.description}\n` : '',
    `- parameters: ${paramCount(t).toLocaleString('en-US')}`,
    `- hidden size ${i.dim}, ${i.nLayers} layers, head dim ${i.headDim}, vocabulary ${i.vocabSize}, context ${i.contextLength}`,
    uniform ? `- every layer: ${t.layers[0].nHead} heads, ${t.layers[0].nKvHead} KV heads, FFN ${t.layers[0].ffn}`
      : `- per-layer shapes (structurally pruned): heads ${t.layers.map((l) => l.nHead).join(', ')}; KV heads ${t.layers.map((l) => l.nKvHead).join(', ')}; FFN ${t.layers.map((l) => l.ffn).join(', ')} — \`config.json\` lists them in \`layer_num_attention_heads\`, \`layer_num_key_value_heads\` and \`layer_intermediate_sizes\`; stock \`transformers\` expects uniform layers, Tailor and llama.cpp (GGUF \`deci\`) load these directly`,
    '',
    o.cardExtra ?? '',
  ].join('\n');
}

export function exportModel(model: Model, o: ExportOptions): ExportResult {
  if (fs.existsSync(o.out) && !o.force) throw new EngineError('E_IO', `${o.out} already exists (use --force to replace it)`);
  const t = model.tensors();
  if (o.format === 'gguf') {
    const vocab = ggufVocabFor(model);
    const arch = isUniform(t) ? 'llama' : 'deci';
    const tmp = `${o.out}.tmp-${process.pid}-${Date.now()}`;
    try {
      writeGguf(tmp, t, { arch, dtype: o.dtype ?? 'f32', name: o.name ?? path.basename(model.info.path), tokenizer: vocab,
        extraKv: o.description ? [{ key: 'general.description', type: 'string', value: o.description }] : [] });
      const fd = fs.openSync(tmp, 'r+');
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fs.renameSync(tmp, o.out);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    return { paths: [o.out], bytes: fs.statSync(o.out).size, format: 'gguf', architecture: arch };
  }
  if (o.format === 'hf') {
    if (o.dtype === 'q8_0') throw new EngineError('E_ARG', 'Hugging Face safetensors exports are f32, f16 or bf16');
    const files = tokenizerFiles(model);
    atomicWriteDir(o.out, !!o.force, (tmp) => {
      writeHfFolder(tmp, t, { dtype: (o.dtype ?? 'f32') as 'f32', shardBytes: o.shardBytes });
      for (const f of files) fs.copyFileSync(f, path.join(tmp, /^tok.*\.model$/.test(path.basename(f)) ? 'tokenizer.model' : path.basename(f)));
      fs.writeFileSync(path.join(tmp, 'generation_config.json'), JSON.stringify({ bos_token_id: model.info.bosId, eos_token_id: model.info.eosId, do_sample: false }, null, 2) + '\n');
      fs.writeFileSync(path.join(tmp, 'README.md'), modelCard(model, t, o));
    });
    return { paths: [o.out], bytes: dirBytes(o.out), format: 'hf' };
  }
  // PEFT: the adapter with its base beside it (an adapter fits only the exact pruned base it was trained on)
  if (!o.adapterDir) throw new EngineError('E_ARG', 'a PEFT export needs --adapter DIR');
  const adapter = o.adapterDir;
  for (const f of ['adapter_config.json', 'adapter_model.safetensors'])
    if (!fs.existsSync(path.join(adapter, f))) throw new EngineError('E_IO', `${adapter} is not a PEFT adapter (no ${f})`);
  const files = tokenizerFiles(model);
  atomicWriteDir(o.out, !!o.force, (tmp) => {
    fs.mkdirSync(path.join(tmp, 'adapter'));
    for (const f of fs.readdirSync(adapter)) if (fs.statSync(path.join(adapter, f)).isFile()) fs.copyFileSync(path.join(adapter, f), path.join(tmp, 'adapter', f));
    const cfgPath = path.join(tmp, 'adapter', 'adapter_config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
    cfg.base_model_name_or_path = '../base';
    fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2) + '\n');
    writeHfFolder(path.join(tmp, 'base'), t, { dtype: (o.dtype === 'q8_0' ? 'f32' : o.dtype ?? 'f32') as 'f32' });
    for (const f of files) fs.copyFileSync(f, path.join(tmp, 'base', /^tok.*\.model$/.test(path.basename(f)) ? 'tokenizer.model' : path.basename(f)));
    fs.writeFileSync(path.join(tmp, 'README.md'), `# LoRA adapter and its base\n\n\`adapter/\` is a PEFT LoRA adapter. It fits only the model in \`base/\` (${paramCount(t).toLocaleString('en-US')} parameters${isUniform(t) ? '' : ', structurally pruned: per-layer shapes differ'}), on which it was trained; apply it to that base, not to the original model.\n`);
  });
  return { paths: [o.out], bytes: dirBytes(o.out), format: 'peft' };
}

export { atomicWriteFile };
