// electron-sqlite.mjs — builds better-sqlite3 once more, for Electron's ABI, into
// native/build/electron/better_sqlite3.node, leaving the Node build in node_modules untouched (so
// `npm test` under Node and `npm start` under Electron both work from one checkout). The Electron main
// process points better-sqlite3 at this file (TAILOR_SQLITE_BINDING → its `nativeBinding` option).
// Needs Electron's headers (downloaded by @electron/rebuild on first use, or a prebuilt binary).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { rebuild } from '@electron/rebuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const electronVersion = JSON.parse(fs.readFileSync(path.join(root, 'node_modules', 'electron', 'package.json'), 'utf8')).version;
const sqlite = path.join(root, 'node_modules', 'better-sqlite3');
const sqliteVersion = JSON.parse(fs.readFileSync(path.join(sqlite, 'package.json'), 'utf8')).version;
const outDir = path.join(root, 'native', 'build', 'electron');
const out = path.join(outDir, 'better_sqlite3.node');
const stamp = path.join(outDir, 'better_sqlite3.stamp');
const want = `electron ${electronVersion} better-sqlite3 ${sqliteVersion} ${process.platform}-${process.arch}`;

if (fs.existsSync(out) && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === want) {
  console.log(`better-sqlite3 for Electron ${electronVersion}: up to date`);
  process.exit(0);
}
const work = path.join(outDir, 'work');
fs.rmSync(work, { recursive: true, force: true });
fs.mkdirSync(path.join(work, 'node_modules'), { recursive: true });
fs.writeFileSync(path.join(work, 'package.json'), JSON.stringify({ name: 'tailor-electron-sqlite', private: true, dependencies: { 'better-sqlite3': sqliteVersion } }));
fs.cpSync(sqlite, path.join(work, 'node_modules', 'better-sqlite3'), { recursive: true, filter: (p) => !p.includes(`${path.sep}build${path.sep}`) });
for (const dep of ['bindings', 'file-uri-to-path']) {
  const d = path.join(root, 'node_modules', dep);
  if (fs.existsSync(d)) fs.cpSync(d, path.join(work, 'node_modules', dep), { recursive: true });
}
await rebuild({ buildPath: work, electronVersion, onlyModules: ['better-sqlite3'], force: true });
const built = path.join(work, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
fs.copyFileSync(built, `${out}.tmp`);
fs.renameSync(`${out}.tmp`, out);
fs.writeFileSync(stamp, want);
fs.rmSync(work, { recursive: true, force: true });
console.log(`better-sqlite3 for Electron ${electronVersion}: ${path.relative(root, out)}`);
