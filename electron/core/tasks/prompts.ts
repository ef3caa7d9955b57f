// prompts.ts — task-specific TRAINING prompts, kept apart from the eval formulation and meant to be edited.
// Placeholders: any `{field}` of ChoiceItem.fields, plus `{answer}` (the correct choice's text, no leading
// space) and `{choices}` (the choices as a numbered list "1. ...\n2. ...").
import { shuffled } from './io.js';
import { fill } from './template.js';
import { TaskError, type ChoiceItem, type Task } from './types.js';
import type { CustomTask } from './custom.js';

export interface PromptTemplate { prompt: string; completion: string }

const DEFAULTS: Record<string, PromptTemplate> = {
  boolq: { prompt: 'Passage: {passage}\nQuestion: {question}?\nAnswer:', completion: ' {truth}' },
  piqa: { prompt: 'Goal: {goal}\nSolution:', completion: ' {answer}' },
  hellaswag: { prompt: 'Complete the description with the most plausible ending.\n{ctx}', completion: ' {answer}' },
  winogrande: { prompt: 'Sentence: {sentence}\nOption 1: {option1}\nOption 2: {option2}\nThe blank (_) refers to:', completion: ' {answer}' },
  arc_easy: { prompt: 'Question: {question}\nChoices:\n{choices}\nAnswer:', completion: ' {answer}' },
  arc_challenge: { prompt: 'Question: {question}\nChoices:\n{choices}\nAnswer:', completion: ' {answer}' },
  openbookqa: { prompt: 'Question: {question}\nChoices:\n{choices}\nAnswer:', completion: ' {answer}' },
  sst2: { prompt: 'Review: {sentence}\nSentiment:', completion: ' {answer}' },
  ag_news: { prompt: 'Title: {title}\nDescription: {description}\nTopic:', completion: ' {answer}' },
  trec: { prompt: 'Question: {question}\nAnswer type:', completion: ' {answer}' },
  story_cloze: { prompt: '{question}', completion: ' {answer}' },
};

const ALPACA: Record<string, { instruction: string; input: string; completion: string }> = {
  boolq: { instruction: 'Read the passage and answer the question with True or False.', input: 'Passage: {passage}\nQuestion: {question}?', completion: '{truth}' },
  piqa: { instruction: 'Give the better solution to achieve the goal.', input: 'Goal: {goal}\nSolution 1: {sol1}\nSolution 2: {sol2}', completion: '{answer}' },
  hellaswag: { instruction: 'Choose the most plausible ending for the description.', input: '{ctx}\n\nEndings:\n{choices}', completion: '{answer}' },
  winogrande: { instruction: 'Choose the option that correctly fills the blank (_) in the sentence.', input: 'Sentence: {sentence}\nOption 1: {option1}\nOption 2: {option2}', completion: '{answer}' },
  arc_easy: { instruction: 'Answer the science question by choosing one of the answers.', input: '{question}\n\nChoices:\n{choices}', completion: '{answer}' },
  arc_challenge: { instruction: 'Answer the science question by choosing one of the answers.', input: '{question}\n\nChoices:\n{choices}', completion: '{answer}' },
  openbookqa: { instruction: 'Answer the science question by choosing one of the answers.', input: '{question}\n\nChoices:\n{choices}', completion: '{answer}' },
  sst2: { instruction: 'Is the sentiment of this movie review sentence positive or negative?', input: '{sentence}', completion: '{answer}' },
  ag_news: { instruction: 'Classify the topic of the news article as World, Sports, Business or Science.', input: '{title}. {description}', completion: '{answer}' },
  trec: { instruction: 'What type of answer does the question expect: abbreviation, entity, description, human, location or number?', input: '{question}', completion: '{answer}' },
  story_cloze: { instruction: 'Choose the sentence that best continues the story.', input: '{question}\n\nChoices:\n{choices}', completion: '{answer}' },
};

/** The generic Alpaca instruction prompt; `{instruction}` and `{input}` are filled per task by alpacaTemplate(). */
export const ALPACA_TEMPLATE: PromptTemplate = {
  prompt: 'Below is an instruction that describes a task, paired with an input that provides further context. '
    + 'Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n',
  completion: '{answer}',
};

function isCustom(t: Task | string): t is CustomTask {
  return typeof t === 'object' && typeof (t as CustomTask).template === 'string' && typeof (t as CustomTask).mapping === 'object';
}
const nameOf = (t: Task | string): string => (typeof t === 'string' ? t : t.info.name).trim().toLowerCase().replace(/-/g, '_');

/** The default task-specific training prompt for a built-in task (by name or Task) or a custom task. */
export function defaultTemplate(task: Task | string): PromptTemplate {
  if (isCustom(task)) return { prompt: task.template, completion: ' {answer}' };
  const t = DEFAULTS[nameOf(task)];
  if (!t) throw new TaskError('E_TASK_UNKNOWN', `no default training template for task "${nameOf(task)}"`);
  return { ...t };
}

/** ALPACA_TEMPLATE with the task's instruction and input filled in (input keeps the task's placeholders). */
export function alpacaTemplate(task: Task | string): PromptTemplate {
  let spec = ALPACA[nameOf(task)];
  if (isCustom(task)) {
    spec = task.mapping.kind === 'classification'
      ? { instruction: 'Classify the text with one of the labels.', input: '{text}\n\nLabels:\n{choices}', completion: '{answer}' }
      : { instruction: 'Answer the question by choosing one of the answers.', input: '{question}\n\nChoices:\n{choices}', completion: '{answer}' };
  }
  if (!spec) throw new TaskError('E_TASK_UNKNOWN', `no Alpaca instruction for task "${nameOf(task)}"`);
  return {
    prompt: ALPACA_TEMPLATE.prompt.split('{instruction}').join(spec.instruction).split('{input}').join(spec.input),
    completion: spec.completion,
  };
}

/** The training template a choice names: the task's own ('task'), Alpaca's ('alpaca'), or the user's template. */
export function templateFor(task: Task | string, choice: 'task' | 'alpaca' | PromptTemplate): PromptTemplate {
  return choice === 'alpaca' ? alpacaTemplate(task) : choice === 'task' ? defaultTemplate(task) : choice;
}

/** The human-readable text of each choice: `options` where given, else the continuations without their leading space. */
export function choiceTexts(item: ChoiceItem): string[] {
  return item.options ?? item.continuations.map((c) => (c.startsWith(' ') ? c.slice(1) : c));
}

/** Fills a template from an item; unknown placeholders are a TaskError naming them. */
export function renderExample(template: PromptTemplate, item: ChoiceItem): { prompt: string; completion: string } {
  const texts = choiceTexts(item);
  const values: Record<string, string> = {
    ...item.fields,
    answer: texts[item.label],
    choices: texts.map((t, i) => `${i + 1}. ${t}`).join('\n'),
  };
  return { prompt: fill(template.prompt, values, `prompt template (item ${item.id})`), completion: fill(template.completion, values, `completion template (item ${item.id})`) };
}

/**
 * k items stratified by label: items are grouped by label, each group shuffled with the seed, and picked
 * round-robin over the labels in ascending order until k are taken (or the items run out). Deterministic.
 */
export function fewShot(items: ChoiceItem[], k: number, seed: number): ChoiceItem[] {
  const labels = [...new Set(items.map((i) => i.label))].sort((a, b) => a - b);
  const groups = labels.map((l) => shuffled(items.filter((i) => i.label === l), (seed * 1_000_003 + l) >>> 0));
  const out: ChoiceItem[] = [];
  const n = Math.min(Math.max(0, Math.floor(k)), items.length);
  for (let round = 0; out.length < n; round++) {
    for (const g of groups) {
      if (out.length >= n) break;
      if (round < g.length) out.push(g[round]);
    }
  }
  return out;
}
