// api.ts — the renderer's one transport to the back end, implementing the contract's TailorApi: the
// Electron preload bridge (window.tailor) when present, otherwise HTTP + WebSocket against `tailor serve`
// (token from #token=…, kept in sessionStorage). Replies are unwrapped; failures throw ApiError.
import type { Channel, ErrorCode, EventName, Events, Reply, Req, Res, TailorApi, WireError } from '../../../electron/core/api/contract';

/** A failed call: the contract's WireError as an exception. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly field: string | undefined;
  constructor(e: WireError) {
    super(e.message);
    this.name = 'ApiError';
    this.code = e.code;
    this.field = e.field;
  }
}

/** Any thrown value as a WireError-like record, for showing to the user. */
export function toWire(e: unknown): WireError {
  if (e instanceof ApiError) return { code: e.code, message: e.message, field: e.field };
  if (e instanceof Error) return { code: 'E_INTERNAL', message: e.message };
  return { code: 'E_INTERNAL', message: String(e) };
}

/** The preload bridge as Electron exposes it (invoke resolves to the Reply envelope). */
interface Bridge {
  invoke(channel: string, payload: unknown): Promise<Reply<unknown>>;
  on(event: string, listener: (payload: unknown) => void): () => void;
}

declare global {
  interface Window { tailor?: Bridge }
}

/** The transport plus connection state (always "up" over IPC). */
export interface Transport extends TailorApi {
  readonly mode: 'bridge' | 'http';
  /** called with true/false as the event stream comes and goes; returns an unsubscribe */
  onConnection(listener: (up: boolean) => void): () => void;
  /** a message for the user when the transport cannot work at all (no token), else null */
  readonly problem: string | null;
  /** called when the back end refuses the access token (E_AUTH); returns an unsubscribe */
  onAuthFailure(listener: (message: string) => void): () => void;
}

function unwrap<T>(r: Reply<T> | undefined | null): T {
  if (!r || typeof r !== 'object' || !('ok' in r)) throw new ApiError({ code: 'E_INTERNAL', message: 'malformed reply from the back end' });
  if (r.ok) return r.value;
  throw new ApiError(r.error ?? { code: 'E_INTERNAL', message: 'unknown error' });
}

class BridgeTransport implements Transport {
  readonly mode = 'bridge' as const;
  readonly problem = null;
  constructor(private readonly bridge: Bridge) {}
  async invoke<C extends Channel>(channel: C, payload: Req<C>): Promise<Res<C>> {
    let reply: Reply<unknown>;
    try {
      reply = await this.bridge.invoke(channel, payload);
    } catch (e) {
      throw new ApiError({ code: 'E_INTERNAL', message: `${channel}: ${(e as Error)?.message ?? String(e)}` });
    }
    return unwrap(reply) as Res<C>;
  }
  on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void {
    return this.bridge.on(event, listener as (p: unknown) => void);
  }
  onConnection(listener: (up: boolean) => void): () => void {
    listener(true);
    return () => {};
  }
  onAuthFailure(): () => void {
    return () => {};
  }
}

const TOKEN_KEY = 'tailor.token';

/** Reads #token=… once (then clears the hash) and remembers it for this tab. */
function takeToken(): string | null {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    const token = decodeURIComponent(m[1]);
    try { sessionStorage.setItem(TOKEN_KEY, token); } catch { /* storage disabled: keep it in memory */ }
    history.replaceState(null, '', location.pathname + location.search);
    return token;
  }
  try { return sessionStorage.getItem(TOKEN_KEY); } catch { return null; }
}

class HttpTransport implements Transport {
  readonly mode = 'http' as const;
  readonly problem: string | null;
  private readonly token: string | null;
  private readonly listeners = new Map<EventName, Set<(p: unknown) => void>>();
  private readonly connListeners = new Set<(up: boolean) => void>();
  private readonly authListeners = new Set<(message: string) => void>();
  private ws: WebSocket | null = null;
  private up = false;
  private backoff = 500;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor() {
    this.token = takeToken();
    this.problem = this.token ? null : 'No access token. Open the address printed by `tailor serve` (it ends in #token=…).';
    if (this.token) this.connect();
  }

  async invoke<C extends Channel>(channel: C, payload: Req<C>): Promise<Res<C>> {
    let resp: Response;
    try {
      resp = await fetch(`api/call/${channel}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${this.token ?? ''}` },
        body: JSON.stringify(payload ?? {}),
      });
    } catch (e) {
      throw new ApiError({ code: 'E_IO', message: `cannot reach the Tailor server (${(e as Error).message})` });
    }
    let body: unknown;
    try {
      body = await resp.json();
    } catch {
      body = { ok: false, error: { code: resp.status === 401 ? 'E_AUTH' : 'E_INTERNAL', message: `${channel}: HTTP ${resp.status} ${resp.statusText}` } };
    }
    try {
      return unwrap(body as Reply<Res<C>>);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'E_AUTH') for (const l of this.authListeners) l(e.message);
      throw e;
    }
  }

  onAuthFailure(listener: (message: string) => void): () => void {
    this.authListeners.add(listener);
    return () => this.authListeners.delete(listener);
  }

  on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    const l = listener as (p: unknown) => void;
    set.add(l);
    return () => set.delete(l);
  }

  onConnection(listener: (up: boolean) => void): () => void {
    this.connListeners.add(listener);
    listener(this.up || !this.token);
    return () => this.connListeners.delete(listener);
  }

  private setUp(up: boolean) {
    if (up === this.up) return;
    this.up = up;
    for (const l of this.connListeners) l(up);
  }

  private connect() {
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    const base = location.pathname.replace(/[^/]*$/, '');
    let ws: WebSocket;
    try {
      ws = new WebSocket(`${proto}://${location.host}${base}api/events?token=${encodeURIComponent(this.token ?? '')}`);
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.backoff = 500;
      this.setUp(true);
    };
    ws.onmessage = (m) => {
      let msg: { event?: EventName; payload?: unknown };
      try { msg = JSON.parse(String(m.data)); } catch { return; }
      if (!msg.event) return;
      for (const l of this.listeners.get(msg.event) ?? []) {
        try { l(msg.payload); } catch (e) { console.error(`listener for ${msg.event} failed`, e); }
      }
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.setUp(false);
      this.retry();
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  private retry() {
    if (this.timer) return;
    const wait = this.backoff;
    this.backoff = Math.min(this.backoff * 2, 10_000);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, wait);
  }
}

function create(): Transport {
  if (typeof window !== 'undefined' && window.tailor) return new BridgeTransport(window.tailor);
  return new HttpTransport();
}

/** The one transport of this page. */
export const api: Transport = create();
