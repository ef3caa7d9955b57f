// Test helper: Hugging Face tokenizer.json files built the way their converters build them — a
// Llama-2-style one from a SentencePiece model (byte-fallback BPE with merges from the piece scores, as
// transformers' LlamaConverter writes it) and a GPT-2-style byte-level BPE trained here on real text.
import type { ModelProto } from '../../electron/core/tokenizer/index.js';

/** A Llama-2-style tokenizer.json (Prepend/Replace normalizer, byte-fallback BPE, merges from scores). */
export function llamaStyleTokenizerJson(model: ModelProto): Record<string, unknown> {
  const vocab = Object.fromEntries(model.pieces.map((p, i) => [p.piece, i]));
  const merges: Array<[string, string, number]> = [];
  model.pieces.forEach((p) => {
    if (p.type !== 1) return;
    const chars = Array.from(p.piece);
    for (let k = 1; k < chars.length; k++) {
      const l = chars.slice(0, k).join('');
      const r = chars.slice(k).join('');
      if (l in vocab && r in vocab) merges.push([l, r, p.score]);
    }
  });
  merges.sort((a, b) => b[2] - a[2] || vocab[a[0]] - vocab[b[0]] || vocab[a[1]] - vocab[b[1]]);
  return {
    added_tokens: [0, 1, 2].map((id) => ({ id, content: model.pieces[id].piece, special: true, normalized: false })),
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '\u2581' }, { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' }] },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: { type: 'BPE', unk_token: '<unk>', fuse_unk: true, byte_fallback: true, vocab, merges: merges.map(([l, r]) => [l, r]) },
  };
}

/** GPT-2's byte → printable character table. */
export function bytesToUnicode(): string[] {
  const keep = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCharCode(keep(b) ? b : 256 + n++);
  return out;
}

const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * A GPT-2-style byte-level BPE tokenizer.json trained on `text`: the 256 byte symbols, `nMerges` merges
 * (the most frequent adjacent pair each time, ties broken by the pair's text), then `specials` as added
 * special tokens.
 */
export function trainByteLevelBpe(text: string, nMerges: number, specials: string[]): Record<string, unknown> {
  const table = bytesToUnicode();
  const enc = new TextEncoder();
  const freq = new Map<string, number>();
  for (const w of text.match(GPT2_SPLIT) ?? []) {
    const sym = Array.from(enc.encode(w), (b) => table[b]).join('\u0000');
    freq.set(sym, (freq.get(sym) ?? 0) + 1);
  }
  let words = [...freq].map(([w, f]) => ({ syms: w.split('\u0000'), f }));
  const vocab: string[] = [...table];
  const merges: Array<[string, string]> = [];
  while (merges.length < nMerges) {
    const pairs = new Map<string, number>();
    for (const { syms, f } of words) for (let i = 0; i + 1 < syms.length; i++) {
      const k = syms[i] + '\u0000' + syms[i + 1];
      pairs.set(k, (pairs.get(k) ?? 0) + f);
    }
    let best = '';
    let bestN = 0;
    for (const [k, n] of pairs) if (n > bestN || (n === bestN && k < best)) [best, bestN] = [k, n];
    if (bestN < 2) break;
    const [l, r] = best.split('\u0000');
    merges.push([l, r]);
    vocab.push(l + r);
    words = words.map(({ syms, f }) => {
      const out: string[] = [];
      for (let i = 0; i < syms.length; i++) {
        if (i + 1 < syms.length && syms[i] === l && syms[i + 1] === r) {
          out.push(l + r);
          i++;
        } else out.push(syms[i]);
      }
      return { syms: out, f };
    });
  }
  const n = vocab.length;
  return {
    version: '1.0',
    added_tokens: specials.map((content, i) => ({ id: n + i, content, special: true, normalized: false, lstrip: false, rstrip: false, single_word: false })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, fuse_unk: false, byte_fallback: false, vocab: Object.fromEntries(vocab.map((t, i) => [t, i])), merges },
  };
}
