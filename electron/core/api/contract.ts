// contract.ts — the one typed contract between the workbench's front end (the Svelte renderer) and its
// back end (the Electron main process, or `tailor serve`): every request channel with its payload and
// result, every pushed event with its payload, and the error shape on the wire. Pure types and constants
// (no Node, no DOM): main, preload, the server and the renderer all import this file.

// ---------------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------------

export type ErrorCode =
  | 'E_IO' | 'E_FORMAT' | 'E_UNSUPPORTED' | 'E_SHAPE' | 'E_ARG' | 'E_CANCELLED' | 'E_OOM' | 'E_INTERNAL' | 'E_NO_TOKENIZER'
  | 'E_TASK_UNKNOWN' | 'E_TASK_FORMAT' | 'E_DB' | 'E_DB_NEWER' | 'E_NOT_FOUND'
  | 'E_PAYLOAD' | 'E_UNKNOWN_CHANNEL' | 'E_AUTH' | 'E_BUSY';

/** An error as it crosses the contract: a stable code, a message for the user, the offending field. */
export interface WireError { code: ErrorCode; message: string; field?: string }

export type ModelFormat = 'hf' | 'gguf' | 'llama2c';
export type ImportanceMethod = 'taylor' | 'taylor-vector' | 'taylor-second' | 'magnitude' | 'magnitude-l2' | 'wanda-sp' | 'random';
export const IMPORTANCE_METHODS: readonly ImportanceMethod[] = ['taylor', 'taylor-vector', 'taylor-second', 'magnitude', 'magnitude-l2', 'wanda-sp', 'random'];
/** The largest prune.roundTo: a pruned layer keeps its MLP channels in multiples of 1 to 1024. */
export const MAX_ROUND_TO = 1024;
export type ExportFormat = 'gguf' | 'hf' | 'peft';
export type ExportDtype = 'f32' | 'f16' | 'bf16' | 'q8_0';
export type RunStatus = 'running' | 'done' | 'failed' | 'cancelled' | 'interrupted';
export type StageStatus = 'pending' | 'running' | 'done' | 'failed' | 'cancelled' | 'interrupted';

export interface AppInfo {
  version: string;
  mode: 'electron' | 'serve';
  /** native file dialogs are available (Electron); otherwise the user types paths */
  canPickFiles: boolean;
  platform: string;
  engine: {
    blas: string; hardwareThreads: number; cudaBuilt: boolean;
    /** where a run computes with compute.backend 'auto' (the default): 'cuda' when a usable device exists, else 'cpu' */
    backend: string;
    /** CUDA as this build and machine offer it: compiled in, a usable device, or why not */
    cuda: {
      built: boolean; available: boolean; reason: string | null; devices: Array<{ name: string; computeCapability: string; totalMemory: number; freeMemory: number }>;
      /** cuBLASLt for the matrix products: "on (library (version))" or "off (why)"; null without a usable device */
      cublasLt: string | null;
    };
  };
  dataDir: string;
  dbPath: string;
}

export interface LayerShape { nHead: number; nKvHead: number; ffn: number }

export interface ModelEntry {
  id: string;
  name: string;
  path: string;
  format: ModelFormat;
  architecture: string;
  params: number;
  dim: number;
  nLayers: number;
  headDim: number;
  vocabSize: number;
  contextLength: number;
  /** per-layer heads / KV heads / FFN channels (they differ in a structurally pruned model) */
  layers: LayerShape[];
  uniform: boolean;
  /** what kind of tokenizer came with it, or null */
  tokenizer: string | null;
  /** the keys and values a generation or scoring call caches per token, every layer's: fp32 on the CPU and
   * wherever bf16 is not taken; bf16BytesPerToken where this machine's CUDA device keeps them in bf16 with bf16
   * weights (compute.weights 'bf16' and a head size its tensor-core attention takes), else null */
  kvCache: { bytesPerToken: number; bf16BytesPerToken: number | null };
  bundled: boolean;
  addedAt: number;
}

export interface TaskEntry { name: string; title: string; choices: number | 'varies'; description: string }

export type CustomMapping =
  | { kind: 'classification'; text: string; label: string; labelNames?: string[]; template?: string }
  | { kind: 'multiple-choice'; question: string; choices: string[] | string; answer: string; template?: string };
export interface CustomTaskRef { name: string; file: string; mapping: CustomMapping }
/** A built-in task by name, or the user's own file with its column mapping. */
export type TaskRef = string | CustomTaskRef;

export interface FilePreview { file: string; columns: string[]; rows: Array<Record<string, string>> }
export interface TaskCheck {
  name: string;
  evalItems: number;
  trainItems: number;
  /** a few rendered evaluation items: context, the choices, the correct one */
  sample: Array<{ context: string; choices: string[]; label: number }>;
}

export interface PromptTemplate { prompt: string; completion: string }
export type TemplateChoice = 'task' | 'alpaca' | PromptTemplate;

export interface PlanLayer extends LayerShape { params: number; prunedAttn: boolean; prunedMlp: boolean }
export interface PlanView { ratio: number; paramsBefore: number; paramsAfter: number; removedShare: number; layers: PlanLayer[]; before: LayerShape[] }

export type LoraTarget = 'q_proj' | 'k_proj' | 'v_proj' | 'o_proj' | 'gate_proj' | 'up_proj' | 'down_proj';
export const LORA_TARGETS: readonly LoraTarget[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
export interface LoraSettings {
  rank: number; alpha: number; lr: number; epochs: number; batch: number; maxLen: number; trainShots: number; template: TemplateChoice;
  /** the projections that get adapters (default: all seven) */
  targets: LoraTarget[];
}
export interface LoraEstimate { examples: number; steps: number; trainTokens: number; trainableParams: number; seconds: number; bytes: number }

/** A pipeline spec as the wizard builds it (the same JSON `tailor run SPEC.json` reads). */
/** where a run computes: the backend of every model it loads, and (CUDA) how the weights are stored */
export interface ComputeSettings { backend: 'auto' | 'cpu' | 'cuda'; weights: 'f32' | 'bf16' }

export interface SpecInput {
  name: string;
  model: string;
  tasks: TaskRef[];
  /** where the run writes; default: a new folder under the app's data folder */
  outDir?: string;
  seed: number;
  eval: { limit: number | null; shots: number; perplexity: string[] };
  export: { format: 'gguf' | 'hf'; dtype: ExportDtype } | null;
  prune: {
    method: ImportanceMethod; ratios: number[]; targets: number[]; layers: [number, number] | null;
    calibText: string | null; calibSamples: number; calibSeqLen: number; global: boolean;
    /** calibrate on the tasks' training prompts instead of calibText (default false) */
    calibTask?: boolean;
    /** each pruned layer keeps a multiple of this many MLP channels (default 1: LLM-Pruner's counts) */
    roundTo?: number;
  };
  lora: LoraSettings;
  /** default {backend: 'auto', weights: 'f32'} */
  compute?: ComputeSettings;
}

export interface Draft { spec: Partial<SpecInput>; step: number; updatedAt: number }

export interface RunSummary {
  id: string; name: string; kind: string; status: RunStatus; source: 'cli' | 'app' | 'serve';
  error: string | null; createdAt: number; updatedAt: number;
  model: string | null; method: string | null; ratios: number[]; tasks: string[];
  /** mean recovery over tasks and ratios (pipelines that finished), else null */
  meanRecovery: number | null;
}
export interface StageView { ordinal: number; name: string; status: StageStatus; progress: number; startedAt: number | null; finishedAt: number | null }
export interface ResultView { task: string; setting: string; phase: string; metric: string; value: number }
export interface ArtifactView { kind: string; path: string; sha256: string | null; bytes: number; createdAt: number }

export interface ReportView {
  name: string; runId: string; model: string; paramsBefore: number; tasks: string[]; method: string;
  rows: Array<{ task: string; ratio: number; baseline: number; pruned: number; recovered: number; recovery: number; n: number }>;
  ratios: Array<{ ratio: number; paramsAfter: number; removedShare: number; meanRecovery: number; loraSeconds: number; loss: number[];
    importance: { layers: Array<{ attn: number[]; mlp: number[] }> }; exported: string | null }>;
  perplexity: Array<{ set: string; ratio: number; baseline: number; pruned: number; recovered: number }>;
  stageSeconds: Record<string, number>;
  /** each stage's peak of Tailor's GPU memory, in bytes (runs on CUDA only; the allocator's accounting) */
  stageDevicePeakBytes?: Record<string, number>;
  /** the backend the run's models ran on, as the engine names it (absent in reports from before it was recorded) */
  compute?: string;
  seconds: number;
}

export interface RunView extends RunSummary {
  spec: unknown;
  machine: unknown;
  stages: StageView[];
  results: ResultView[];
  artifacts: ArtifactView[];
  loss: Array<{ stage: string; step: number; value: number }>;
  report: ReportView | null;
  /** the run can be continued from its last finished stage */
  resumable: boolean;
  /** it is running in this process now */
  active: boolean;
  outDir: string | null;
  /** recent log lines of an active or finished run started here */
  log: string[];
}

export interface CompareView {
  runs: RunSummary[];
  /** settings that differ between the runs: dotted key → one value per run (JSON text) */
  settingsDiff: Array<{ key: string; values: string[] }>;
  /** one row per (task, setting, phase, metric) with one value per run (null where a run lacks it) */
  metrics: Array<{ task: string; setting: string; phase: string; metric: string; values: Array<number | null> }>;
  loss: Array<{ runId: string; stage: string; points: Array<{ step: number; value: number }> }>;
}

/** What a job works on: a model file or folder, or one ratio's result of a pipeline run. */
export type ModelSource = { kind: 'model'; path: string } | { kind: 'run'; runId: string; ratio: number; recovered: boolean };

export interface GenerateRequest {
  source: ModelSource; prompt: string; maxTokens: number; temperature: number; topK: number; topP: number; seed: number;
  /** which pane of the playground asked (echoed in events) */
  side: 'a' | 'b';
}
export interface ExportRequest { source: ModelSource; format: ExportFormat; dtype: ExportDtype; out: string; force: boolean }

export interface PickRequest { kind: 'file' | 'folder' | 'save'; title: string; filters?: Array<{ name: string; extensions: string[] }> }

// ---------------------------------------------------------------------------------------------------
// Request channels: payload → result
// ---------------------------------------------------------------------------------------------------

export interface Methods {
  'app.info': { req: Record<string, never>; res: AppInfo };
  'models.list': { req: Record<string, never>; res: ModelEntry[] };
  'models.add': { req: { path: string }; res: ModelEntry };
  'models.remove': { req: { id: string }; res: { removed: boolean } };
  'tasks.list': { req: Record<string, never>; res: TaskEntry[] };
  'tasks.previewFile': { req: { file: string; rows: number }; res: FilePreview };
  'tasks.check': { req: { task: TaskRef; seed: number }; res: TaskCheck };
  'prompts.defaults': { req: { task: TaskRef }; res: { task: PromptTemplate; alpaca: PromptTemplate } };
  'prompts.preview': { req: { task: TaskRef; template: TemplateChoice; n: number; seed: number }; res: PromptTemplate[] };
  'prune.plan': { req: { model: string; ratio: number | null; targetParams: number | null; layers: [number, number] | null; roundTo?: number }; res: PlanView };
  'lora.estimate': { req: { model: string; ratio: number; tasks: TaskRef[]; lora: LoraSettings; seed: number; roundTo?: number }; res: LoraEstimate };
  'drafts.get': { req: Record<string, never>; res: Draft | null };
  'drafts.save': { req: { spec: Partial<SpecInput>; step: number }; res: { savedAt: number } };
  'drafts.clear': { req: Record<string, never>; res: { cleared: boolean } };
  'runs.validate': { req: { spec: SpecInput }; res: { outDir: string; ratios: number[] } };
  'runs.start': { req: { spec: SpecInput }; res: { runId: string } };
  'runs.cancel': { req: { runId: string }; res: { cancelled: boolean } };
  'runs.resume': { req: { runId: string }; res: { runId: string } };
  'runs.list': { req: { status: RunStatus | null; kind: string | null; query: string; sort: 'newest' | 'oldest' | 'name' | 'recovery' }; res: RunSummary[] };
  'runs.get': { req: { runId: string }; res: RunView };
  'runs.delete': { req: { runId: string; deleteFiles: boolean }; res: { removedFiles: string[] } };
  'runs.compare': { req: { runIds: string[] }; res: CompareView };
  'generate.start': { req: GenerateRequest; res: { jobId: string } };
  'export.start': { req: ExportRequest; res: { jobId: string } };
  'jobs.cancel': { req: { jobId: string }; res: { cancelled: boolean } };
  'dialog.pick': { req: PickRequest; res: { path: string | null } };
  'shell.showItem': { req: { path: string }; res: { shown: boolean } };
}
export type Channel = keyof Methods;
export type Req<C extends Channel> = Methods[C]['req'];
export type Res<C extends Channel> = Methods[C]['res'];

export const CHANNELS: readonly Channel[] = [
  'app.info', 'models.list', 'models.add', 'models.remove', 'tasks.list', 'tasks.previewFile', 'tasks.check', 'prompts.defaults',
  'prompts.preview', 'prune.plan', 'lora.estimate', 'drafts.get', 'drafts.save', 'drafts.clear', 'runs.validate', 'runs.start',
  'runs.cancel', 'runs.resume', 'runs.list', 'runs.get', 'runs.delete', 'runs.compare', 'generate.start', 'export.start',
  'jobs.cancel', 'dialog.pick', 'shell.showItem',
];

// ---------------------------------------------------------------------------------------------------
// Pushed events (back end → front end), throttled to about 10 per second per run or job
// ---------------------------------------------------------------------------------------------------

export interface Events {
  /** a pipeline stage started, moved, finished or was skipped (resume) */
  'run.progress': { runId: string; stage: string; status: 'start' | 'progress' | 'done' | 'skipped'; fraction: number; etaSec: number | null; message: string | null };
  'run.loss': { runId: string; stage: string; step: number; loss: number };
  'run.log': { runId: string; time: number; line: string };
  'run.finished': { runId: string; status: RunStatus; error: WireError | null };
  'job.progress': { jobId: string; kind: 'export' | 'generate'; fraction: number; bytes: number | null; totalBytes: number | null; etaSec: number | null };
  'job.text': { jobId: string; side: 'a' | 'b'; delta: string };
  'job.finished': { jobId: string; kind: 'export' | 'generate'; ok: boolean; error: WireError | null; result: ExportDone | GenerateDone | null };
}
export interface ExportDone { paths: string[]; bytes: number; format: ExportFormat; architecture: string | null }
export interface GenerateDone { text: string; tokens: number; tokensPerSec: number; stopReason: string; side: 'a' | 'b' }
export type EventName = keyof Events;
export const EVENTS: readonly EventName[] = ['run.progress', 'run.loss', 'run.log', 'run.finished', 'job.progress', 'job.text', 'job.finished'];

/** What a front end talks to: the preload bridge (Electron) or HTTP + WebSocket (`tailor serve`). */
export interface TailorApi {
  invoke<C extends Channel>(channel: C, payload: Req<C>): Promise<Res<C>>;
  on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void;
}

/** The reply envelope on the wire (IPC and HTTP alike). */
export type Reply<T> = { ok: true; value: T } | { ok: false; error: WireError };
