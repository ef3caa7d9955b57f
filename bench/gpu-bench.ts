// gpu-bench.ts — the GPU benchmark of `npm run test:gpu`, in one command: matrix-product throughput of the CUDA
// kernels as a share of the device's dense bf16 peak (tailor_cudacheck --bench-only), then LoRA training and
// the importance pass on Tailor's CUDA backend side by side with PyTorch on the same GPU, model and batches
// (train-bench.js --backend cuda), in fp32 and then on bf16 base weights (--weights bf16). Prints the tables and writes them, with the raw JSON, to
// out/gpu-bench/gpu-bench-<time>.{md,json} (out/ is gitignored) and, when OUT is set, to $OUT/gpu-bench.{md,json},
// after each part as well as at the end (so a run that test:gpu stops at its deadline keeps what it finished).
//
// Without a usable CUDA device it prints "no CUDA device: … — benchmark skipped" and exits 0: the benchmark
// is not a test, and a machine without a GPU has nothing to measure. Exit 1 when a part failed to run.
//
//   node dist/bench/gpu-bench.js [--steps 10] [--models 15M,110M] [--batch B] [--seq-len T] [--parts matmul,train,bf16]
//                                [--cudacheck PATH]   (the harness for the products; default native/build/tailor_cudacheck;
//                                                      the tests rehearse this script with the emulator's, tailor_cudacheck_emu)
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { engineInfo } from '../electron/core/engine/engine.js';
import { repoRoot } from './paths.js';
import { parseArgs } from './args.js';


function git(args: string[]): string {
  const r = spawnSync('git', args, { cwd: repoRoot(), encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

function main(): number {
  const a = parseArgs(process.argv.slice(2));
  const root = repoRoot();
  const c = engineInfo().cuda;
  if (!c.available) {
    console.log(`no CUDA device: ${c.reason ?? 'unknown'} — benchmark skipped`);
    return 0;
  }
  const parts = new Set((a.get('parts') ?? 'matmul,train,bf16').split(','));
  const t0 = Date.now();
  const dev = c.devices.find((d) => d.supported)!;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const commit = git(['rev-parse', '--short', 'HEAD']);
  const dirty = git(['status', '--porcelain', '--untracked-files=no']) ? ' (with uncommitted changes)' : '';
  const md: string[] = [
    `# GPU benchmark, ${new Date().toISOString()}`,
    '',
    `Device ${dev.index}: ${dev.name} (sm ${dev.computeCapability}, ${dev.multiprocessors} SMs, ${(dev.totalMemory / 2 ** 30).toFixed(1)} GiB); ` +
      `CUDA runtime ${c.runtimeVersion}, driver CUDA ${c.driverVersion}; kernels for sm ${c.architectures}; ${os.cpus().length} CPU threads; ` +
      `commit ${commit || 'unknown'}${dirty}.`,
    '',
    `cuBLASLt (opened at run time; the matrix products go through it where it is on): ${c.cublasLt ?? 'unknown'}.`,
  ];
  const json: Record<string, unknown> = { date: new Date().toISOString(), device: dev, cuda: { ...c, devices: undefined }, commit };
  let failed = 0;
  // written again after each part, so that a run stopped at test:gpu's deadline keeps the parts it finished
  const dir = path.join(root, 'out', 'gpu-bench');
  const base = path.join(dir, `gpu-bench-${stamp}`);
  const save = (footer: string): string => {
    const text = [...md, '', footer].join('\n') + '\n';
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(`${base}.md`, text);
    fs.writeFileSync(`${base}.json`, JSON.stringify(json, null, 2) + '\n');
    if (process.env.OUT) {
      fs.mkdirSync(process.env.OUT, { recursive: true });
      fs.writeFileSync(path.join(process.env.OUT, 'gpu-bench.md'), text);
      fs.writeFileSync(path.join(process.env.OUT, 'gpu-bench.json'), JSON.stringify(json, null, 2) + '\n');
    }
    return text;
  };
  const partial = () => save(`(unfinished: ${((Date.now() - t0) / 1000).toFixed(0)} s so far; the parts above are complete)`);

  if (parts.has('matmul')) {
    const exe = a.has('cudacheck') ? path.resolve(a.get('cudacheck')!) : path.join(root, 'native', 'build', 'tailor_cudacheck');
    md.push('', '## Matrix products (tailor_cudacheck --bench-only)', '');
    if (!fs.existsSync(exe)) {
      md.push(`not run: ${exe} is missing (build with \`npm run build:native -- --CDTAILOR_CUDA=ON\`)`);
      failed++;
    } else {
      process.stderr.write('tailor_cudacheck --bench-only ...\n');
      const r = spawnSync(exe, ['--bench-only'], { encoding: 'utf8', timeout: 90_000, killSignal: 'SIGKILL', maxBuffer: 1 << 24 });
      const out = (r.stdout ?? '') + (r.stderr ?? '');
      json.matmul = { exit: r.status, output: out };
      // the device line, the table and the attention lines (the harness's banner is in the header already)
      const keep: string[] = [];
      const lines = out.split('\n');
      lines.forEach((l, i) => {
        if (!/^(bench |device: |\||attention )/.test(l)) return;
        // a blank line before each table (a header: the next line is |---) and before the attention lines
        const kind = (x: string): string => (x.startsWith('|') ? '|' : x.slice(0, 2));
        const header = l.startsWith('|') && (lines[i + 1] ?? '').startsWith('|---');
        if (keep.length && keep[keep.length - 1] !== '' && (header || (kind(l) === 'at' && kind(keep[keep.length - 1]) !== 'at'))) keep.push('');
        keep.push(l);
      });
      md.push(...keep);
      if (r.status !== 0) {
        failed++;
        md.push('', `tailor_cudacheck exited ${r.error ? String(r.error) : r.status}:`, '```', out.trim().split('\n').slice(-20).join('\n'), '```');
      }
    }
    partial();
  }

  // LoRA training (and, in fp32, the importance pass) against PyTorch: fp32 on both sides, then bf16 base weights
  // with fp32 LoRA on both sides (the configuration the memory plan is for); one train-bench run each
  const runs: { part: string; weights: 'f32' | 'bf16'; title: string }[] = [
    { part: 'train', weights: 'f32', title: 'LoRA training and the importance pass, fp32: Tailor (CUDA backend) vs PyTorch on the same GPU' },
    { part: 'bf16', weights: 'bf16', title: 'LoRA training on bf16 base weights (fp32 LoRA and AdamW): Tailor (CUDA backend) vs PyTorch on the same GPU' },
  ];
  for (const run of runs) {
    if (!parts.has(run.part)) continue;
    md.push('', `## ${run.title}`, '');
    const jsonFile = path.join(os.tmpdir(), `tailor-gpu-${run.part}-${process.pid}.json`);
    const self = path.dirname(fileURLToPath(import.meta.url));
    const args = [path.join(self, 'train-bench.js'), '--backend', 'cuda', '--weights', run.weights, '--steps', a.get('steps') ?? '10', '--models', a.get('models') ?? '15M,110M', '--timeout', '150', '--json', jsonFile];
    for (const k of ['batch', 'seq-len', 'python', 'cache']) if (a.has(k)) args.push(`--${k}`, a.get(k)!);
    process.stderr.write(`node ${args.map((x) => path.relative(root, x) || x).join(' ')}\n`);
    // progress lines go straight to the terminal; the tables come back on stdout
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 300_000, killSignal: 'SIGKILL', maxBuffer: 1 << 24, stdio: ['ignore', 'pipe', 'inherit'] });
    md.push((r.stdout ?? '').trim());
    if (r.status !== 0) {
      failed++;
      md.push('', `train-bench exited ${r.error ? String(r.error) : r.status}${r.status === 77 ? ' (no CUDA device)' : ''}`);
    }
    if (fs.existsSync(jsonFile)) {
      json[run.part] = JSON.parse(fs.readFileSync(jsonFile, 'utf8'));
      fs.rmSync(jsonFile, { force: true });
    }
    partial();
  }

  const text = save(`(${((Date.now() - t0) / 1000).toFixed(0)} s; \`node dist/bench/gpu-bench.js\`, part of \`npm run test:gpu\`; see bench/README.md, "GPU (CUDA backend)".)`);
  console.log('\n' + text);
  const written = [`${path.relative(root, base)}.md`, `${path.relative(root, base)}.json`, ...(process.env.OUT ? ['$OUT/gpu-bench.{md,json}'] : [])];
  console.log(`written: ${written.join(', ')}`);
  return failed ? 1 : 0;
}

try {
  process.exitCode = main();
} catch (e) {
  console.error(e instanceof Error ? e.stack ?? e.message : String(e));
  process.exitCode = 1;
}
