// args.ts — the benchmark scripts' flags: `--name value` pairs, and `--name` alone for true.
export function parseArgs(argv: string[]): Map<string, string> {
  const a = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (!k.startsWith('--')) throw new Error(`unexpected argument ${k}`);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) a.set(k.slice(2), 'true');
    else {
      a.set(k.slice(2), next);
      i++;
    }
  }
  return a;
}
