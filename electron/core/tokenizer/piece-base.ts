// Base class for tokenizers whose vocabulary is a list of pieces we decode ourselves (SentencePiece .model,
// GGUF 'llama', llama2.c tok.bin): BOS/EOS handling around encode, decode (control pieces skipped, byte
// pieces assembled into UTF-8, leading dummy-prefix space dropped) and the streaming decoder.

import { TokenizerError } from './errors.js';
import type { EncodeOptions, StreamDecoder, StreamDecoderOptions, Tokenizer, TokenizerKind } from './types.js';
import { utf8CompletePrefix, utf8DecodeLossy } from './utf8.js';

/** How an id decodes. */
export const DecodeKind = {
  /** its bytes, with the leading space dropped at the start of the text */
  Text: 0,
  /** nothing (BOS/EOS/control) */
  Skip: 1,
  /** one raw byte (<0xXX>) */
  Byte: 2,
  /** fixed surface bytes, never stripped (unknown piece) */
  Literal: 3,
} as const;

export interface PieceTable {
  /** piece strings as idToPiece returns them */
  readonly pieces: readonly string[];
  readonly kinds: Uint8Array;
  /** decoded bytes of each id (for Byte: one byte) */
  readonly bytes: readonly Uint8Array[];
}

export interface PieceTokenizerInit {
  kind: TokenizerKind;
  table: PieceTable;
  bosId: number;
  eosId: number;
  addBos: boolean;
  /** drop one leading space of the first decoded piece (the dummy prefix) */
  stripLeadingSpace: boolean;
  /**
   * which pieces may lose that space: 'while-empty' — every piece while the text is still empty
   * (SentencePiece's decoder); 'first' — only the first visible piece (llama2.c, llama.cpp). Default 'first'.
   */
  stripMode?: 'while-empty' | 'first';
}

const REPLACEMENT = new Uint8Array([0xef, 0xbf, 0xbd]);

/** Growable byte buffer. */
class ByteSink {
  buf = new Uint8Array(256);
  len = 0;

  push(b: Uint8Array, from = 0): void {
    const n = b.length - from;
    if (n <= 0) return;
    if (this.len + n > this.buf.length) {
      const nb = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
      nb.set(this.buf.subarray(0, this.len));
      this.buf = nb;
    }
    this.buf.set(from === 0 ? b : b.subarray(from), this.len);
    this.len += n;
  }
}

export abstract class PieceTokenizerBase implements Tokenizer {
  readonly kind: TokenizerKind;
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly addBos: boolean;
  protected readonly table: PieceTable;
  protected readonly stripLeadingSpace: boolean;
  private readonly stripWhileEmpty: boolean;

  protected constructor(init: PieceTokenizerInit) {
    this.kind = init.kind;
    this.table = init.table;
    this.vocabSize = init.table.pieces.length;
    const valid = (id: number): number => (Number.isInteger(id) && id >= 0 && id < this.vocabSize ? id : -1);
    this.bosId = valid(init.bosId);
    this.eosId = valid(init.eosId);
    this.addBos = init.addBos && this.bosId >= 0;
    this.stripLeadingSpace = init.stripLeadingSpace;
    this.stripWhileEmpty = init.stripMode === 'while-empty';
  }

  /** ids of `text` without BOS/EOS */
  protected abstract encodeText(text: string): number[];

  encode(text: string, opts?: EncodeOptions): number[] {
    if (typeof text !== 'string') throw new TokenizerError('E_FORMAT', 'encode() needs a string');
    const ids = this.encodeText(text);
    if (opts?.bos && this.bosId >= 0) ids.unshift(this.bosId);
    if (opts?.eos && this.eosId >= 0) ids.push(this.eosId);
    return ids;
  }

  idToPiece(id: number): string {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new TokenizerError('E_RANGE', `token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
    }
    return this.table.pieces[id];
  }

  /**
   * Appends the bytes of `id` to `sink`; returns the new "at start" state (true while nothing visible has
   * been produced). Ids outside the vocabulary decode to U+FFFD.
   */
  private appendId(sink: ByteSink, id: number, atStart: boolean, strip: boolean): boolean {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      sink.push(REPLACEMENT);
      return false;
    }
    const kind = this.table.kinds[id];
    const b = this.table.bytes[id];
    switch (kind) {
      case DecodeKind.Skip:
        return atStart;
      case DecodeKind.Byte:
      case DecodeKind.Literal:
        sink.push(b);
        return atStart && this.stripWhileEmpty && b.length === 0;
      default: {
        const from = atStart && strip && b.length > 0 && b[0] === 0x20 ? 1 : 0;
        sink.push(b, from);
        return atStart && this.stripWhileEmpty && b.length - from === 0;
      }
    }
  }

  decode(ids: readonly number[]): string {
    const sink = new ByteSink();
    let atStart = true;
    for (const id of ids) atStart = this.appendId(sink, id, atStart, this.stripLeadingSpace);
    return utf8DecodeLossy(sink.buf, 0, sink.len);
  }

  createDecoder(opts?: StreamDecoderOptions): StreamDecoder {
    const strip = this.stripLeadingSpace && (opts?.skipLeadingSpace ?? true);
    let sink = new ByteSink();
    let atStart = true;
    const take = (end: number): string => {
      const text = utf8DecodeLossy(sink.buf, 0, end);
      const rest = sink.buf.subarray(end, sink.len);
      const next = new ByteSink();
      next.push(rest);
      sink = next;
      return text;
    };
    return {
      push: (id: number): string => {
        atStart = this.appendId(sink, id, atStart, strip);
        const cut = utf8CompletePrefix(sink.buf, sink.len);
        return cut === 0 ? '' : take(cut);
      },
      flush: (): string => take(sink.len),
    };
  }
}
