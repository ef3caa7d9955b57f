// Task registry: built-in formulations (lm-eval-harness zero-shot), custom tasks, training prompts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { shared, tempDir } from './helpers/paths.js';
import {
  getTask, listTasks, loadCustomTask, previewRows, renderExample, defaultTemplate, alpacaTemplate, fewShot,
  ALPACA_TEMPLATE, TaskError, type ChoiceItem, type PromptTemplate,
} from '../electron/core/tasks/index.js';

const DATA = shared('datasets');
const task = (name: string, full = false) => getTask(name, { dataDir: DATA, fullEval: full });

function rep<T>(x: T, n: number): T[] { return Array.from({ length: n }, () => x); }
function checkItems(items: ChoiceItem[]): void {
  for (const it of items) {
    assert.equal(it.contexts.length, it.continuations.length, it.id);
    assert.ok(it.continuations.length >= 2, it.id);
    assert.ok(Number.isInteger(it.label) && it.label >= 0 && it.label < it.continuations.length, it.id);
    for (const c of it.continuations) assert.ok(c.startsWith(' '), `${it.id}: continuation "${c}" lacks its leading space`);
  }
}
function isTaskError(code: string, re?: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof TaskError, `expected TaskError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    return true;
  };
}

// ---- counts (eval / train) as /work/shared/README.md lists them, under the splits tasks/builtin.ts documents ----
const COUNTS: Record<string, [number, number]> = {
  boolq: [2616, 654], // 3270 validation rows: index % 5 != 0 / == 0
  piqa: [1470, 368], // 1838
  hellaswag: [8033, 2009], // 10042
  winogrande: [1267, 160],
  arc_easy: [2376, 2251],
  arc_challenge: [1172, 1119],
  openbookqa: [500, 4957],
  sst2: [1821, 6920],
  ag_news: [6080, 1520], // 7600: first 80% / last 20%
  trec: [500, 5452],
  story_cloze: [600, 1143],
};

test('listTasks names the 11 built-in tasks', () => {
  assert.deepEqual(listTasks().map((t) => t.name).sort(), Object.keys(COUNTS).sort());
  for (const t of listTasks()) assert.equal(t.metric, 'acc');
});

for (const [name, [nEval, nTrain]] of Object.entries(COUNTS)) {
  test(`${name}: item counts and labels in range`, () => {
    const t = task(name);
    const ev = t.evalItems(), tr = t.trainItems();
    assert.equal(ev.length, nEval);
    assert.equal(tr.length, nTrain);
    checkItems(ev);
    checkItems(tr);
    if (typeof t.info.choices === 'number') for (const it of ev) assert.equal(it.continuations.length, t.info.choices);
    assert.equal(t.evalItems({ limit: 7 }).length, 7);
    assert.deepEqual(t.evalItems({ limit: 3 }), ev.slice(0, 3));
    // eval and train are disjoint
    const evIds = new Set(ev.map((i) => i.id));
    assert.ok(tr.every((i) => !evIds.has(i.id)), 'train and eval overlap');
  });
}

test('fullEval gives every row of the single-split tasks', () => {
  assert.equal(task('boolq', true).evalItems().length, 3270);
  assert.equal(task('piqa', true).evalItems().length, 1838);
  assert.equal(task('hellaswag', true).evalItems().length, 10042);
  assert.equal(task('ag_news', true).evalItems().length, 7600);
  assert.equal(task('arc_easy', true).evalItems().length, 2376);
});

test('boolq: exact formulation (train[0] = row 0, eval[0] = row 1)', () => {
  const t = task('boolq');
  const tr = t.trainItems()[0];
  assert.equal(tr.contexts[0], "All biomass goes through at least some of these steps: it needs to be grown, collected, dried, fermented, distilled, and burned. All of these steps require resources and an infrastructure. The total amount of energy input into the process compared to the energy released by burning the resulting ethanol fuel is known as the energy balance (or ``energy returned on energy invested''). Figures compiled in a 2007 report by National Geographic Magazine point to modest results for corn ethanol produced in the US: one unit of fossil-fuel energy is required to create 1.3 energy units from the resulting ethanol. The energy balance for sugarcane ethanol produced in Brazil is more favorable, with one unit of fossil-fuel energy required to create 8 from the ethanol. Energy balance estimates are not easily produced, thus numerous such reports have been generated that are contradictory. For instance, a separate survey reports that production of ethanol from sugarcane, which requires a tropical climate to grow productively, returns from 8 to 9 units of energy for each unit expended, as compared to corn, which only returns about 1.34 units of fuel energy for each unit of energy expended. A 2006 University of California Berkeley study, after analyzing six separate studies, concluded that producing ethanol from corn uses much less petroleum than producing gasoline.\nQuestion: does ethanol take more energy make that produces?\nAnswer:");
  assert.deepEqual(tr.continuations, [' no', ' yes']);
  assert.equal(tr.label, 0);
  const ev = t.evalItems()[0];
  const ctx = "Property tax or 'house tax' is a local tax on buildings, along with appurtenant land. It is and imposed on the Possessor (not the custodian of property as per 1978, 44th amendment of constitution). It resembles the US-type wealth tax and differs from the excise-type UK rate. The tax power is vested in the states and is delegated to local bodies, specifying the valuation method, rate band, and collection procedures. The tax base is the annual rental value (ARV) or area-based rating. Owner-occupied and other properties not producing rent are assessed on cost and then converted into ARV by applying a percentage of cost, usually four percent. Vacant land is generally exempt. Central government properties are exempt. Instead a 'service charge' is permissible under executive order. Properties of foreign missions also enjoy tax exemption without requiring reciprocity. The tax is usually accompanied by service taxes, e.g., water tax, drainage tax, conservancy (sanitation) tax, lighting tax, all using the same tax base. The rate structure is flat on rural (panchayat) properties, but in the urban (municipal) areas it is mildly progressive with about 80% of assessments falling in the first two brackets.\nQuestion: is house tax and property tax are same?\nAnswer:";
  assert.deepEqual(ev.contexts, [ctx, ctx]);
  assert.deepEqual(ev.continuations, [' no', ' yes']);
  assert.equal(ev.label, 1);
  assert.equal(ev.fields.truth, 'True');
});

test('piqa: exact formulation', () => {
  const t = task('piqa');
  const tr = t.trainItems()[0];
  assert.deepEqual(tr.contexts, rep("Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:", 2));
  assert.deepEqual(tr.continuations, [
    ' Provide the guinea pig with a cage full of a few inches of bedding made of ripped paper strips, you will also need to supply it with a water bottle and a food dish.',
    ' Provide the guinea pig with a cage full of a few inches of bedding made of ripped jeans material, you will also need to supply it with a water bottle and a food dish.',
  ]);
  assert.equal(tr.label, 0);
  const ev = t.evalItems()[0];
  assert.deepEqual(ev.contexts, rep('Question: dresser\nAnswer:', 2));
  assert.deepEqual(ev.continuations, [' replace drawer with bobby pin ', ' finish, woodgrain with  bobby pin ']);
  assert.equal(ev.label, 1);
});

test('hellaswag: exact formulation', () => {
  const t = task('hellaswag');
  const tr = t.trainItems()[0];
  assert.deepEqual(tr.contexts, rep('Roof shingle removal: A man is sitting on a roof. he', 4));
  assert.deepEqual(tr.continuations, [' is using wrap to wrap a pair of skis.', ' is ripping level tiles off.', " is holding a rubik's cube.", ' starts pulling up roofing on a roof.']);
  assert.equal(tr.label, 3);
  const ev = t.evalItems()[0];
  assert.deepEqual(ev.contexts, rep('Clean and jerk: A lady walks to a barbell. She bends down and grabs the pole. the lady', 4));
  assert.deepEqual(ev.continuations, [' swings and lands in her arms.', ' pulls the barbell forward.', ' pulls a rope attached to the barbell.', ' stands and lifts the weight over her head.']);
  assert.equal(ev.label, 3);
});

test('winogrande: partial scoring', () => {
  const t = task('winogrande');
  const ev = t.evalItems()[0];
  assert.deepEqual(ev.contexts, ['Sarah was a much better surgeon than Maria so Sarah', 'Sarah was a much better surgeon than Maria so Maria']);
  assert.deepEqual(ev.continuations, [' always got the easier cases.', ' always got the easier cases.']);
  assert.equal(ev.label, 1);
  assert.deepEqual(ev.options, ['Sarah', 'Maria']);
  const tr = t.trainItems()[0];
  assert.deepEqual(tr.contexts, ["Ian volunteered to eat Dennis's menudo after already having a bowl because Ian", "Ian volunteered to eat Dennis's menudo after already having a bowl because Dennis"]);
  assert.deepEqual(tr.continuations, rep(' despised eating intestine.', 2));
  assert.equal(tr.label, 1);
});

test('arc_easy / arc_challenge: exact formulation', () => {
  const e = task('arc_easy').evalItems()[0];
  assert.deepEqual(e.contexts, rep('Question: Which statement best explains why photosynthesis is the foundation of most food webs?\nAnswer:', 4));
  assert.deepEqual(e.continuations, [' Sunlight is the source of energy for nearly all ecosystems.', ' Most ecosystems are found on land instead of in water.', ' Carbon dioxide is more available than other gases.', ' The producers in all ecosystems are plants.']);
  assert.equal(e.label, 0);
  const c = task('arc-challenge').evalItems()[0];
  assert.deepEqual(c.contexts, rep('Question: An astronomer observes that a planet rotates faster after a meteorite impact. Which is the most likely effect of this increase in rotation?\nAnswer:', 4));
  assert.deepEqual(c.continuations, [' Planetary density will decrease.', ' Planetary years will become longer.', ' Planetary days will become shorter.', ' Planetary gravity will become stronger.']);
  assert.equal(c.label, 2);
  const tr = task('arc_easy').trainItems()[0];
  assert.equal(tr.contexts[0], 'Question: Which factor will most likely cause a person to develop a fever?\nAnswer:');
  assert.equal(tr.label, 1);
});

test('openbookqa: exact formulation', () => {
  const o = task('openbookqa').evalItems()[0];
  assert.deepEqual(o.contexts, rep('A person wants to start saving money so that they can afford a nice vacation at the end of the year. After looking over their budget and expenses, they decide the best way to save money is to', 4));
  assert.deepEqual(o.continuations, [' make more phone calls', ' quit eating lunch out', ' buy less with monopoly money', ' have lunch with friends']);
  assert.equal(o.label, 1);
  const tr = task('openbookqa').trainItems()[0];
  assert.equal(tr.contexts[0], 'The sun is responsible for');
  assert.equal(tr.label, 3);
});

test('sst2, ag_news, trec, story_cloze: exact formulation', () => {
  const s = task('sst2').evalItems()[0];
  assert.deepEqual(s.contexts, rep('no movement , no yuks , not much of anything .\nQuestion: Is this sentence positive or negative?\nAnswer:', 2));
  assert.deepEqual(s.continuations, [' negative', ' positive']);
  assert.equal(s.label, 0);
  assert.equal(task('sst2').trainItems()[0].label, 1);

  const a = task('ag_news').evalItems()[0];
  assert.deepEqual(a.contexts, rep("Fears for T N pension after talks. Unions representing workers at Turner   Newall say they are 'disappointed' after talks with stricken parent firm Federal Mogul.\nTopic:", 4));
  assert.deepEqual(a.continuations, [' World', ' Sports', ' Business', ' Science']);
  assert.equal(a.label, 2);
  const a2 = task('ag_news').evalItems()[1]; // quoted CSV field with commas
  assert.ok(a2.contexts[0].startsWith('The Race is On: Second Private Team Sets Launch Date for Human Spaceflight (SPACE.com). SPACE.com - TORONTO, Canada -- A second\\team'));
  const at = task('ag_news').trainItems()[0];
  assert.ok(at.contexts[0].startsWith('Lab used by LAPD falsified DNA data. '));
  assert.equal(at.label, 3);

  const t = task('trec').evalItems()[0];
  assert.deepEqual(t.contexts, rep('Question: How far is it from Denver to Aspen ?\nType:', 6));
  assert.deepEqual(t.continuations, [' abbreviation', ' entity', ' description', ' human', ' location', ' number']);
  assert.equal(t.label, 5);
  assert.equal(t.fields.fine, 'dist');
  assert.equal(task('trec').trainItems()[0].label, 2); // DESC:manner

  const c = task('story_cloze').evalItems()[0];
  assert.deepEqual(c.contexts, rep('After playing with the car, Kitty and Spot felt thirsty. They found a small pond with clear water.', 4));
  assert.deepEqual(c.continuations, [' She was very excited but also nervous because she wanted to wear her new dress.', ' Then suddenly she remembered the rock.', ' They drank the water and felt very happy.', ' Her dad said, "Now, be gentle with it, Lily.']);
  assert.equal(c.label, 2);
});

test('registry errors: unknown task, missing data dir', () => {
  assert.throws(() => getTask('mmlu'), isTaskError('E_TASK_UNKNOWN', /mmlu.*boolq/));
  const t = getTask('boolq', { dataDir: path.join(tempDir(), 'nowhere') });
  assert.throws(() => t.evalItems(), isTaskError('E_IO', /boolq[\\/]validation\.jsonl/));
});

test('registry errors: bad JSON line and bad label name file and line', () => {
  const dir = tempDir();
  fs.mkdirSync(path.join(dir, 'arc_easy'));
  fs.writeFileSync(path.join(dir, 'arc_easy', 'test.jsonl'), '{"question":"q","choices":["a","b"],"label":1}\n\n{oops\n');
  fs.writeFileSync(path.join(dir, 'arc_easy', 'train.jsonl'), '{"question":"q","choices":["a","b"],"label":5}\n');
  const t = getTask('arc_easy', { dataDir: dir });
  assert.throws(() => t.evalItems(), isTaskError('E_TASK_FORMAT', /test\.jsonl:3: bad JSON/));
  fs.writeFileSync(path.join(dir, 'arc_easy', 'test.jsonl'), '{"question":"q","choices":["a","b"],"label":1}\n');
  assert.throws(() => getTask('arc_easy', { dataDir: dir }).trainItems(), isTaskError('E_TASK_FORMAT', /train\.jsonl:1: label 5 out of range/));
});

// ---- custom tasks ----------------------------------------------------------------------------------------

function write(name: string, text: string | Buffer): string {
  const f = path.join(tempDir(), name);
  fs.writeFileSync(f, text);
  return f;
}

test('custom CSV classification: quoting, default labels, seeded 80/20 split', () => {
  const rows = ['text,label'];
  for (let i = 0; i < 20; i++) rows.push(`"review ${i}, with ""quotes""\nand a newline",${i % 2 ? 'pos' : 'neg'}`);
  const f = write('reviews.csv', rows.join('\r\n') + '\r\n\r\n');
  const t = loadCustomTask(f, { kind: 'classification', text: 'text', label: 'label' });
  assert.equal(t.info.choices, 2);
  const ev = t.evalItems(), tr = t.trainItems();
  assert.equal(ev.length, 4);
  assert.equal(tr.length, 16);
  const all = [...ev, ...tr];
  assert.equal(new Set(all.map((i) => i.id)).size, 20);
  const first = all.find((i) => i.fields.text.startsWith('review 0,'))!;
  assert.deepEqual(first.contexts, rep('review 0, with "quotes"\nand a newline\nAnswer:', 2));
  assert.deepEqual(first.continuations, [' neg', ' pos']);
  assert.equal(first.label, 0);
  assert.equal(first.id, 'reviews.csv:2'); // row 0 starts on line 2
  assert.equal(all.find((i) => i.fields.text.startsWith('review 1,'))!.id, 'reviews.csv:4');
  // same seed, same split; another seed, another split
  const again = loadCustomTask(f, { kind: 'classification', text: 'text', label: 'label' });
  assert.deepEqual(again.evalItems().map((i) => i.id), ev.map((i) => i.id));
  const other = loadCustomTask(f, { kind: 'classification', text: 'text', label: 'label' }, { seed: 99 });
  assert.notDeepEqual(other.evalItems().map((i) => i.id), ev.map((i) => i.id));
  // labelNames order and a custom template
  const t2 = loadCustomTask(f, { kind: 'classification', text: 'text', label: 'label', labelNames: ['pos', 'neg'], template: 'Review: {text}\nSentiment:' });
  const it = [...t2.evalItems(), ...t2.trainItems()].find((i) => i.fields.text.startsWith('review 0,'))!;
  assert.deepEqual(it.continuations, [' pos', ' neg']);
  assert.equal(it.label, 1);
  assert.equal(it.contexts[0], 'Review: review 0, with "quotes"\nand a newline\nSentiment:');
});

test('custom TSV multiple choice with choice columns and letter / index / text answers', () => {
  const f = write('quiz.tsv', 'q\tA\tB\tC\tans\nsky colour?\tblue\tgreen\tred\tA\n2+2?\t3\t4\t5\t1\nbest pet?\tcat\tdog\tfish\tfish\n\n');
  const t = loadCustomTask(f, { kind: 'multiple-choice', question: 'q', choices: ['A', 'B', 'C'], answer: 'ans' }, { evalFraction: 1 });
  const items = t.evalItems();
  assert.equal(items.length, 3);
  assert.equal(t.info.choices, 3);
  assert.deepEqual(items[0].contexts, rep('Question: sky colour?\nAnswer:', 3));
  assert.deepEqual(items[0].continuations, [' blue', ' green', ' red']);
  assert.deepEqual(items.map((i) => i.label), [0, 1, 2]);
});

test('custom JSONL(.gz) multiple choice with a JSON-array column; previewRows', () => {
  const lines = [
    { question: 'Capital of France?', options: ['Paris', 'Rome'], answer: 'Paris', n: 1 },
    { question: 'Largest planet?', options: ['Mars', 'Jupiter', 'Venus'], answer: 1, n: 2 },
    { question: 'Colour of grass?', options: '["green","purple"]', answer: 'A', n: 3 },
  ].map((o) => JSON.stringify(o)).join('\n');
  const f = write('qa.jsonl.gz', zlib.gzipSync(lines + '\n'));
  const t = loadCustomTask(f, { kind: 'multiple-choice', question: 'question', choices: 'options', answer: 'answer', template: 'Q: {question} (#{n})\nA:' }, { evalFraction: 1 });
  const items = t.evalItems();
  assert.equal(t.info.choices, 'varies');
  assert.deepEqual(items.map((i) => i.label), [0, 1, 0]);
  assert.equal(items[0].contexts[0], 'Q: Capital of France? (#1)\nA:');
  assert.deepEqual(items[2].continuations, [' green', ' purple']);
  const p = previewRows(f, 2);
  assert.deepEqual(p.columns, ['question', 'options', 'answer', 'n']);
  assert.equal(p.rows.length, 2);
  assert.deepEqual(p.rows[0], { question: 'Capital of France?', options: '["Paris","Rome"]', answer: 'Paris', n: '1' });
  const c = previewRows(write('x.csv', 'a,b\n1,"two, three"\n'), 10);
  assert.deepEqual(c, { columns: ['a', 'b'], rows: [{ a: '1', b: 'two, three' }] });
});

test('custom task errors', () => {
  const csv = write('d.csv', 'sentence,label\nhello,pos\nbye,neg\n');
  assert.throws(() => loadCustomTask(csv, { kind: 'classification', text: 'text', label: 'label' }),
    isTaskError('E_TASK_FORMAT', /missing column "text".*columns present: sentence, label/));
  assert.throws(() => loadCustomTask(csv, { kind: 'classification', text: 'sentence', label: 'label', labelNames: ['pos', 'neutral'] }),
    isTaskError('E_TASK_FORMAT', /d\.csv:3: unknown label "neg"/));
  const one = write('one.csv', 'text,label\na,x\nb,x\n');
  assert.throws(() => loadCustomTask(one, { kind: 'classification', text: 'text', label: 'label' }), isTaskError('E_TASK_FORMAT', /at least 2 distinct labels/));
  const empty = write('e.csv', 'text,label\na,x\n\n,y\n');
  assert.throws(() => loadCustomTask(empty, { kind: 'classification', text: 'text', label: 'label' }), isTaskError('E_TASK_FORMAT', /e\.csv:4: row has an empty "text" field/));
  const bad = write('b.jsonl', '{"text":"a","label":"x"}\n\n{"text": b}\n');
  assert.throws(() => loadCustomTask(bad, { kind: 'classification', text: 'text', label: 'label' }), isTaskError('E_TASK_FORMAT', /b\.jsonl:3: bad JSON line/));
  assert.throws(() => loadCustomTask(csv, { kind: 'classification', text: 'sentence', label: 'label', template: '{sentence} {nope}' }), isTaskError('E_TASK_FORMAT', /\{nope\}/));
  const mc = write('m.csv', 'q,choices,ans\nwhat?,"[""a"",""b""]",7\n');
  assert.throws(() => loadCustomTask(mc, { kind: 'multiple-choice', question: 'q', choices: 'choices', answer: 'ans' }), isTaskError('E_TASK_FORMAT', /m\.csv:2: answer "7"/));
  const mc2 = write('m2.csv', 'q,choices,ans\nwhat?,not json,0\n');
  assert.throws(() => loadCustomTask(mc2, { kind: 'multiple-choice', question: 'q', choices: 'choices', answer: 'ans' }), isTaskError('E_TASK_FORMAT', /m2\.csv:2: column "choices" is not a JSON array/));
  const ragged = write('r.csv', 'text,label\na,x,extra\n');
  assert.throws(() => loadCustomTask(ragged, { kind: 'classification', text: 'text', label: 'label' }), isTaskError('E_TASK_FORMAT', /r\.csv:2: row has 3 fields/));
  assert.throws(() => loadCustomTask(write('x.xlsx', ''), { kind: 'classification', text: 'a', label: 'b' }), isTaskError('E_TASK_FORMAT', /unsupported file type/));
  assert.throws(() => loadCustomTask(path.join(tempDir(), 'missing.csv'), { kind: 'classification', text: 'a', label: 'b' }), isTaskError('E_IO', /missing\.csv/));
  const unterminated = write('u.csv', 'text,label\n"abc,x\n');
  assert.throws(() => previewRows(unterminated, 5), isTaskError('E_TASK_FORMAT', /u\.csv:2: unterminated/));
});

// ---- training prompts ------------------------------------------------------------------------------------

test('default templates render for every task', () => {
  for (const info of listTasks()) {
    const t = task(info.name);
    const item = t.trainItems()[0];
    const r = renderExample(defaultTemplate(t), item);
    assert.ok(r.prompt.length > 0 && r.completion.startsWith(' '), info.name);
    const a = renderExample(alpacaTemplate(info.name), item);
    assert.ok(a.prompt.startsWith('Below is an instruction that describes a task'), info.name);
    assert.ok(a.prompt.endsWith('### Response:\n'), info.name);
    assert.ok(!a.prompt.includes('{'), info.name);
  }
  const b = renderExample(defaultTemplate('boolq'), task('boolq').evalItems()[0]);
  assert.ok(b.prompt.startsWith("Passage: Property tax or 'house tax'"));
  assert.ok(b.prompt.endsWith('\nQuestion: is house tax and property tax are same?\nAnswer:'));
  assert.equal(b.completion, ' True');
  const w = renderExample(defaultTemplate('winogrande'), task('winogrande').evalItems()[0]);
  assert.equal(w.completion, ' Maria');
  const arc = renderExample({ prompt: '{question}\n{choices}', completion: '{answer}' }, task('arc_easy').evalItems()[0]);
  assert.equal(arc.prompt, 'Which statement best explains why photosynthesis is the foundation of most food webs?\n1. Sunlight is the source of energy for nearly all ecosystems.\n2. Most ecosystems are found on land instead of in water.\n3. Carbon dioxide is more available than other gases.\n4. The producers in all ecosystems are plants.');
  assert.equal(arc.completion, 'Sunlight is the source of energy for nearly all ecosystems.');
  assert.equal(renderExample(alpacaTemplate('sst2'), task('sst2').evalItems()[0]).prompt,
    ALPACA_TEMPLATE.prompt.replace('{instruction}', 'Is the sentiment of this movie review sentence positive or negative?').replace('{input}', 'no movement , no yuks , not much of anything .'));
  // custom tasks use their own template
  const f = write('c.csv', 'text,label\nhi,a\nho,b\n');
  const ct = loadCustomTask(f, { kind: 'classification', text: 'text', label: 'label', template: 'Say: {text}\n=>' });
  const ci = ct.trainItems()[0] ?? ct.evalItems()[0];
  assert.match(renderExample(defaultTemplate(ct), ci).prompt, /^Say: h[io]\n=>$/);
  assert.throws(() => defaultTemplate('nosuch'), isTaskError('E_TASK_UNKNOWN'));
});

test('renderExample names unknown placeholders; {{ }} are literal braces', () => {
  const item = task('piqa').evalItems()[0];
  const tpl: PromptTemplate = { prompt: '{goal} {foo} {bar}', completion: '{answer}' };
  assert.throws(() => renderExample(tpl, item), isTaskError('E_TASK_FORMAT', /placeholders \{foo\}, \{bar\}/));
  assert.equal(renderExample({ prompt: '{{goal}} = {goal}', completion: '{answer}' }, item).prompt, '{goal} = dresser');
});

test('fewShot is stratified, seeded and deterministic', () => {
  const items = task('trec').trainItems();
  const a = fewShot(items, 12, 7);
  assert.equal(a.length, 12);
  const counts = new Map<number, number>();
  for (const i of a) counts.set(i.label, (counts.get(i.label) ?? 0) + 1);
  assert.deepEqual([...counts.keys()].sort(), [0, 1, 2, 3, 4, 5]);
  for (const n of counts.values()) assert.equal(n, 2);
  assert.deepEqual(a.map((i) => i.label), [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]);
  assert.deepEqual(fewShot(items, 12, 7).map((i) => i.id), a.map((i) => i.id));
  assert.notDeepEqual(fewShot(items, 12, 8).map((i) => i.id), a.map((i) => i.id));
  assert.equal(new Set(a.map((i) => i.id)).size, 12);
  // a rare label runs out; the rest fill in
  const small = [...items.filter((i) => i.label === 0).slice(0, 1), ...items.filter((i) => i.label === 1).slice(0, 10)];
  const s = fewShot(small, 5, 1);
  assert.deepEqual(s.map((i) => i.label), [0, 1, 1, 1, 1]);
  assert.equal(fewShot(small, 100, 1).length, 11);
  assert.deepEqual(fewShot(items, 0, 1), []);
});
