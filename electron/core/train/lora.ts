// lora.ts — LoRA settings as users give them, the slot layout of Tailor's LoRA arena (the same order as
// native/engine/lora.cpp), and PEFT adapters on disk: adapter_config.json + adapter_model.safetensors
// with keys base_model.model.model.layers.N.{self_attn|mlp}.X_proj.lora_{A,B}.weight.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EngineError } from '../engine/errors.js';
import type { ModelInfo } from '../engine/engine.js';
import { readSafetensorsHeader, writeSafetensors, type SafetensorsEntry } from '../formats/safetensors-write.js';
import { bytesOf } from '../formats/dtype.js';
import { atomicWriteDir } from './atomic.js';

export const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];
const SHORT: Record<string, LoraTarget> = { q: 'q_proj', k: 'k_proj', v: 'v_proj', o: 'o_proj', gate: 'gate_proj', up: 'up_proj', down: 'down_proj' };

export interface LoraSettings {
  rank: number;
  alpha: number;
  rslora: boolean;
  dropout: number;
  targets: LoraTarget[];
}

/** The paper's defaults: r = 8, alpha = 16, all seven projections. */
export const DEFAULT_LORA: LoraSettings = { rank: 8, alpha: 16, rslora: false, dropout: 0.05, targets: [...LORA_TARGETS] };

export function parseTargets(s: string): LoraTarget[] {
  const out: LoraTarget[] = [];
  for (const raw of s.split(',').map((x) => x.trim()).filter(Boolean)) {
    const t = (SHORT[raw] ?? raw) as LoraTarget;
    if (!LORA_TARGETS.includes(t)) throw new EngineError('E_ARG', `unknown LoRA target "${raw}" (use q,k,v,o,gate,up,down)`);
    if (!out.includes(t)) out.push(t);
  }
  if (out.length === 0) throw new EngineError('E_ARG', 'at least one LoRA target is needed');
  return out;
}

export function targetMask(targets: readonly LoraTarget[]): number {
  return targets.reduce((m, t) => m | (1 << LORA_TARGETS.indexOf(t)), 0);
}

export interface LoraSlot { layer: number; target: LoraTarget; module: 'self_attn' | 'mlp'; a: number; b: number; in: number; out: number }

/** The arena layout for a model: per layer, per target in order, A [r, in] then B [out, r]. */
export function loraSlots(info: Pick<ModelInfo, 'dim' | 'headDim' | 'layers'>, rank: number, targets: readonly LoraTarget[]): { slots: LoraSlot[]; size: number } {
  const slots: LoraSlot[] = [];
  let size = 0;
  info.layers.forEach((l, layer) => {
    const qd = l.nHead * info.headDim, kvd = l.nKvHead * info.headDim;
    const dims: Record<LoraTarget, [number, number]> = {
      q_proj: [info.dim, qd], k_proj: [info.dim, kvd], v_proj: [info.dim, kvd], o_proj: [qd, info.dim],
      gate_proj: [info.dim, l.ffn], up_proj: [info.dim, l.ffn], down_proj: [l.ffn, info.dim],
    };
    for (const t of LORA_TARGETS) {
      const [inp, out] = dims[t];
      if (!targets.includes(t) || inp === 0 || out === 0) continue;
      const a = size;
      size += rank * inp;
      const b = size;
      size += out * rank;
      slots.push({ layer, target: t, module: LORA_TARGETS.indexOf(t) <= 3 ? 'self_attn' : 'mlp', a, b, in: inp, out });
    }
  });
  return { slots, size };
}

const key = (s: LoraSlot, ab: 'A' | 'B') => `base_model.model.model.layers.${s.layer}.${s.module}.${s.target}.lora_${ab}.weight`;

export interface PeftAdapter {
  settings: LoraSettings;
  params: Float32Array;
  baseModel: string;
}

/** Writes a PEFT LoRA adapter folder (atomically; refuses to overwrite unless force). */
export function writePeftAdapter(dir: string, info: ModelInfo, a: PeftAdapter, opts: { force?: boolean; note?: string } = {}): void {
  const { slots, size } = loraSlots(info, a.settings.rank, a.settings.targets);
  if (size !== a.params.length) throw new EngineError('E_SHAPE', `adapter has ${a.params.length} values, the layout needs ${size}`);
  atomicWriteDir(dir, !!opts.force, (tmp) => {
    const config = {
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      base_model_name_or_path: a.baseModel,
      r: a.settings.rank,
      lora_alpha: a.settings.alpha,
      lora_dropout: a.settings.dropout,
      use_rslora: a.settings.rslora,
      target_modules: a.settings.targets,
      bias: 'none',
      fan_in_fan_out: false,
      inference_mode: true,
      init_lora_weights: true,
      modules_to_save: null,
      revision: null,
    };
    fs.writeFileSync(path.join(tmp, 'adapter_config.json'), JSON.stringify(config, null, 2) + '\n');
    const r = a.settings.rank;
    const entries: SafetensorsEntry[] = [];
    for (const s of slots) {
      entries.push({ name: key(s, 'A'), dtype: 'F32', shape: [r, s.in], data: bytesOf(a.params.slice(s.a, s.a + r * s.in)) });
      entries.push({ name: key(s, 'B'), dtype: 'F32', shape: [s.out, r], data: bytesOf(a.params.slice(s.b, s.b + s.out * r)) });
    }
    writeSafetensors(path.join(tmp, 'adapter_model.safetensors'), entries, { format: 'pt' });
    if (opts.note) fs.writeFileSync(path.join(tmp, 'README.md'), opts.note);
  });
}

/** Reads a PEFT LoRA adapter for `info`'s model into Tailor's arena order. */
export function readPeftAdapter(dir: string, info: ModelInfo): PeftAdapter {
  const cfgPath = path.join(dir, 'adapter_config.json');
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new EngineError((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'E_IO' : 'E_FORMAT', `cannot read ${cfgPath}: ${(e as Error).message}`);
  }
  if (cfg.peft_type !== 'LORA') throw new EngineError('E_UNSUPPORTED', `${cfgPath}: peft_type ${String(cfg.peft_type)} is not LORA`);
  const rank = Number(cfg.r), alpha = Number(cfg.lora_alpha);
  if (!Number.isInteger(rank) || rank <= 0 || !(alpha > 0)) throw new EngineError('E_FORMAT', `${cfgPath}: r and lora_alpha must be positive`);
  if (cfg.fan_in_fan_out) throw new EngineError('E_UNSUPPORTED', `${cfgPath}: fan_in_fan_out adapters are not supported`);
  const tm = cfg.target_modules;
  const targets = parseTargets(Array.isArray(tm) ? tm.map(String).join(',') : String(tm ?? ''));
  const settings: LoraSettings = { rank, alpha, rslora: !!cfg.use_rslora, dropout: Number(cfg.lora_dropout ?? 0), targets };
  const file = path.join(dir, 'adapter_model.safetensors');
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(fs.readFileSync(file));
  } catch (e) {
    throw new EngineError('E_IO', `cannot read ${file}: ${(e as Error).message}`);
  }
  let header;
  try {
    header = readSafetensorsHeader(bytes);
  } catch (e) {
    throw new EngineError('E_FORMAT', `${file}: ${(e as Error).message}`);
  }
  const byName = new Map(header.tensors.map((t) => [t.name, t]));
  const { slots, size } = loraSlots(info, rank, targets);
  const params = new Float32Array(size);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const s of slots) {
    for (const [ab, off, shape] of [['A', s.a, [rank, s.in]], ['B', s.b, [s.out, rank]]] as const) {
      const name = key(s, ab);
      const t = byName.get(name);
      if (!t) throw new EngineError('E_SHAPE', `${file}: missing ${name} — the adapter does not fit this model (it fits only the base it was trained on)`);
      if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16') throw new EngineError('E_UNSUPPORTED', `${file}: ${name} is ${t.dtype}`);
      if (t.shape.length !== 2 || t.shape[0] !== shape[0] || t.shape[1] !== shape[1])
        throw new EngineError('E_SHAPE', `${file}: ${name} has shape [${t.shape.join(', ')}], this model needs [${shape.join(', ')}] — the adapter fits only the base it was trained on`);
      const n = shape[0] * shape[1];
      const base = header.dataOffset + t.begin;
      for (let i = 0; i < n; i++) {
        if (t.dtype === 'F32') params[off + i] = view.getFloat32(base + 4 * i, true);
        else {
          const h = view.getUint16(base + 2 * i, true);
          params[off + i] = t.dtype === 'BF16' ? new Float32Array(new Uint32Array([h << 16]).buffer)[0] : halfToFloat(h);
        }
      }
    }
  }
  return { settings, params, baseModel: String(cfg.base_model_name_or_path ?? '') };
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}
