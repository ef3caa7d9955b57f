#!/usr/bin/env node
// main.ts — the `tailor` command line. Each verb is a thin layer over the same electron/core API the
// desktop app uses; results go to stdout (text or --json), progress and errors to stderr.
import { parseArgs } from 'node:util';
import { EngineError, toEngineError } from '../engine/errors.js';
import { COMMANDS, usage, type CommandContext } from './commands.js';

export class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (!verb || verb === '--help' || verb === '-h' || verb === 'help') {
    process.stdout.write(usage());
    return 0;
  }
  if (verb === '--version' || verb === '-v') {
    const { version } = await import('./version.js');
    process.stdout.write(version() + '\n');
    return 0;
  }
  const cmd = COMMANDS[verb];
  if (!cmd) throw new UsageError(`unknown command "${verb}"`);
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: cmd.options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${verb}: ${(e as Error).message}`);
  }
  if ((parsed.values as Record<string, unknown>).help) {
    process.stdout.write(cmd.help + '\n');
    return 0;
  }
  const ac = new AbortController();
  const onSigint = () => {
    if (ac.signal.aborted) process.exit(130);
    process.stderr.write('\ntailor: cancelling…\n');
    ac.abort();
  };
  process.on('SIGINT', onSigint);
  const ctx: CommandContext = {
    values: parsed.values as Record<string, string | boolean | string[] | undefined>,
    positionals: parsed.positionals,
    signal: ac.signal,
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    usageError: (m) => new UsageError(`${verb}: ${m}`),
  };
  try {
    await cmd.run(ctx);
  } finally {
    process.off('SIGINT', onSigint);
  }
  return 0;
}

const HINTS: Partial<Record<string, string>> = {
  E_IO: 'Check that the path exists and is readable.',
  E_FORMAT: 'The file is damaged or is not a model in a supported format (Hugging Face folder, GGUF, llama2.c .bin); re-download or re-export it.',
  E_UNSUPPORTED: 'Tailor reads LLaMA-family models with F32/F16/BF16 (and Q8_0 GGUF) weights.',
  E_SHAPE: 'The tensors do not match the configuration; the model files may be mixed up or incomplete.',
  E_NO_TOKENIZER: 'Put the tokenizer (tokenizer.json or tokenizer.model, or tok*.bin for llama2.c) beside the model.',
  E_CANCELLED: '',
};

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof UsageError) {
      process.stderr.write(`tailor: ${e.message}\nRun "tailor --help" for usage.\n`);
      process.exit(2);
    }
    const te = e as { name?: string; code?: string; message?: string };
    if (te?.name === 'HistoryError') {
      process.stderr.write(`tailor: error [${te.code}]: ${te.message}\n`);
      process.exit(1);
    }
    if (te?.name === 'TaskError' || (typeof te?.code === 'string' && te.code.startsWith('E_TASK'))) {
      process.stderr.write(`tailor: error [${te.code}]: ${te.message}\nRun "tailor eval --list-tasks" for the built-in tasks.\n`);
      process.exit(1);
    }
    const err = e instanceof EngineError ? e : toEngineError(e);
    if (err.code === 'E_CANCELLED') {
      process.stderr.write('tailor: cancelled\n');
      process.exit(130);
    }
    const hint = err.code === 'E_UNSUPPORTED' && /CUDA backend/.test(err.message)
      ? '--backend auto or cpu runs on the CPU; `tailor info MODEL` shows the CUDA status.'
      : HINTS[err.code];
    process.stderr.write(`tailor: error [${err.code}]: ${err.message}\n${hint ? hint + '\n' : ''}`);
    if (err.code === 'E_INTERNAL' && process.env.TAILOR_DEBUG) process.stderr.write(String((e as Error).stack) + '\n');
    process.exit(1);
  },
);
