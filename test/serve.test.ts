// `tailor serve` over real HTTP and WebSocket: the token is required for calls and events, Host and
// Origin are checked, static files cannot escape the renderer folder, replies are the contract's
// envelope, and events pushed by a job reach an authorised socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { WebSocket } from 'ws';
import { startServer, type Server } from '../electron/core/serve/server.js';
import { REPO_ROOT, tempDir } from './helpers/paths.js';

const dir = tempDir('tailor-serve-');
const MODEL = path.join(REPO_ROOT, 'resources', 'models', 'stories260K');

function request(s: Server, o: { method?: string; path: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: s.port, method: o.method ?? 'GET', path: o.path, headers: o.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    if (o.body) req.write(o.body);
    req.end();
  });
}
const call = (s: Server, channel: string, payload: unknown, headers: Record<string, string> = {}) =>
  request(s, { method: 'POST', path: `/api/call/${channel}`, body: JSON.stringify(payload), headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${s.token}`, ...headers } });

test('tailor serve: calls need the token, Host and Origin are checked, static files stay inside the renderer, events reach an authorised socket', async () => {
  const staticDir = path.join(dir, 'static');
  fs.mkdirSync(path.join(staticDir, 'assets'), { recursive: true });
  fs.writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html><title>t</title>');
  fs.writeFileSync(path.join(staticDir, 'assets', 'a.js'), 'console.log(1)');
  fs.writeFileSync(path.join(dir, 'secret.txt'), 'secret');
  const s = await startServer({ host: '127.0.0.1', port: 0, dbPath: path.join(dir, 'h.sqlite'), dataDir: path.join(dir, 'data'), staticDir });
  try {
    assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+\/#token=[A-Za-z0-9_-]{40,}$/);
    const ok = await call(s, 'models.list', {});
    assert.equal(ok.status, 200);
    const models = JSON.parse(ok.body) as { ok: boolean; value: Array<{ path: string }> };
    assert.equal(models.ok, true);
    assert.equal(models.value[0].path, MODEL);
    // the token, in constant time; a wrong one, none, or one in the wrong place are all refused
    for (const h of [{ Authorization: 'Bearer wrong' }, { Authorization: '' }, { Authorization: `Token ${s.token}` }])
      assert.equal((await call(s, 'models.list', {}, h)).status, 401);
    // DNS rebinding: a foreign Host is refused; a foreign Origin too
    assert.equal((await call(s, 'models.list', {}, { Host: 'evil.example:80' })).status, 421);
    assert.equal((await call(s, 'models.list', {}, { Origin: 'http://evil.example' })).status, 403);
    assert.equal((await call(s, 'models.list', {}, { Origin: `http://127.0.0.1:${s.port}` })).status, 200);
    // a bad payload is the contract's typed error; so is malformed JSON
    const bad = JSON.parse((await call(s, 'prune.plan', { model: 'x', ratio: 0.2, targetParams: null, layers: null })).body);
    assert.deepEqual(bad, { ok: false, error: { code: 'E_PAYLOAD', message: 'model: must be an absolute path', field: 'model' } });
    const junk = await request(s, { method: 'POST', path: '/api/call/models.list', body: '{', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${s.token}` } });
    assert.equal(junk.status, 400);
    // static: the renderer with a CSP; no way out of its folder
    const index = await request(s, { path: '/' });
    assert.equal(index.status, 200);
    assert.match(String(index.headers['content-security-policy']), /default-src 'self'/);
    assert.equal((await request(s, { path: '/assets/a.js' })).headers['content-type'], 'text/javascript; charset=utf-8');
    for (const p of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/%2e%2e/%2e%2e/secret.txt'])
      assert.equal((await request(s, { path: p })).status, 404, p);
    // events: refused without the token, delivered with it
    const refused = new WebSocket(`ws://127.0.0.1:${s.port}/api/events?token=nope`);
    await new Promise<void>((resolve) => refused.on('error', () => resolve()));
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}/api/events?token=${encodeURIComponent(s.token)}`);
    await new Promise<void>((resolve, reject) => {
      ws.on('open', () => resolve());
      ws.on('error', reject);
    });
    const events: Array<{ event: string; payload: { jobId?: string; delta?: string } }> = [];
    ws.on('message', (m) => events.push(JSON.parse(String(m))));
    const started = JSON.parse((await call(s, 'generate.start', { source: { kind: 'model', path: MODEL }, prompt: 'Once', maxTokens: 20, temperature: 0, topK: 0, topP: 1, seed: 0, side: 'a' })).body);
    assert.equal(started.ok, true);
    const t0 = Date.now();
    while (!events.some((e) => e.event === 'job.finished') && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 20));
    const fin = events.find((e) => e.event === 'job.finished')!;
    assert.equal(fin.payload.jobId, started.value.jobId);
    assert.ok(events.filter((e) => e.event === 'job.text').map((e) => e.payload.delta).join('').length > 5);
    ws.close();
  } finally {
    await s.close();
  }
});
