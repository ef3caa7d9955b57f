// The common Tokenizer interface every tokenizer implementation in this folder satisfies
// (re-exported from index.ts, which also holds the loader).

export type TokenizerKind = 'sentencepiece' | 'llama2c' | 'gguf-llama' | 'gguf-gpt2' | 'hf-json';

export interface EncodeOptions {
  /** prepend the BOS id (ignored when the tokenizer has none) */
  bos?: boolean;
  /** append the EOS id (ignored when the tokenizer has none) */
  eos?: boolean;
}

export interface StreamDecoderOptions {
  /**
   * Drop the dummy-prefix space SentencePiece-style tokenizers put in front of the text, as `decode` does
   * (default true). Set it to false when streaming a continuation of text that is already on screen.
   * Tokenizers decoded through @huggingface/tokenizers follow their own decoder and ignore this.
   */
  skipLeadingSpace?: boolean;
}

export interface StreamDecoder {
  /** feed one id; returns the text completed by it (possibly '') */
  push(id: number): string;
  /** returns whatever is still held back (incomplete UTF-8 becomes U+FFFD) and resets nothing else */
  flush(): string;
}

export interface Tokenizer {
  readonly kind: TokenizerKind;
  readonly vocabSize: number;
  /** -1 if none */
  readonly bosId: number;
  /** -1 if none */
  readonly eosId: number;
  /** whether the model's convention is to prepend BOS */
  readonly addBos: boolean;
  /** ids of `text`; no BOS/EOS unless asked */
  encode(text: string, opts?: EncodeOptions): number[];
  /**
   * text of ids, skipping BOS/EOS/control tokens, SentencePiece's leading dummy-prefix space removed at the
   * start of the text, <0xXX> byte pieces assembled into UTF-8 (invalid sequences → U+FFFD)
   */
  decode(ids: readonly number[]): string;
  idToPiece(id: number): string;
  /**
   * streaming decoder for generation: push one id at a time, get back the newly completed text; holds back
   * incomplete UTF-8 byte sequences until they complete; flush() returns what is left
   */
  createDecoder(opts?: StreamDecoderOptions): StreamDecoder;
}
