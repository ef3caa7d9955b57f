// Tokenizers: the common Tokenizer interface (types.ts), TokenizerError, and loadTokenizerFor(), which finds
// the tokenizer that goes with a model (HF folder, llama2.c checkpoint, GGUF metadata, or a tokenizer file).

import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { TokenizerError } from './errors.js';
import { tokenizerFromGgufMetadata } from './gguf-vocab.js';
import { loadHfTokenizer, readTokenizerConfig } from './hf-json.js';
import { Llama2cTokenizer } from './llama2c.js';
import { SentencePieceTokenizer } from './sentencepiece.js';
import type { Tokenizer } from './types.js';

export { TokenizerError } from './errors.js';
export type { EncodeOptions, StreamDecoder, StreamDecoderOptions, Tokenizer, TokenizerKind } from './types.js';
export { SentencePieceTokenizer, normalizeText, type SentencePieceOptions } from './sentencepiece.js';
export { Llama2cTokenizer, parseLlama2cTokenizer, type Llama2cVocab } from './llama2c.js';
export { tokenizerFromGgufMetadata } from './gguf-vocab.js';
export { LibraryTokenizer, loadHfTokenizer } from './hf-json.js';
export { parseModelProto, type ModelProto } from './proto.js';

export interface LoadTokenizerOptions {
  /** the model's vocabulary size: among several candidates, one with this size is chosen */
  vocabSize?: number;
  /** GGUF key/value metadata when the model is a GGUF file (its embedded vocabulary is used first) */
  ggufMetadata?: Record<string, unknown>;
}

type Loader = () => Promise<Tokenizer>;

interface Candidate {
  file: string;
  load: Loader;
}

async function statOf(p: string): Promise<'file' | 'dir' | null> {
  try {
    const st = await fs.stat(p);
    return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : null;
  } catch {
    return null;
  }
}

const isLlama2cName = (name: string): boolean => name === 'tokenizer.bin' || /^tok.*\.bin$/i.test(name);

/** A loader for a file that is itself a tokenizer, by its name; null otherwise. */
function loaderForTokenizerFile(file: string, vocabSize?: number): Loader | null {
  const name = path.basename(file);
  const dir = path.dirname(file);
  if (name === 'tokenizer.json') return () => loadHfTokenizer(file);
  if (name.endsWith('.model')) {
    return async () => {
      const cfg = await readTokenizerConfig(dir);
      return SentencePieceTokenizer.load(file, { addBos: cfg.addBos });
    };
  }
  if (isLlama2cName(name)) {
    return async () => {
      // the format has no vocab size: try the model's first, then the whole file
      if (vocabSize !== undefined) {
        try {
          const t = await Llama2cTokenizer.load(file, { vocabSize });
          return t;
        } catch {
          // fall through
        }
      }
      return Llama2cTokenizer.load(file);
    };
  }
  return null;
}

/** Tokenizer files in `dir`, in order of preference. */
async function candidatesIn(dir: string, vocabSize?: number): Promise<Candidate[]> {
  let names: string[];
  try {
    names = (await fs.readdir(dir)).sort();
  } catch {
    return [];
  }
  const has = new Set(names);
  const ordered: string[] = [];
  const add = (n: string): void => {
    if (has.has(n) && !ordered.includes(n)) ordered.push(n);
  };
  add('tokenizer.json');
  add('tokenizer.model');
  // tok*.model before tok*.bin: the SentencePiece model is the reference the llama2.c file was exported
  // from, and it also normalizes whitespace the way the model was trained
  for (const n of names) if (/^tok.*\.model$/i.test(n)) add(n);
  add('tokenizer.bin');
  for (const n of names) if (/^tok.*\.bin$/i.test(n)) add(n);
  const out: Candidate[] = [];
  for (const n of ordered) {
    const file = path.join(dir, n);
    if ((await statOf(file)) !== 'file') continue;
    const load = loaderForTokenizerFile(file, vocabSize);
    if (load !== null) out.push({ file, load });
  }
  return out;
}

/**
 * Finds the tokenizer that goes with a model path: a HF folder (tokenizer.json, else tokenizer.model), a
 * llama2.c .bin (tokenizer.bin / tok*.bin / tokenizer.model beside it, choosing one whose vocab size matches
 * `vocabSize` if given), or a GGUF (pass its metadata). A path to a tokenizer file itself also works.
 * With `vocabSize`, a tokenizer of exactly that size is preferred; failing that, one at most 256 smaller
 * (models often pad their embedding table). Throws TokenizerError 'E_NO_TOKENIZER' listing what was
 * looked for.
 */
export async function loadTokenizerFor(modelPath: string, opts: LoadTokenizerOptions = {}): Promise<Tokenizer> {
  const notes: string[] = [];
  let firstError: unknown;
  if (opts.ggufMetadata !== undefined) {
    try {
      return tokenizerFromGgufMetadata(opts.ggufMetadata);
    } catch (err) {
      if (!(err instanceof TokenizerError) || err.code !== 'E_NO_TOKENIZER') throw err;
      notes.push(`GGUF metadata: ${err.message}`);
      firstError ??= err;
    }
  }
  const kind = await statOf(modelPath);
  if (kind === null) {
    throw new TokenizerError('E_NO_TOKENIZER', `no tokenizer for ${modelPath}: the path does not exist`);
  }
  if (kind === 'file') {
    const direct = loaderForTokenizerFile(modelPath, opts.vocabSize);
    if (direct !== null) return direct();
    if (modelPath.toLowerCase().endsWith('.gguf') && opts.ggufMetadata === undefined) {
      notes.push('the model is a GGUF file: pass its metadata (ggufMetadata) to use its embedded vocabulary');
    }
  }
  const dir = kind === 'dir' ? modelPath : path.dirname(modelPath);
  const candidates = await candidatesIn(dir, opts.vocabSize);
  const loaded: Array<{ file: string; tok: Tokenizer }> = [];
  for (const c of candidates) {
    try {
      const tok = await c.load();
      if (opts.vocabSize === undefined || tok.vocabSize === opts.vocabSize) return tok;
      loaded.push({ file: c.file, tok });
      notes.push(`${c.file}: vocab size ${tok.vocabSize}, the model has ${opts.vocabSize}`);
    } catch (err) {
      firstError ??= err;
      notes.push(`${c.file}: ${(err as Error).message}`);
    }
  }
  if (opts.vocabSize !== undefined) {
    const vs = opts.vocabSize;
    const padded = loaded.find(({ tok }) => tok.vocabSize < vs && vs - tok.vocabSize <= 256);
    if (padded !== undefined) return padded.tok;
  }
  const looked = [
    'tokenizer.json',
    'tokenizer.model',
    'tok*.model',
    'tokenizer.bin',
    'tok*.bin',
  ].map((n) => path.join(dir, n));
  const found = notes.length > 0 ? ` Found: ${notes.join('; ')}.` : candidates.length === 0 ? ' None of them exists.' : '';
  throw new TokenizerError(
    'E_NO_TOKENIZER',
    `no tokenizer for ${modelPath}${opts.vocabSize !== undefined ? ` (vocab size ${opts.vocabSize})` : ''}. ` +
      `Looked for ${looked.join(', ')}${opts.ggufMetadata === undefined ? ' and GGUF metadata (none given)' : ''}.${found}`,
    firstError !== undefined ? { cause: firstError } : undefined,
  );
}
