// server.ts — `tailor serve`: the workbench's contract over HTTP + WebSocket, so the same renderer runs
// in a browser (against a GPU workstation, or in Chromium for end-to-end tests where no Electron binary
// exists). Requests are POST /api/call/<channel> with a JSON payload and a bearer token; events arrive
// on the WebSocket /api/events?token=…; the built renderer is served as static files with a strict CSP.
// It listens on 127.0.0.1 unless told otherwise, checks Host (against DNS rebinding) and Origin, and
// compares tokens in constant time.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { EventName, Events } from '../api/contract.js';
import { Workbench } from '../service/workbench.js';

export interface ServeOptions {
  host: string;
  port: number;
  dbPath: string;
  dataDir: string;
  /** the built renderer (index.html and assets) */
  staticDir: string;
  /** default: 32 random bytes */
  token?: string;
}

export interface Server {
  url: string;
  token: string;
  port: number;
  workbench: Workbench;
  close(): Promise<void>;
}

const MAX_BODY = 4 << 20;
const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml',
  '.png': 'image/png', '.ico': 'image/x-icon', '.json': 'application/json', '.woff2': 'font/woff2', '.map': 'application/json',
};

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a), y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

function send(res: http.ServerResponse, status: number, body: string | Buffer, type = 'application/json; charset=utf-8', extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer', ...extra });
  res.end(body);
}
const fail = (res: http.ServerResponse, status: number, code: string, message: string) => send(res, status, JSON.stringify({ ok: false, error: { code, message } }));

export async function startServer(o: ServeOptions): Promise<Server> {
  const token = o.token ?? crypto.randomBytes(32).toString('base64url');
  const sockets = new Set<WebSocket>();
  const emit = <E extends EventName>(event: E, payload: Events[E]) => {
    const msg = JSON.stringify({ event, payload });
    for (const s of sockets) if (s.readyState === s.OPEN) s.send(msg);
  };
  const workbench = await Workbench.open({ dbPath: o.dbPath, dataDir: o.dataDir, mode: 'serve', emit });
  let port = o.port;
  const allowedHosts = () => new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `${o.host}:${port}`]);
  const hostOk = (req: http.IncomingMessage) => allowedHosts().has(String(req.headers.host ?? ''));
  const originOk = (req: http.IncomingMessage) => {
    const origin = req.headers.origin;
    return origin === undefined || allowedHosts().has(origin.replace(/^https?:\/\//, ''));
  };
  const staticRoot = path.resolve(o.staticDir);

  const server = http.createServer((req, res) => {
    void (async () => {
      if (!hostOk(req)) return fail(res, 421, 'E_AUTH', 'unexpected Host header');
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname.startsWith('/api/call/')) {
        if (req.method !== 'POST') return fail(res, 405, 'E_PAYLOAD', 'use POST');
        if (!originOk(req)) return fail(res, 403, 'E_AUTH', 'cross-origin requests are refused');
        const auth = String(req.headers.authorization ?? '');
        if (!auth.startsWith('Bearer ') || !sameToken(auth.slice(7), token)) return fail(res, 401, 'E_AUTH', 'a valid token is required (open the URL printed by tailor serve)');
        if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) return fail(res, 415, 'E_PAYLOAD', 'the body must be application/json');
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const c of req) {
          size += (c as Buffer).length;
          if (size > MAX_BODY) return fail(res, 413, 'E_PAYLOAD', 'the request is too large');
          chunks.push(c as Buffer);
        }
        let payload: unknown;
        try {
          payload = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
        } catch {
          return fail(res, 400, 'E_PAYLOAD', 'the body is not valid JSON');
        }
        const reply = await workbench.call(decodeURIComponent(url.pathname.slice('/api/call/'.length)), payload);
        return send(res, 200, JSON.stringify(reply));
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') return fail(res, 405, 'E_PAYLOAD', 'method not allowed');
      const rel = url.pathname === '/' ? 'index.html' : decodeURIComponent(url.pathname).replace(/^\/+/, '');
      const file = path.resolve(staticRoot, rel);
      if (!file.startsWith(staticRoot + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile())
        return send(res, 404, 'not found', 'text/plain; charset=utf-8');
      return send(res, 200, fs.readFileSync(file), TYPES[path.extname(file)] ?? 'application/octet-stream',
        { 'Content-Security-Policy': CSP, 'X-Frame-Options': 'DENY' });
    })().catch((e: unknown) => {
      if (!res.headersSent) fail(res, 500, 'E_INTERNAL', (e as Error).message);
    });
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/api/events' || !hostOk(req) || !originOk(req) || !sameToken(url.searchParams.get('token') ?? '', token)) {
      socket.write('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n');
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      ws.on('message', () => undefined); // the socket is one-way: requests go over HTTP
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  port = (server.address() as { port: number }).port;
  const shownHost = o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host.includes(':') ? `[${o.host}]` : o.host;
  return {
    url: `http://${shownHost}:${port}/#token=${token}`, token, port, workbench,
    close: async () => {
      for (const s of sockets) s.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
      await new Promise<void>((r) => server.close(() => r()));
      await workbench.shutdown();
    },
  };
}
