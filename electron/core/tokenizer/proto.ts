// Minimal, bounds-checked protobuf wire-format reader and a parser for SentencePiece's ModelProto
// (`tokenizer.model`). Field numbers follow google/sentencepiece `src/sentencepiece_model.proto`.
// Every read checks bounds and every loop advances, so malformed input throws TokenizerError('E_FORMAT')
// instead of hanging or reading out of bounds.

import { TokenizerError } from './errors.js';

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_FIXED32 = 5;

/** SentencePiece.Type */
export const PieceType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

/** TrainerSpec.ModelType */
export const ModelType = { UNIGRAM: 1, BPE: 2, WORD: 3, CHAR: 4 } as const;

export interface SentencePieceEntry {
  piece: string;
  score: number;
  /** raw enum value; see PieceType (values outside 1..6 are kept as read) */
  type: number;
}

export interface TrainerSpec {
  modelType: number; // 3
  vocabSize: number; // 4
  splitByWhitespace: boolean; // 22 (training only; encoding never pre-splits)
  treatWhitespaceAsSuffix: boolean; // 24
  splitDigits: boolean; // 25
  allowWhitespaceOnlyPieces: boolean; // 26
  byteFallback: boolean; // 35
  unkId: number; // 40
  bosId: number; // 41
  eosId: number; // 42
  padId: number; // 43
  unkSurface: string; // 44
  unkPiece: string; // 45
  bosPiece: string; // 46
  eosPiece: string; // 47
  padPiece: string; // 48
}

export interface NormalizerSpec {
  name: string; // 1
  precompiledCharsmap: Uint8Array; // 2
  addDummyPrefix: boolean; // 3
  removeExtraWhitespaces: boolean; // 4
  escapeWhitespaces: boolean; // 5
}

export interface ModelProto {
  pieces: SentencePieceEntry[]; // 1
  trainerSpec: TrainerSpec; // 2
  normalizerSpec: NormalizerSpec; // 3
}

export function defaultTrainerSpec(): TrainerSpec {
  return {
    modelType: ModelType.UNIGRAM,
    vocabSize: 8000,
    splitByWhitespace: true,
    treatWhitespaceAsSuffix: false,
    splitDigits: false,
    allowWhitespaceOnlyPieces: false,
    byteFallback: false,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: -1,
    unkSurface: ' \u2047 ',
    unkPiece: '<unk>',
    bosPiece: '<s>',
    eosPiece: '</s>',
    padPiece: '<pad>',
  };
}

export function defaultNormalizerSpec(): NormalizerSpec {
  return {
    name: '',
    precompiledCharsmap: new Uint8Array(0),
    addDummyPrefix: true,
    removeExtraWhitespaces: true,
    escapeWhitespaces: true,
  };
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function formatError(message: string): TokenizerError {
  return new TokenizerError('E_FORMAT', 'malformed protobuf: ' + message);
}

/** A cursor over one message's bytes [pos, end). Sub-messages get their own reader over a subarray. */
export class ProtoReader {
  private pos: number;
  private readonly end: number;

  constructor(private readonly buf: Uint8Array, start = 0, end = buf.length) {
    if (start < 0 || end > buf.length || start > end) throw formatError('bad reader bounds');
    this.pos = start;
    this.end = end;
  }

  get offset(): number {
    return this.pos;
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  /** Reads a varint as [low 32 bits (unsigned), high 32 bits (unsigned)]; at most 10 bytes. */
  private varintParts(): [number, number] {
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw formatError('truncated varint at byte ' + this.pos);
      const b = this.buf[this.pos++];
      const bits = b & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= (bits & 0x0f) << 28;
        hi |= bits >> 4;
      } else hi |= bits << (7 * i - 32);
      if ((b & 0x80) === 0) {
        if (i === 9 && b > 1) throw formatError('varint overflows 64 bits at byte ' + (this.pos - 1));
        return [lo >>> 0, hi >>> 0];
      }
    }
    throw formatError('varint longer than 10 bytes at byte ' + this.pos);
  }

  /** A varint as an unsigned number; throws if it does not fit in 2^53. */
  uint(): number {
    const [lo, hi] = this.varintParts();
    if (hi >= 0x200000) throw formatError('varint too large');
    return hi * 0x100000000 + lo;
  }

  /** A varint read as int32 (protobuf int32/enum semantics: the low 32 bits, two's complement). */
  int32(): number {
    return this.varintParts()[0] | 0;
  }

  /** A varint as a 64-bit signed bigint (int64). */
  int64(): bigint {
    const [lo, hi] = this.varintParts();
    return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo));
  }

  bool(): boolean {
    const [lo, hi] = this.varintParts();
    return lo !== 0 || hi !== 0;
  }

  /** Field key → [field number, wire type]. */
  key(): [number, number] {
    const k = this.uint();
    const field = Math.floor(k / 8);
    const wire = k % 8;
    if (field < 1 || field > 0x1fffffff) throw formatError('invalid field number ' + field + ' at byte ' + this.pos);
    return [field, wire];
  }

  fixed32Bytes(): Uint8Array {
    return this.take(4);
  }

  float(): number {
    const b = this.take(4);
    return new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
  }

  double(): number {
    const b = this.take(8);
    return new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
  }

  /** Length-delimited payload as a view (no copy). */
  bytes(): Uint8Array {
    const len = this.uint();
    if (len > this.end - this.pos) {
      throw formatError(`length ${len} at byte ${this.pos} runs past the end (${this.end - this.pos} left)`);
    }
    return this.take(len);
  }

  string(): string {
    const b = this.bytes();
    try {
      return utf8Strict.decode(b);
    } catch {
      throw formatError('string is not valid UTF-8 near byte ' + this.pos);
    }
  }

  /** A reader over a length-delimited sub-message. */
  message(): ProtoReader {
    const b = this.bytes();
    return new ProtoReader(b);
  }

  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varintParts();
        return;
      case WIRE_FIXED64:
        this.take(8);
        return;
      case WIRE_LEN:
        this.bytes();
        return;
      case WIRE_FIXED32:
        this.take(4);
        return;
      default:
        // groups (3/4) are not used by sentencepiece; 6/7 are invalid
        throw formatError(`unsupported wire type ${wire} before byte ${this.pos}`);
    }
  }

  private take(n: number): Uint8Array {
    if (n > this.end - this.pos) throw formatError(`need ${n} bytes at byte ${this.pos}, have ${this.end - this.pos}`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

/** Reads a field with the expected wire type, or throws. */
function expectWire(field: number, wire: number, expected: number, where: string): void {
  if (wire !== expected) throw formatError(`${where} field ${field} has wire type ${wire}, expected ${expected}`);
}

function parsePiece(r: ProtoReader, index: number): SentencePieceEntry {
  let piece: string | undefined;
  let score = 0;
  let type: number = PieceType.NORMAL;
  while (!r.done()) {
    const [field, wire] = r.key();
    if (field === 1) {
      expectWire(field, wire, WIRE_LEN, 'SentencePiece');
      piece = r.string();
    } else if (field === 2) {
      expectWire(field, wire, WIRE_FIXED32, 'SentencePiece');
      score = r.float();
    } else if (field === 3) {
      expectWire(field, wire, WIRE_VARINT, 'SentencePiece');
      type = r.int32();
    } else r.skip(wire);
  }
  if (piece === undefined) throw formatError(`piece ${index} has no text`);
  return { piece, score, type };
}

function parseTrainerSpec(r: ProtoReader): TrainerSpec {
  const t = defaultTrainerSpec();
  while (!r.done()) {
    const [field, wire] = r.key();
    const varint = (): number => {
      expectWire(field, wire, WIRE_VARINT, 'TrainerSpec');
      return r.int32();
    };
    const flag = (): boolean => {
      expectWire(field, wire, WIRE_VARINT, 'TrainerSpec');
      return r.bool();
    };
    const str = (): string => {
      expectWire(field, wire, WIRE_LEN, 'TrainerSpec');
      return r.string();
    };
    switch (field) {
      case 3: t.modelType = varint(); break;
      case 4: t.vocabSize = varint(); break;
      case 22: t.splitByWhitespace = flag(); break;
      case 24: t.treatWhitespaceAsSuffix = flag(); break;
      case 25: t.splitDigits = flag(); break;
      case 26: t.allowWhitespaceOnlyPieces = flag(); break;
      case 35: t.byteFallback = flag(); break;
      case 40: t.unkId = varint(); break;
      case 41: t.bosId = varint(); break;
      case 42: t.eosId = varint(); break;
      case 43: t.padId = varint(); break;
      case 44: t.unkSurface = str(); break;
      case 45: t.unkPiece = str(); break;
      case 46: t.bosPiece = str(); break;
      case 47: t.eosPiece = str(); break;
      case 48: t.padPiece = str(); break;
      default: r.skip(wire);
    }
  }
  return t;
}

function parseNormalizerSpec(r: ProtoReader): NormalizerSpec {
  const n = defaultNormalizerSpec();
  while (!r.done()) {
    const [field, wire] = r.key();
    switch (field) {
      case 1: expectWire(field, wire, WIRE_LEN, 'NormalizerSpec'); n.name = r.string(); break;
      case 2: expectWire(field, wire, WIRE_LEN, 'NormalizerSpec'); n.precompiledCharsmap = r.bytes().slice(); break;
      case 3: expectWire(field, wire, WIRE_VARINT, 'NormalizerSpec'); n.addDummyPrefix = r.bool(); break;
      case 4: expectWire(field, wire, WIRE_VARINT, 'NormalizerSpec'); n.removeExtraWhitespaces = r.bool(); break;
      case 5: expectWire(field, wire, WIRE_VARINT, 'NormalizerSpec'); n.escapeWhitespaces = r.bool(); break;
      default: r.skip(wire);
    }
  }
  return n;
}

/**
 * Parses a serialized SentencePiece ModelProto. Throws TokenizerError('E_FORMAT') on any malformed input,
 * and also when the result has no pieces (so random bytes that happen to parse are rejected).
 */
export function parseModelProto(buf: Uint8Array): ModelProto {
  const r = new ProtoReader(buf);
  const pieces: SentencePieceEntry[] = [];
  let trainerSpec = defaultTrainerSpec();
  let normalizerSpec = defaultNormalizerSpec();
  while (!r.done()) {
    const [field, wire] = r.key();
    if (field === 1) {
      expectWire(field, wire, WIRE_LEN, 'ModelProto');
      pieces.push(parsePiece(r.message(), pieces.length));
    } else if (field === 2) {
      expectWire(field, wire, WIRE_LEN, 'ModelProto');
      trainerSpec = parseTrainerSpec(r.message());
    } else if (field === 3) {
      expectWire(field, wire, WIRE_LEN, 'ModelProto');
      normalizerSpec = parseNormalizerSpec(r.message());
    } else r.skip(wire);
  }
  if (pieces.length === 0) throw formatError('no pieces (not a SentencePiece model?)');
  return { pieces, trainerSpec, normalizerSpec };
}
