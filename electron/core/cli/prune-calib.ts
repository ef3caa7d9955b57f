// prune-calib.ts — the calibration of `tailor prune` from its flags: a text file (--calib, seeded windows),
// exact token ids (--calib-ids FILE.json) or a task's training prompts (--calib-task NAME|FILE, rendered
// with the task's training template as LoRA sees them, packed into windows); --samples, --seq-len, --seed.
import * as fs from 'node:fs';
import { EngineError } from '../engine/errors.js';
import type { Model } from '../engine/engine.js';
import type { RawExample } from '../engine/native.js';
import { calibrationFromExamples, calibrationFromIds, calibrationFromText, taskCalibrationRecords } from '../prune/calibration.js';
import { templateFor } from '../tasks/index.js';
import { readTextFile } from '../train/data.js';
import { num, str, taskArg, type CommandContext } from './args.js';

export const NEEDS_NO_CALIBRATION = ['magnitude', 'magnitude-l2', 'random'];

/** The calibration examples and where they came from ("text:FILE", "ids:FILE", "task:NAME"; none: "none"). */
export function pruneCalibration(ctx: CommandContext, m: Model, method: string, seed: number): { calib: RawExample[]; source: string } {
  const text = str(ctx, 'calib'), idsFile = str(ctx, 'calib-ids'), taskRef = str(ctx, 'calib-task');
  if ([text, idsFile, taskRef].filter((x) => x !== undefined).length > 1) throw ctx.usageError('give one of --calib FILE, --calib-ids FILE.json or --calib-task NAME|FILE');
  const samples = num(ctx, 'samples', 10, { int: true, min: 1 }), seqLen = num(ctx, 'seq-len', 64, { int: true, min: 2 });
  if (idsFile) {
    let j: unknown;
    try {
      j = JSON.parse(fs.readFileSync(idsFile, 'utf8'));
    } catch (e) {
      throw new EngineError('E_FORMAT', `cannot read ${idsFile}: ${(e as Error).message}`);
    }
    return { calib: calibrationFromIds(j, m.info.vocabSize), source: `ids:${idsFile}` };
  }
  if (text) return { calib: calibrationFromText(m.requireTokenizer().encode(readTextFile(text)), samples, seqLen, seed, m.info.bosId), source: `text:${text}` };
  if (taskRef) {
    const style = str(ctx, 'template-style') ?? 'task';
    if (style !== 'task' && style !== 'alpaca') throw ctx.usageError('--template-style must be task or alpaca');
    const task = taskArg(ctx, 'calib-task');
    const template = templateFor(task, style);
    const records = taskCalibrationRecords([{ items: task.trainItems(), template }], seed);
    return { calib: calibrationFromExamples(m.requireTokenizer(), records, samples, seqLen, seed, m.info.bosId), source: `task:${task.info.name}` };
  }
  if (!NEEDS_NO_CALIBRATION.includes(method))
    throw ctx.usageError(`--method ${method} needs calibration data: --calib FILE (text), --calib-ids FILE.json or --calib-task NAME|FILE`);
  return { calib: [], source: 'none' };
}
