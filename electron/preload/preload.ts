// preload.ts — the renderer's only door to the main process: `window.tailor` with exactly two functions,
// invoke(channel, payload) → Reply and on(event, listener) → unsubscribe, for the channels and events the
// contract declares (anything else is refused here, and again in main). Bundled to one CommonJS file, as
// sandboxed preloads must be.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { CHANNELS, EVENTS, type Channel, type EventName, type Reply } from '../core/api/contract.js';

const INVOKE = 'tailor:invoke';
const EVENT = 'tailor:event';

const bridge = {
  invoke(channel: string, payload: unknown): Promise<Reply<unknown>> {
    if (!(CHANNELS as readonly string[]).includes(channel))
      return Promise.resolve({ ok: false, error: { code: 'E_UNKNOWN_CHANNEL', message: `unknown channel ${channel}` } });
    return ipcRenderer.invoke(INVOKE, channel as Channel, payload) as Promise<Reply<unknown>>;
  },
  on(event: string, listener: (payload: unknown) => void): () => void {
    if (!(EVENTS as readonly string[]).includes(event)) throw new Error(`unknown event ${event}`);
    const h = (_e: IpcRendererEvent, name: EventName, payload: unknown) => {
      if (name === event) listener(payload);
    };
    ipcRenderer.on(EVENT, h);
    return () => {
      ipcRenderer.removeListener(EVENT, h);
    };
  },
};

contextBridge.exposeInMainWorld('tailor', bridge);
