// ipc.ts — the main process's side of the contract, free of `electron` so it is tested under Node: which
// senders may call (only our own renderer page, top frame), and the one handler that answers every
// channel through the workbench. main.ts wires it to ipcMain.
import { pathToFileURL } from 'node:url';
import type { Reply } from '../core/api/contract.js';
import type { Workbench } from '../core/service/workbench.js';

export const INVOKE_CHANNEL = 'tailor:invoke';
export const EVENT_CHANNEL = 'tailor:event';

/** The renderer's page URL; only it (in the top frame) may use the bridge. */
export function trustedPage(indexHtml: string): string {
  return pathToFileURL(indexHtml).href;
}

export function senderAllowed(senderUrl: string, isMainFrame: boolean, page: string): boolean {
  if (!isMainFrame) return false;
  const u = senderUrl.split('#')[0].split('?')[0];
  return u === page;
}

export async function handleInvoke(w: Workbench, sender: { url: string; isMainFrame: boolean }, page: string, channel: unknown, payload: unknown): Promise<Reply<unknown>> {
  if (!senderAllowed(sender.url, sender.isMainFrame, page)) return { ok: false, error: { code: 'E_AUTH', message: 'this page may not use the Tailor bridge' } };
  return w.call(channel, payload);
}
