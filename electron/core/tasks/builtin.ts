// builtin.ts — the shipped tasks, formulated for zero-shot scoring exactly as lm-eval-harness does.
//
// Splits (eval / train):
//   boolq       validation rows with index % 5 != 0 (2616) / index % 5 == 0 (654)   — only validation is shipped
//   piqa        valid rows with index % 5 != 0 (1470) / index % 5 == 0 (368)         — only valid is shipped
//   hellaswag   validation rows with index % 5 != 0 (8033) / index % 5 == 0 (2009)   — only validation is shipped
//   ag_news     first 80% of test.csv (6080) / last 20% (1520)                        — only test is shipped
//   winogrande  dev (1267) / train_xs (160)
//   arc_*, openbookqa, story_cloze  test / train;   sst2  stsa.binary.test / .train;   trec  test.txt / train.txt
// (For single-split tasks, `getTask(name, { fullEval: true })` makes evalItems() return every row — the numbers
// the paper and LLM-Pruner report — at the cost of overlapping trainItems().)
import * as path from 'node:path';
import { readJsonl, readLines, readText, parseDelimited } from './io.js';
import { TaskError, type ChoiceItem, type TaskInfo } from './types.js';

export interface Split { eval: ChoiceItem[]; train: ChoiceItem[] }
export interface BuiltinDef {
  info: TaskInfo;
  /** loads both splits; `fullEval` returns every row of a single-split task as eval */
  load(dir: string, fullEval: boolean): Split;
}

const str = (v: unknown, file: string, line: number, key: string): string => {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new TaskError('E_TASK_FORMAT', `${file}:${line}: field "${key}" missing or not a string`);
};
const strArr = (v: unknown, file: string, line: number, key: string): string[] => {
  if (!Array.isArray(v) || v.length < 2 || v.some((x) => typeof x !== 'string')) {
    throw new TaskError('E_TASK_FORMAT', `${file}:${line}: field "${key}" must be an array of at least 2 strings`);
  }
  return v as string[];
};
const checkLabel = (label: number, n: number, file: string, line: number): number => {
  if (!Number.isInteger(label) || label < 0 || label >= n) {
    throw new TaskError('E_TASK_FORMAT', `${file}:${line}: label ${label} out of range 0..${n - 1}`);
  }
  return label;
};
const same = (ctx: string, n: number): string[] => Array.from({ length: n }, () => ctx);

/** eval = index % 5 != 0, train = index % 5 == 0 (or eval = all with fullEval). */
function modSplit(items: ChoiceItem[], fullEval: boolean): Split {
  return {
    eval: fullEval ? items : items.filter((_, i) => i % 5 !== 0),
    train: items.filter((_, i) => i % 5 === 0),
  };
}

function mc(id: string, ctx: string, choices: string[], label: number, fields: Record<string, string>): ChoiceItem {
  return { id, contexts: same(ctx, choices.length), continuations: choices.map((c) => ' ' + c), label, fields };
}

// ---- per-task parsers -------------------------------------------------------------------------------------

function boolq(file: string): ChoiceItem[] {
  return readJsonl(file).map(({ line, value: r }, i) => {
    const passage = str(r.passage, file, line, 'passage');
    const question = str(r.question, file, line, 'question');
    if (typeof r.answer !== 'boolean') throw new TaskError('E_TASK_FORMAT', `${file}:${line}: field "answer" must be true/false`);
    return mc(`boolq-${i}`, `${passage}\nQuestion: ${question}?\nAnswer:`, ['no', 'yes'], r.answer ? 1 : 0, {
      passage, question, truth: r.answer ? 'True' : 'False',
    });
  });
}

function piqa(file: string, labelsFile: string): ChoiceItem[] {
  const rows = readJsonl(file);
  const labels = readLines(labelsFile);
  if (labels.length !== rows.length) {
    throw new TaskError('E_TASK_FORMAT', `${labelsFile}: ${labels.length} labels for ${rows.length} rows of ${file}`);
  }
  return rows.map(({ line, value: r }, i) => {
    const goal = str(r.goal, file, line, 'goal');
    const sol1 = str(r.sol1, file, line, 'sol1');
    const sol2 = str(r.sol2, file, line, 'sol2');
    const l = labels[i];
    if (!/^[01]$/.test(l.text.trim())) throw new TaskError('E_TASK_FORMAT', `${labelsFile}:${l.line}: label must be 0 or 1, got "${l.text}"`);
    return mc(`piqa-${i}`, `Question: ${goal}\nAnswer:`, [sol1, sol2], Number(l.text.trim()), { goal, sol1, sol2 });
  });
}

function hellaswag(file: string): ChoiceItem[] {
  return readJsonl(file).map(({ line, value: r }, i) => {
    const ctx = str(r.ctx, file, line, 'ctx');
    const endings = strArr(r.endings, file, line, 'endings');
    const label = checkLabel(Number(str(r.label, file, line, 'label')), endings.length, file, line);
    const fields: Record<string, string> = { ctx, activity_label: typeof r.activity_label === 'string' ? r.activity_label : '' };
    endings.forEach((e, k) => { fields[`ending${k}`] = e; });
    return mc(`hellaswag-${i}`, ctx, endings, label, fields);
  });
}

function winogrande(file: string): ChoiceItem[] {
  return readJsonl(file).map(({ line, value: r }, i) => {
    const sentence = str(r.sentence, file, line, 'sentence');
    const options = [str(r.option1, file, line, 'option1'), str(r.option2, file, line, 'option2')];
    const answer = str(r.answer, file, line, 'answer');
    if (answer !== '1' && answer !== '2') throw new TaskError('E_TASK_FORMAT', `${file}:${line}: answer must be "1" or "2", got "${answer}"`);
    const at = sentence.indexOf('_');
    if (at < 0) throw new TaskError('E_TASK_FORMAT', `${file}:${line}: sentence has no "_" blank`);
    const rest = ' ' + sentence.slice(at + 1).trim();
    const id = typeof r.qID === 'string' ? r.qID : `winogrande-${i}`;
    return {
      id,
      contexts: options.map((o) => sentence.slice(0, at) + o),
      continuations: [rest, rest],
      label: Number(answer) - 1,
      fields: { sentence, option1: options[0], option2: options[1] },
      options,
    };
  });
}

function arc(name: string, file: string, split: string): ChoiceItem[] {
  return readJsonl(file).map(({ line, value: r }, i) => {
    const question = str(r.question, file, line, 'question');
    const choices = strArr(r.choices, file, line, 'choices');
    const label = checkLabel(Number(r.label), choices.length, file, line);
    return mc(`${name}-${split}-${i}`, `Question: ${question}\nAnswer:`, choices, label, { question });
  });
}

function storyCloze(file: string, split: string): ChoiceItem[] {
  return readJsonl(file).map(({ line, value: r }, i) => {
    const question = str(r.question, file, line, 'question');
    const choices = strArr(r.choices, file, line, 'choices');
    const label = checkLabel(Number(r.label), choices.length, file, line);
    return mc(`story_cloze-${split}-${i}`, question, choices, label, { question });
  });
}

function openbookqa(file: string): ChoiceItem[] {
  return readJsonl(file).map(({ line, value: r }, i) => {
    const q = r.question as { stem?: unknown; choices?: unknown } | undefined;
    const stem = str(q?.stem, file, line, 'question.stem');
    const cs = q?.choices;
    if (!Array.isArray(cs) || cs.length < 2) throw new TaskError('E_TASK_FORMAT', `${file}:${line}: question.choices must be a list`);
    const texts = cs.map((c, k) => str((c as { text?: unknown })?.text, file, line, `question.choices[${k}].text`));
    const labels = cs.map((c, k) => str((c as { label?: unknown })?.label, file, line, `question.choices[${k}].label`));
    const key = str(r.answerKey, file, line, 'answerKey').trim();
    const label = labels.indexOf(key);
    if (label < 0) throw new TaskError('E_TASK_FORMAT', `${file}:${line}: answerKey "${key}" is not one of ${labels.join(', ')}`);
    const id = typeof r.id === 'string' ? r.id : `openbookqa-${i}`;
    return mc(id, stem, texts, label, { question: stem });
  });
}

function sst2(file: string, split: string): ChoiceItem[] {
  return readLines(file).map(({ line, text }, i) => {
    const m = /^([01])\s+(.*)$/.exec(text);
    if (!m) throw new TaskError('E_TASK_FORMAT', `${file}:${line}: expected "0 sentence" or "1 sentence"`);
    const sentence = m[2];
    return mc(`sst2-${split}-${i}`, `${sentence}\nQuestion: Is this sentence positive or negative?\nAnswer:`, ['negative', 'positive'], Number(m[1]), { sentence });
  });
}

const AG_CLASSES = ['World', 'Sports', 'Business', 'Science'];
function agNews(file: string): ChoiceItem[] {
  const recs = parseDelimited(readText(file), ',', file);
  if (recs.length === 0) throw new TaskError('E_TASK_FORMAT', `${file}: empty`);
  const header = recs[0].cells.map((h) => h.trim().toLowerCase());
  const ci = header.indexOf('class index'), ti = header.indexOf('title'), di = header.indexOf('description');
  if (ci < 0 || ti < 0 || di < 0) throw new TaskError('E_TASK_FORMAT', `${file}:${recs[0].line}: header must have Class Index, Title, Description; got ${recs[0].cells.join(', ')}`);
  return recs.slice(1).map(({ line, cells }, i) => {
    if (cells.length !== header.length) throw new TaskError('E_TASK_FORMAT', `${file}:${line}: ${cells.length} fields, expected ${header.length}`);
    const cls = Number(cells[ci]);
    if (!Number.isInteger(cls) || cls < 1 || cls > 4) throw new TaskError('E_TASK_FORMAT', `${file}:${line}: class index must be 1-4, got "${cells[ci]}"`);
    const title = cells[ti], description = cells[di];
    return mc(`ag_news-${i}`, `${title}. ${description}\nTopic:`, AG_CLASSES, cls - 1, { title, description });
  });
}

const TREC_CODES = ['ABBR', 'ENTY', 'DESC', 'HUM', 'LOC', 'NUM'];
const TREC_NAMES = ['abbreviation', 'entity', 'description', 'human', 'location', 'number'];
function trec(file: string, split: string): ChoiceItem[] {
  return readLines(file).map(({ line, text }, i) => {
    const m = /^([A-Z]+):(\S+)\s+(.*)$/.exec(text);
    const label = m ? TREC_CODES.indexOf(m[1]) : -1;
    if (!m || label < 0) throw new TaskError('E_TASK_FORMAT', `${file}:${line}: expected "COARSE:fine question" with COARSE one of ${TREC_CODES.join('/')}`);
    const question = m[3].trim();
    return mc(`trec-${split}-${i}`, `Question: ${question}\nType:`, TREC_NAMES, label, { question, fine: m[2] });
  });
}

// ---- definitions -------------------------------------------------------------------------------------------

const j = path.join;
export const BUILTINS: BuiltinDef[] = [
  {
    info: { name: 'boolq', title: 'BoolQ', choices: 2, metric: 'acc', description: 'Yes/no questions about a Wikipedia passage. Eval: validation rows with index % 5 != 0; train: index % 5 == 0.' },
    load: (d, full) => modSplit(boolq(j(d, 'boolq', 'validation.jsonl')), full),
  },
  {
    info: { name: 'piqa', title: 'PIQA', choices: 2, metric: 'acc', description: 'Physical commonsense: pick the better of two solutions to a goal. Eval: valid rows with index % 5 != 0; train: index % 5 == 0.' },
    load: (d, full) => modSplit(piqa(j(d, 'piqa', 'valid.jsonl'), j(d, 'piqa', 'valid-labels.lst')), full),
  },
  {
    info: { name: 'hellaswag', title: 'HellaSwag', choices: 4, metric: 'acc', description: 'Commonsense sentence completion: pick the plausible ending. Eval: validation rows with index % 5 != 0; train: index % 5 == 0.' },
    load: (d, full) => modSplit(hellaswag(j(d, 'hellaswag', 'validation.jsonl.gz')), full),
  },
  {
    info: { name: 'winogrande', title: 'WinoGrande', choices: 2, metric: 'acc', description: 'Pronoun resolution: fill the blank with one of two options (partial scoring). Eval: dev; train: train_xs.' },
    load: (d) => ({ eval: winogrande(j(d, 'winogrande', 'dev.jsonl')), train: winogrande(j(d, 'winogrande', 'train_xs.jsonl')) }),
  },
  {
    info: { name: 'arc_easy', title: 'ARC-Easy', choices: 'varies', metric: 'acc', description: 'Grade-school science questions (easy set). Eval: test; train: train.' },
    load: (d) => ({ eval: arc('arc_easy', j(d, 'arc_easy', 'test.jsonl'), 'test'), train: arc('arc_easy', j(d, 'arc_easy', 'train.jsonl'), 'train') }),
  },
  {
    info: { name: 'arc_challenge', title: 'ARC-Challenge', choices: 'varies', metric: 'acc', description: 'Grade-school science questions (challenge set). Eval: test; train: train.' },
    load: (d) => ({ eval: arc('arc_challenge', j(d, 'arc_challenge', 'test.jsonl'), 'test'), train: arc('arc_challenge', j(d, 'arc_challenge', 'train.jsonl'), 'train') }),
  },
  {
    info: { name: 'openbookqa', title: 'OpenBookQA', choices: 4, metric: 'acc', description: 'Elementary science questions needing an open-book fact. Eval: test; train: train.' },
    load: (d) => ({ eval: openbookqa(j(d, 'openbookqa', 'test.jsonl')), train: openbookqa(j(d, 'openbookqa', 'train.jsonl')) }),
  },
  {
    info: { name: 'sst2', title: 'SST-2', choices: 2, metric: 'acc', description: 'Movie-review sentence sentiment (negative/positive). Eval: stsa.binary.test; train: stsa.binary.train.' },
    load: (d) => ({ eval: sst2(j(d, 'sst2', 'stsa.binary.test'), 'test'), train: sst2(j(d, 'sst2', 'stsa.binary.train'), 'train') }),
  },
  {
    info: { name: 'ag_news', title: 'AG News', choices: 4, metric: 'acc', description: 'News topic (World/Sports/Business/Science). Eval: first 80% of test.csv; train: last 20%.' },
    load: (d, full) => {
      const all = agNews(j(d, 'ag_news', 'test.csv'));
      const cut = Math.floor(all.length * 0.8);
      return { eval: full ? all : all.slice(0, cut), train: all.slice(cut) };
    },
  },
  {
    info: { name: 'trec', title: 'TREC', choices: 6, metric: 'acc', description: 'Question type (coarse TREC classes). Eval: test.txt; train: train.txt.' },
    load: (d) => ({ eval: trec(j(d, 'trec', 'test.txt'), 'test'), train: trec(j(d, 'trec', 'train.txt'), 'train') }),
  },
  {
    info: { name: 'story_cloze', title: 'Story Cloze (TinyStories)', choices: 4, metric: 'acc', description: 'Pick the true next sentence of a TinyStories story (built for the bundled model). Eval: test; train: train.' },
    load: (d) => ({ eval: storyCloze(j(d, 'story_cloze', 'test.jsonl'), 'test'), train: storyCloze(j(d, 'story_cloze', 'train.jsonl'), 'train') }),
  },
];
