// types.ts — the shapes every task (built-in or custom) produces, and the one error type this module throws.

export interface ChoiceItem {
  id: string;
  /** one context per choice (WinoGrande's partial scoring) — for every other task the same string repeated */
  contexts: string[];
  /** the scored continuation per choice, including its leading space as lm-eval-harness builds it */
  continuations: string[];
  label: number; // index of the correct choice
  /** the raw fields, for training prompts */
  fields: Record<string, string>;
  /**
   * Optional human-readable text of each choice, where it differs from the continuation without its leading
   * space (WinoGrande: the two options, whose continuations are identical). Used for `{answer}` / `{choices}`.
   */
  options?: string[];
}

export interface TaskInfo {
  name: string;
  title: string;
  choices: number | 'varies';
  metric: 'acc';
  description: string;
}

export interface Task {
  info: TaskInfo;
  /** evaluation items (validation/test split as LLM-Pruner and the paper use) */
  evalItems(opts?: { limit?: number }): ChoiceItem[];
  /** training items (a train split; for tasks that ship only one split, a seeded disjoint part of it — say which) */
  trainItems(): ChoiceItem[];
}

export type TaskErrorCode = 'E_TASK_UNKNOWN' | 'E_TASK_FORMAT' | 'E_IO';

export class TaskError extends Error {
  readonly code: TaskErrorCode;
  constructor(code: TaskErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TaskError';
    this.code = code;
  }
}
