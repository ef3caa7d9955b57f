// custom.ts — tasks from the user's own CSV / TSV / JSONL (optionally .gz), mapped column by column.
import * as path from 'node:path';
import { parseDelimited, readJsonl, readText, shuffled } from './io.js';
import { fill, placeholders } from './template.js';
import { TaskError, type ChoiceItem, type Task } from './types.js';

export interface ClassificationMapping {
  kind: 'classification';
  text: string;
  label: string;
  /** the label values in order (these are also the scored words); default: sorted distinct values */
  labelNames?: string[];
  /** eval context; default '{text}\nAnswer:'. May use any column as {column}. */
  template?: string;
}
export interface MultipleChoiceMapping {
  kind: 'multiple-choice';
  question: string;
  /** several columns, one choice each, or one column holding a JSON array of strings */
  choices: string[] | string;
  /** 0-based index, the choice's text, or a letter A, B, C, ... */
  answer: string;
  /** eval context; default 'Question: {question}\nAnswer:'. May use any column as {column}. */
  template?: string;
}
export type CustomMapping = ClassificationMapping | MultipleChoiceMapping;

export interface CustomTaskOptions {
  /** seed of the 80/20 train/eval shuffle (default 0) */
  seed?: number;
  /** fraction held out for evaluation (default 0.2) */
  evalFraction?: number;
  /** task name (default 'custom:<file name>') */
  name?: string;
}

export interface CustomTask extends Task {
  /** the eval context template in use (also the default training prompt) */
  template: string;
  mapping: CustomMapping;
}

interface Row { line: number; values: Record<string, unknown> }
interface Table { columns: string[]; rows: Row[] }

function formatOf(file: string): 'csv' | 'tsv' | 'jsonl' {
  const base = file.toLowerCase().replace(/\.gz$/, '');
  if (base.endsWith('.csv')) return 'csv';
  if (base.endsWith('.tsv') || base.endsWith('.tab')) return 'tsv';
  if (base.endsWith('.jsonl') || base.endsWith('.ndjson') || base.endsWith('.json')) return 'jsonl';
  throw new TaskError('E_TASK_FORMAT', `${file}: unsupported file type (use .csv, .tsv, .jsonl, optionally .gz)`);
}

function readTable(file: string): Table {
  const fmt = formatOf(file);
  if (fmt === 'jsonl') {
    const rows = readJsonl(file).map(({ line, value }) => ({ line, values: value }));
    const columns: string[] = [];
    for (const r of rows) for (const k of Object.keys(r.values)) if (!columns.includes(k)) columns.push(k);
    return { columns, rows };
  }
  const recs = parseDelimited(readText(file), fmt === 'csv' ? ',' : '\t', file);
  if (recs.length === 0) throw new TaskError('E_TASK_FORMAT', `${file}: no header row (file is empty)`);
  const columns = recs[0].cells.map((c, i) => c.trim() || `column${i + 1}`);
  const dup = columns.find((c, i) => columns.indexOf(c) !== i);
  if (dup !== undefined) throw new TaskError('E_TASK_FORMAT', `${file}:${recs[0].line}: duplicate column "${dup}" in the header`);
  const rows = recs.slice(1).map(({ line, cells }) => {
    if (cells.length !== columns.length) {
      throw new TaskError('E_TASK_FORMAT', `${file}:${line}: row has ${cells.length} fields, the header has ${columns.length}`);
    }
    const values: Record<string, unknown> = {};
    columns.forEach((c, i) => { values[c] = cells[i]; });
    return { line, values };
  });
  return { columns, rows };
}

const asText = (v: unknown): string =>
  v === undefined || v === null ? '' : typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);

/** The first `n` rows (all values as strings) and the column names, for the app's column-mapping step. */
export function previewRows(file: string, n: number): { columns: string[]; rows: Record<string, string>[] } {
  const t = readTable(file);
  return {
    columns: t.columns,
    rows: t.rows.slice(0, Math.max(0, n)).map((r) => Object.fromEntries(t.columns.map((c) => [c, asText(r.values[c])]))),
  };
}

const numericOrText = (a: string, b: string): number => {
  const x = Number(a), y = Number(b);
  if (a.trim() !== '' && b.trim() !== '' && Number.isFinite(x) && Number.isFinite(y)) return x - y || (a < b ? -1 : a > b ? 1 : 0);
  return a < b ? -1 : a > b ? 1 : 0;
};

/** Loads a custom task; every row is checked now, so errors surface at mapping time. */
export function loadCustomTask(file: string, mapping: CustomMapping, opts: CustomTaskOptions = {}): CustomTask {
  const table = readTable(file);
  const { columns } = table;
  const need = (col: string, role: string): void => {
    if (!columns.includes(col)) {
      throw new TaskError('E_TASK_FORMAT', `${file}: missing column "${col}" (the ${role}); columns present: ${columns.join(', ') || '(none)'}`);
    }
  };
  const required = (r: Row, col: string): string => {
    const v = asText(r.values[col]);
    if (v.trim() === '') throw new TaskError('E_TASK_FORMAT', `${file}:${r.line}: row has an empty "${col}" field`);
    return v;
  };
  const fieldsOf = (r: Row): Record<string, string> => Object.fromEntries(columns.map((c) => [c, asText(r.values[c])]));
  const base = path.basename(file);
  if (table.rows.length === 0) throw new TaskError('E_TASK_FORMAT', `${file}: no data rows`);

  let template: string;
  let items: ChoiceItem[];
  let choiceCount: number | 'varies';
  if (mapping.kind === 'classification') {
    need(mapping.text, 'text column');
    need(mapping.label, 'label column');
    template = mapping.template ?? '{text}\nAnswer:';
    const raw = table.rows.map((r) => ({ r, text: required(r, mapping.text), label: required(r, mapping.label).trim() }));
    const names = mapping.labelNames ?? [...new Set(raw.map((x) => x.label))].sort(numericOrText);
    if (new Set(names).size < 2) {
      throw new TaskError('E_TASK_FORMAT', `${file}: a classification task needs at least 2 distinct labels; found ${[...new Set(names)].map((s) => `"${s}"`).join(', ') || 'none'}`);
    }
    checkTemplate(template, [...columns, 'text'], file);
    items = raw.map(({ r, text, label }) => {
      const k = names.indexOf(label);
      if (k < 0) throw new TaskError('E_TASK_FORMAT', `${file}:${r.line}: unknown label "${label}" (labels: ${names.join(', ')})`);
      const fields = { ...fieldsOf(r), text };
      const ctx = fill(template, fields, `${file}:${r.line}`);
      return { id: `${base}:${r.line}`, contexts: names.map(() => ctx), continuations: names.map((n) => ' ' + n), label: k, fields };
    });
    choiceCount = names.length;
  } else {
    need(mapping.question, 'question column');
    need(mapping.answer, 'answer column');
    const cols = Array.isArray(mapping.choices) ? mapping.choices : [mapping.choices];
    for (const c of cols) need(c, 'choices column');
    if (Array.isArray(mapping.choices) && mapping.choices.length < 2) {
      throw new TaskError('E_TASK_FORMAT', `${file}: a multiple-choice task needs at least 2 choice columns`);
    }
    template = mapping.template ?? 'Question: {question}\nAnswer:';
    checkTemplate(template, [...columns, 'question'], file);
    items = table.rows.map((r) => {
      const question = required(r, mapping.question);
      let choices: string[];
      if (Array.isArray(mapping.choices)) {
        choices = mapping.choices.map((c) => required(r, c));
      } else {
        const col = mapping.choices;
        let v = r.values[col];
        if (typeof v === 'string') {
          try { v = JSON.parse(v); } catch { throw new TaskError('E_TASK_FORMAT', `${file}:${r.line}: column "${col}" is not a JSON array of choices`); }
        }
        if (!Array.isArray(v) || v.length < 2 || v.some((x) => (typeof x !== 'string' && typeof x !== 'number') || String(x).trim() === '')) {
          throw new TaskError('E_TASK_FORMAT', `${file}:${r.line}: column "${col}" must be a JSON array of at least 2 non-empty choices`);
        }
        choices = v.map(String);
      }
      const ans = required(r, mapping.answer).trim();
      let label = choices.indexOf(ans);
      if (label < 0 && /^\d+$/.test(ans)) label = Number(ans);
      else if (label < 0 && /^[A-Za-z]$/.test(ans)) label = ans.toUpperCase().charCodeAt(0) - 65;
      if (label < 0 || label >= choices.length) {
        throw new TaskError('E_TASK_FORMAT', `${file}:${r.line}: answer "${ans}" is not a 0-based index, a letter or the text of one of the ${choices.length} choices`);
      }
      const fields = { ...fieldsOf(r), question };
      const ctx = fill(template, fields, `${file}:${r.line}`);
      return { id: `${base}:${r.line}`, contexts: choices.map(() => ctx), continuations: choices.map((c) => ' ' + c), label, fields };
    });
    const counts = new Set(items.map((i) => i.continuations.length));
    choiceCount = counts.size === 1 ? [...counts][0] : 'varies';
  }

  // seeded 80/20 split; each part keeps file order
  const frac = opts.evalFraction ?? 0.2;
  const order = shuffled(items.map((_, i) => i), opts.seed ?? 0);
  const nEval = Math.min(items.length, Math.max(1, Math.round(items.length * frac)));
  const isEval = new Set(order.slice(0, nEval));
  const evalSet = items.filter((_, i) => isEval.has(i));
  const trainSet = items.filter((_, i) => !isEval.has(i));
  const name = opts.name ?? `custom:${base}`;
  return {
    info: {
      name, title: base, choices: choiceCount, metric: 'acc',
      description: `Custom ${mapping.kind} task from ${base}: ${items.length} rows, seeded ${Math.round((1 - frac) * 100)}/${Math.round(frac * 100)} train/eval split (seed ${opts.seed ?? 0}).`,
    },
    template,
    mapping,
    evalItems(o?: { limit?: number }): ChoiceItem[] {
      return o?.limit !== undefined && o.limit >= 0 ? evalSet.slice(0, o.limit) : evalSet.slice();
    },
    trainItems: () => trainSet.slice(),
  };
}

function checkTemplate(template: string, available: string[], file: string): void {
  const unknown = placeholders(template).filter((p) => !available.includes(p));
  if (unknown.length > 0) {
    throw new TaskError('E_TASK_FORMAT', `${file}: template uses unknown placeholder${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `{${u}}`).join(', ')}; columns present: ${available.join(', ')}`);
  }
}
