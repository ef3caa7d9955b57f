// customTask.svelte.ts — the wizard's "import a task file" form: file preview, the column mapping
// (classification or multiple-choice), and the back end's check of the mapped task.
import type { CustomMapping, CustomTaskRef, FilePreview, TaskCheck, WireError } from '../../../electron/core/api/contract';
import { api, toWire } from '../lib/api';
import { baseName } from '../lib/format';

const pick = (cols: string[], names: string[]) => cols.find((c) => names.includes(c.toLowerCase())) ?? '';

export class CustomTaskForm {
  file = $state('');
  name = $state('');
  preview = $state<FilePreview | null>(null);
  previewError = $state<WireError | null>(null);
  previewing = $state(false);

  kind = $state<'classification' | 'multiple-choice'>('classification');
  text = $state('');
  label = $state('');
  labelNames = $state('');
  question = $state('');
  choicesMode = $state<'columns' | 'json'>('columns');
  choiceCols = $state<string[]>([]);
  choicesCol = $state('');
  answer = $state('');
  template = $state('');

  check = $state<TaskCheck | null>(null);
  checkError = $state<WireError | null>(null);
  checking = $state(false);
  private checkedKey = $state('');

  columns = $derived(this.preview?.columns ?? []);

  /** what is missing from the mapping, or null when it is complete */
  mappingProblem = $derived.by((): string | null => {
    if (!this.preview) return 'Preview the file first.';
    if (this.kind === 'classification') {
      if (!this.text) return 'Choose the text column.';
      if (!this.label) return 'Choose the label column.';
      if (this.text === this.label) return 'Text and label must be different columns.';
    } else {
      if (!this.question) return 'Choose the question column.';
      if (this.choicesMode === 'columns' && this.choiceCols.length < 2) return 'Choose at least two choice columns.';
      if (this.choicesMode === 'json' && !this.choicesCol) return 'Choose the column holding the choices (a JSON array).';
      if (!this.answer) return 'Choose the answer column.';
    }
    return null;
  });

  ref = $derived.by((): CustomTaskRef | null => {
    if (this.mappingProblem || !this.file.trim()) return null;
    const template = this.template.trim() ? this.template : undefined;
    let mapping: CustomMapping;
    if (this.kind === 'classification') {
      const names = this.labelNames.split(',').map((s) => s.trim()).filter(Boolean);
      mapping = { kind: 'classification', text: this.text, label: this.label, ...(names.length ? { labelNames: names } : {}), ...(template ? { template } : {}) };
    } else {
      mapping = { kind: 'multiple-choice', question: this.question, choices: this.choicesMode === 'columns' ? [...this.choiceCols] : this.choicesCol, answer: this.answer, ...(template ? { template } : {}) };
    }
    return { name: this.name.trim() || `custom:${baseName(this.file.trim())}`, file: this.file.trim(), mapping };
  });

  /** the check shown belongs to the mapping as it is now */
  checked = $derived(this.check !== null && this.ref !== null && this.checkedKey === JSON.stringify(this.ref));

  async loadPreview() {
    const file = this.file.trim();
    if (!file) {
      this.previewError = { code: 'E_ARG', message: 'Enter the path of a .csv, .tsv or .jsonl file.', field: 'file' };
      return;
    }
    this.previewing = true;
    this.previewError = null;
    this.check = null;
    this.checkError = null;
    try {
      const p = await api.invoke('tasks.previewFile', { file, rows: 8 });
      this.preview = p;
      this.guess(p.columns);
    } catch (e) {
      this.preview = null;
      this.previewError = toWire(e);
    } finally {
      this.previewing = false;
    }
  }

  /** pre-selects columns whose names say what they are */
  private guess(cols: string[]) {
    const has = (c: string) => cols.includes(c);
    if (!has(this.text)) this.text = pick(cols, ['text', 'sentence', 'review', 'content', 'document']);
    if (!has(this.label)) this.label = pick(cols, ['label', 'labels', 'class', 'category', 'sentiment', 'polarity', 'target']);
    if (!has(this.question)) this.question = pick(cols, ['question', 'query', 'prompt', 'goal', 'ctx']);
    if (!has(this.answer)) this.answer = pick(cols, ['answer', 'label', 'gold', 'correct']);
    if (!has(this.choicesCol)) this.choicesCol = pick(cols, ['choices', 'options', 'endings']);
    this.choiceCols = this.choiceCols.filter(has);
    if (this.choiceCols.length === 0) this.choiceCols = cols.filter((c) => /^(choice|option|ending|sol)[ _]?[0-9a-d]$/i.test(c));
    if (!this.question && this.text && this.label) this.kind = 'classification';
    else if (this.question && (this.choicesCol || this.choiceCols.length)) this.kind = 'multiple-choice';
    if (this.kind === 'multiple-choice') this.choicesMode = this.choiceCols.length >= 2 ? 'columns' : 'json';
  }

  async runCheck(seed: number) {
    const ref = this.ref;
    if (!ref) return;
    this.checking = true;
    this.checkError = null;
    try {
      this.check = await api.invoke('tasks.check', { task: ref, seed });
      this.checkedKey = JSON.stringify(ref);
    } catch (e) {
      this.check = null;
      this.checkError = toWire(e);
    } finally {
      this.checking = false;
    }
  }

  toggleChoice(col: string, on: boolean) {
    // kept in the file's column order: that order is the choices' order
    this.choiceCols = this.columns.filter((c) => (c === col ? on : this.choiceCols.includes(c)));
  }

  reset() {
    this.file = '';
    this.name = '';
    this.preview = null;
    this.previewError = null;
    this.check = null;
    this.checkError = null;
    this.template = '';
    this.labelNames = '';
    this.choiceCols = [];
  }
}
