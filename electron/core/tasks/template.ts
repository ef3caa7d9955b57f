// template.ts — `{name}` placeholder filling shared by custom-task contexts and training prompts.
// `{{` and `}}` give literal braces. A name is anything without braces or newlines (CSV headers may hold spaces).
import { TaskError } from './types.js';

const PLACEHOLDER = /\{\{|\}\}|\{([^{}\n]+)\}/g;

/** The placeholder names a template uses, in order of first use. */
export function placeholders(template: string): string[] {
  const out: string[] = [];
  for (const m of template.matchAll(PLACEHOLDER)) if (m[1] !== undefined && !out.includes(m[1])) out.push(m[1]);
  return out;
}

/** Fills every `{name}`; unknown names are one TaskError E_TASK_FORMAT naming all of them (and `where`). */
export function fill(template: string, values: Record<string, string>, where: string): string {
  const unknown = placeholders(template).filter((p) => !Object.prototype.hasOwnProperty.call(values, p));
  if (unknown.length > 0) {
    throw new TaskError('E_TASK_FORMAT',
      `${where}: unknown placeholder${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `{${u}}`).join(', ')}; available: ${Object.keys(values).map((k) => `{${k}}`).join(', ')}`);
  }
  return template.replace(PLACEHOLDER, (all, name: string | undefined) => (name === undefined ? all[0] : values[name]));
}
