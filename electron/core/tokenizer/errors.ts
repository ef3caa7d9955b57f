// Tokenizer errors: one error class with a machine-readable `code` for every tokenizer failure
// (malformed files, missing tokenizers, bad ids), so callers can branch on the code, not on the text.

/**
 * Codes in use:
 * - `E_FORMAT`       a tokenizer file or metadata object is malformed / truncated / inconsistent
 * - `E_NO_TOKENIZER` no tokenizer could be found for a model path
 * - `E_UNSUPPORTED`  the tokenizer kind or model type is recognised but not supported
 * - `E_RANGE`        a token id is outside the vocabulary
 * - `E_IO`           a file could not be read
 */
export class TokenizerError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TokenizerError';
    this.code = code;
  }
}
