// Tokenizers run by @huggingface/tokenizers (pure JS): Hugging Face `tokenizer.json` (+ `tokenizer_config.json`
// for BOS/EOS and add_bos_token), and the in-memory tokenizer.json that gguf-vocab.ts builds for GGUF 'gpt2'
// (byte-level BPE) vocabularies. BOS/EOS are added by us, never by the library's post-processor.

import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { TokenizerError } from './errors.js';
import type { EncodeOptions, StreamDecoder, Tokenizer } from './types.js';

export interface LibraryTokenizerInit {
  kind: 'hf-json' | 'gguf-gpt2';
  /** a tokenizer.json object */
  json: Record<string, unknown>;
  /** a tokenizer_config.json object ({} if none) */
  config?: Record<string, unknown>;
  /** explicit ids / convention; otherwise derived from the config and the json */
  bosId?: number;
  eosId?: number;
  addBos?: boolean;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** tokenizer_config.json writes special tokens as "text" or {"content": "text", ...}. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return undefined;
}

/** The first special token a TemplateProcessing post-processor puts in front of a single sequence. */
function templateLeadingToken(pp: unknown): number | undefined {
  if (!isObject(pp)) return undefined;
  if (pp.type === 'Sequence' && Array.isArray(pp.processors)) {
    for (const p of pp.processors) {
      const id = templateLeadingToken(p);
      if (id !== undefined) return id;
    }
    return undefined;
  }
  if (pp.type !== 'TemplateProcessing' || !Array.isArray(pp.single) || pp.single.length === 0) return undefined;
  const first = pp.single[0];
  if (!isObject(first) || !isObject(first.SpecialToken)) return undefined;
  const name = first.SpecialToken.id;
  const specials = isObject(pp.special_tokens) ? pp.special_tokens : {};
  const entry = typeof name === 'string' ? specials[name] : undefined;
  if (isObject(entry) && Array.isArray(entry.ids) && typeof entry.ids[0] === 'number') return entry.ids[0];
  return undefined;
}

export class LibraryTokenizer implements Tokenizer {
  readonly kind: 'hf-json' | 'gguf-gpt2';
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly addBos: boolean;
  private readonly hf: HfTokenizer;

  constructor(init: LibraryTokenizerInit) {
    this.kind = init.kind;
    const config: Json = { ...(init.config ?? {}) };
    // The library defaults this to true, which rewrites " ." → "." etc.; only do it when the config asks.
    if (typeof config.clean_up_tokenization_spaces !== 'boolean') config.clean_up_tokenization_spaces = false;
    const json: Json = { ...init.json };
    for (const key of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) if (!(key in json)) json[key] = null;
    if (!Array.isArray(json.added_tokens)) json.added_tokens = [];
    if (!isObject(json.model)) throw new TokenizerError('E_FORMAT', 'tokenizer.json has no "model" object');
    try {
      this.hf = new HfTokenizer(json, config);
    } catch (err) {
      throw new TokenizerError('E_FORMAT', `tokenizer.json rejected by @huggingface/tokenizers: ${(err as Error).message}`, { cause: err });
    }
    let maxId = -1;
    for (const id of this.hf.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;
    const idOf = (text: string | undefined): number => (text === undefined ? -1 : this.hf.token_to_id(text) ?? -1);
    const added = (json.added_tokens as unknown[]).filter(isObject);
    const firstAdded = (names: string[]): number => {
      for (const name of names) {
        const hit = added.find((t) => t.content === name);
        if (hit !== undefined && typeof hit.id === 'number') return hit.id;
      }
      return -1;
    };
    const templateBos = templateLeadingToken(json.post_processor);
    let bos = init.bosId ?? idOf(tokenText(config.bos_token));
    if (bos < 0) bos = templateBos ?? firstAdded(['<s>', '<|begin_of_text|>', '<bos>', '<|startoftext|>']);
    let eos = init.eosId ?? idOf(tokenText(config.eos_token));
    if (eos < 0) eos = firstAdded(['</s>', '<|end_of_text|>', '<|endoftext|>', '<eos>', '<|eot_id|>']);
    const inRange = (id: number): number => (Number.isInteger(id) && id >= 0 && id < this.vocabSize ? id : -1);
    this.bosId = inRange(bos);
    this.eosId = inRange(eos);
    const addBos =
      init.addBos ?? (typeof config.add_bos_token === 'boolean' ? config.add_bos_token : templateBos !== undefined);
    this.addBos = addBos && this.bosId >= 0;
  }

  encode(text: string, opts?: EncodeOptions): number[] {
    if (typeof text !== 'string') throw new TokenizerError('E_FORMAT', 'encode() needs a string');
    const ids = text.length === 0 ? [] : this.hf.encode(text, { add_special_tokens: false }).ids.slice();
    if (opts?.bos && this.bosId >= 0) ids.unshift(this.bosId);
    if (opts?.eos && this.eosId >= 0) ids.push(this.eosId);
    return ids;
  }

  /** Ids outside the vocabulary and BOS/EOS are dropped; special (control) tokens are skipped. */
  decode(ids: readonly number[]): string {
    const kept = ids.filter(
      (id) => Number.isInteger(id) && id >= 0 && id < this.vocabSize && id !== this.bosId && id !== this.eosId && this.hf.id_to_token(id) !== undefined,
    );
    if (kept.length === 0) return '';
    return this.hf.decode(kept, { skip_special_tokens: true });
  }

  idToPiece(id: number): string {
    const piece = Number.isInteger(id) ? this.hf.id_to_token(id) : undefined;
    if (piece === undefined) throw new TokenizerError('E_RANGE', `token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
    return piece;
  }

  /**
   * Incremental decoding by re-decoding a short window: text is released once the window's decoding grows
   * and does not end in U+FFFD (an incomplete UTF-8 sequence), so multi-byte characters split across
   * byte tokens come out whole.
   */
  createDecoder(): StreamDecoder {
    const ids: number[] = [];
    let prefix = 0;
    let read = 0;
    const step = (final: boolean): string => {
      const before = this.decode(ids.slice(prefix, read));
      const after = this.decode(ids.slice(prefix));
      if (after.length > before.length && (final || !after.endsWith('\uFFFD'))) {
        prefix = read;
        read = ids.length;
        return after.slice(before.length);
      }
      if (final) {
        prefix = read = ids.length;
      }
      return '';
    };
    return {
      push: (id: number): string => {
        ids.push(id);
        return step(false);
      },
      flush: (): string => step(true),
    };
  }
}

async function readJson(file: string, what: string): Promise<Json> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new TokenizerError('E_IO', `cannot read ${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new TokenizerError('E_FORMAT', `${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!isObject(value)) throw new TokenizerError('E_FORMAT', `${file} does not hold a JSON object`);
  return value;
}

async function exists(file: string): Promise<boolean> {
  try {
    return (await fs.stat(file)).isFile();
  } catch {
    return false;
  }
}

/**
 * Loads a Hugging Face tokenizer.json; `configPath` defaults to tokenizer_config.json beside it (used when
 * present, for bos_token / eos_token / add_bos_token).
 */
export async function loadHfTokenizer(jsonPath: string, configPath?: string): Promise<LibraryTokenizer> {
  const json = await readJson(jsonPath, 'tokenizer.json');
  const cfgPath = configPath ?? path.join(path.dirname(jsonPath), 'tokenizer_config.json');
  const config = configPath !== undefined || (await exists(cfgPath)) ? await readJson(cfgPath, 'tokenizer_config.json') : {};
  try {
    return new LibraryTokenizer({ kind: 'hf-json', json, config });
  } catch (err) {
    if (err instanceof TokenizerError) throw new TokenizerError(err.code, `${jsonPath}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** Reads tokenizer_config.json-style settings that also matter for SentencePiece folders. */
export async function readTokenizerConfig(dir: string): Promise<{ addBos?: boolean; bos?: string; eos?: string }> {
  const file = path.join(dir, 'tokenizer_config.json');
  if (!(await exists(file))) return {};
  const cfg = await readJson(file, 'tokenizer_config.json');
  return {
    addBos: typeof cfg.add_bos_token === 'boolean' ? cfg.add_bos_token : undefined,
    bos: tokenText(cfg.bos_token),
    eos: tokenText(cfg.eos_token),
  };
}
