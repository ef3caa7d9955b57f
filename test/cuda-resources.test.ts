// What the CPU emulator cannot see: each CUDA kernel's registers and shared memory against the hardware's
// per-block limits, for every architecture the engine is built for. ptxas (through nvcc --resource-usage)
// gives the registers per thread and the static shared memory of every kernel as compiled for each sm; the
// emulator (CUEMU_LAUNCH_LOG) gives the block size of every launch the parity harness makes. A block whose
// warps need more than the 65,536 registers an SM has for one block (registers are given to a warp in units
// of 256), or more than 48 KiB of static shared memory, is refused on a GPU with "too many resources
// requested for launch" — here it fails the test, before a GPU's minutes are spent on it. Every kernel
// that is compiled must also be launched by the harness (so that none goes unchecked, here or for parity).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { engineInfo } from '../electron/core/engine/engine.js';
import { REPO_ROOT, tempDir } from './helpers/paths.js';

const CUDACHECK_EMU = path.join(REPO_ROOT, 'native', 'build', 'tailor_cudacheck_emu');
const CUDA_DIR = path.join(REPO_ROOT, 'native', 'cuda');
const REGS_PER_BLOCK = 65536; // sm_75 … sm_90
const SMEM_STATIC = 48 * 1024;

interface Usage { arch: string; mangled: string; name: string; regs: number; smem: number; spills: number }

/** the kernel's own name: "void tailor::cuda::(anonymous namespace)::gemm_tiled_kernel<float, float>(float*, …)" → gemm_tiled_kernel */
function baseName(demangled: string): string {
  const s = demangled.replace(/\(anonymous namespace\)::/g, '');
  const m = /([A-Za-z_]\w*)(<[^()]*>)?\(/.exec(s);
  return m ? m[1] : s;
}

/** ptxas's account of one .cu file compiled for one sm (nvcc -cubin --resource-usage, the build's flags) */
function compile(file: string, arch: string, out: string): Promise<{ code: number | null; text: string }> {
  const args = ['-std=c++17', '-O3', '-DNDEBUG', '-DTAILOR_HAVE_CUBLASLT', '-cubin', '-gencode', `arch=compute_${arch},code=sm_${arch}`, '--resource-usage',
    '-I', CUDA_DIR, '-I', path.join(REPO_ROOT, 'native', 'engine'), '-o', out, file];
  return new Promise((resolve) => {
    const p = spawn('nvcc', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    p.stdout.on('data', (d) => (text += d));
    p.stderr.on('data', (d) => (text += d));
    p.on('close', (code) => resolve({ code, text }));
  });
}

function parse(text: string, arch: string): Omit<Usage, 'name'>[] {
  const out: Omit<Usage, 'name'>[] = [];
  let cur: Omit<Usage, 'name'> | null = null;
  for (const l of text.split('\n')) {
    const entry = /Compiling entry function '([^']+)' for 'sm_(\d+)'/.exec(l);
    if (entry) {
      cur = { arch, mangled: entry[1], regs: NaN, smem: 0, spills: 0 };
      out.push(cur);
      continue;
    }
    if (!cur) continue;
    const spill = /(\d+) bytes spill stores/.exec(l);
    if (spill) cur.spills = Number(spill[1]);
    const used = /Used (\d+) registers/.exec(l);
    if (used) {
      cur.regs = Number(used[1]);
      const sm = /(\d+) bytes smem/.exec(l);
      cur.smem = sm ? Number(sm[1]) : 0;
    }
  }
  return out;
}

const c = engineInfo().cuda;
const nvcc = spawnSync('nvcc', ['--version'], { encoding: 'utf8' }).status === 0;
const skip = !c.built ? 'the engine was built without CUDA' : !nvcc ? 'no nvcc on PATH' : !fs.existsSync(CUDACHECK_EMU) ? `${CUDACHECK_EMU} is not built` : false;

test("every CUDA kernel fits the hardware's per-block limits at every architecture built (ptxas's registers and shared memory, the emulator's block sizes)", { skip, timeout: 900_000 }, async (t) => {
  const dir = tempDir('tailor-cuda-resources-');
  try {
    // the block sizes: every launch of the parity harness on the emulator (kernels, whole models, training, pruning)
    const log = path.join(dir, 'launches.txt');
    const r = spawnSync(CUDACHECK_EMU, ['--random-model'], {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
      timeout: 300_000,
      env: { ...process.env, TAILOR_CUEMU_CC: '80', TAILOR_CUBLASLT: '0', CUEMU_LAUNCH_LOG: log },
    });
    assert.equal(r.status, 0, `tailor_cudacheck_emu failed:\n${(r.stdout ?? '') + (r.stderr ?? '')}`);
    const threads = new Map<string, number>(); // kernel → the largest block it is launched with
    for (const l of fs.readFileSync(log, 'utf8').trim().split('\n')) {
      const m = /^(.*) (\d+)$/.exec(l);
      assert.ok(m, `launch log line: ${l}`);
      const name = m[1].replace(/[()]/g, '').replace(/<.*$/, '').trim();
      threads.set(name, Math.max(threads.get(name) ?? 0, Number(m[2])));
    }
    // the resources: every .cu for every architecture of this build, two compilations at a time
    const archs = (c.architectures ?? '').split(',').map((a) => a.trim()).filter(Boolean);
    assert.ok(archs.length > 0, `the build's architectures (${c.architectures})`);
    const files = fs.readdirSync(CUDA_DIR).filter((f) => f.endsWith('.cu'));
    const jobs = files.flatMap((f) => archs.map((a) => ({ f, a })));
    const usage: Omit<Usage, 'name'>[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < jobs.length) {
        const { f, a } = jobs[next++];
        const res = await compile(path.join(CUDA_DIR, f), a, path.join(dir, `${f}.${a}.cubin`));
        assert.equal(res.code, 0, `nvcc ${f} for sm_${a}:\n${res.text}`);
        usage.push(...parse(res.text, a));
      }
    };
    await Promise.all([worker(), worker()]);
    const demangled = spawnSync('c++filt', { input: usage.map((u) => u.mangled).join('\n'), encoding: 'utf8' }).stdout.split('\n');
    const rows: Usage[] = usage.map((u, i) => ({ ...u, name: baseName(demangled[i] || u.mangled) }));

    const problems: string[] = [];
    const unlaunched = new Set<string>();
    for (const u of rows) {
      assert.ok(Number.isFinite(u.regs), `ptxas gave no register count for ${u.mangled} (sm_${u.arch})`);
      const n = threads.get(u.name);
      if (n === undefined) {
        unlaunched.add(u.name);
        continue;
      }
      const warps = Math.ceil(n / 32);
      const perWarp = Math.ceil((u.regs * 32) / 256) * 256;
      if (warps * perWarp > REGS_PER_BLOCK) problems.push(`${u.name} (sm_${u.arch}): ${u.regs} registers × ${n} threads = ${warps * perWarp} > ${REGS_PER_BLOCK}`);
      if (u.smem > SMEM_STATIC) problems.push(`${u.name} (sm_${u.arch}): ${u.smem} bytes of static shared memory > ${SMEM_STATIC}`);
    }
    // the table, by kernel: the most registers and shared memory over its instantiations and architectures
    const byName = new Map<string, { regs: number; smem: number; spills: number; archs: Set<string> }>();
    for (const u of rows) {
      const e = byName.get(u.name) ?? { regs: 0, smem: 0, spills: 0, archs: new Set<string>() };
      e.regs = Math.max(e.regs, u.regs);
      e.smem = Math.max(e.smem, u.smem);
      e.spills = Math.max(e.spills, u.spills);
      e.archs.add(u.arch);
      byName.set(u.name, e);
    }
    for (const [name, e] of [...byName].sort()) {
      const n = threads.get(name);
      const used = n ? Math.ceil(n / 32) * Math.ceil((e.regs * 32) / 256) * 256 : 0;
      t.diagnostic(`${name.padEnd(32)} ${String(n ?? '-').padStart(4)} threads  ≤${String(e.regs).padStart(3)} regs (${n ? `${((100 * used) / REGS_PER_BLOCK).toFixed(0)} % of a block's` : 'not launched'})  ` +
        `${String(e.smem).padStart(5)} B smem  spills ≤${e.spills} B  sm ${[...e.archs].sort().join(',')}`);
    }
    assert.deepEqual(problems, [], problems.join('\n'));
    assert.deepEqual([...unlaunched].sort(), [], 'kernels compiled but never launched by tailor_cudacheck_emu --random-model (unchecked)');
    assert.ok(byName.size >= 30, `${byName.size} kernels found`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
