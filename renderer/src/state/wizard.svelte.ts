// wizard.svelte.ts — the "New tailoring run" wizard: the spec being built, the current step, the draft
// (restored on open, saved debounced on change, cleared on start), and the live helpers of each step
// (prompt preview, pruning plan, LoRA estimate, validation) with their errors. One instance, `wizard`.
import type { LoraEstimate, PlanView, PromptTemplate, SpecInput, TaskRef, TemplateChoice, WireError } from '../../../electron/core/api/contract';
import { api, toWire } from '../lib/api';
import { debounce, parseCount } from '../lib/format';
import { Live } from '../lib/live.svelte';
import { app } from './app.svelte';
import { CustomTaskForm } from './customTask.svelte';
import { STEPS, defaultSpec, errorsOfStep, normalizeSpec, ratioProblem, targetProblem, taskName, validateSpec } from './spec';

export class WizardState {
  spec = $state<SpecInput>(defaultSpec());
  step = $state(0);
  /** the draft has been asked for (once per session) */
  opened = $state(false);
  /** the draft is loaded (or there was none): changes are saved from now on */
  ready = $state(false);
  restored = $state(false);
  savedAt = $state<number | null>(null);
  saveError = $state<WireError | null>(null);

  custom = new CustomTaskForm();

  // prompt step
  promptTask = $state(0);
  defaults = new Live<{ task: PromptTemplate; alpaca: PromptTemplate }>();
  preview = new Live<PromptTemplate[]>();

  // pruning step
  pruneMode = $state<'ratio' | 'target'>('ratio');
  ratioInput = $state<number | null>(0.2);
  targetInput = $state('');
  plan = new Live<PlanView>();

  // LoRA and review steps
  estimateRatio = $state(0);
  estimate = new Live<LoraEstimate>();
  validation = new Live<{ outDir: string; ratios: number[] }>();
  starting = $state(false);
  startError = $state<WireError | null>(null);

  model = $derived(app.modelByPath(this.spec.model));
  errors = $derived(validateSpec(this.spec, this.model));
  ratioInputProblem = $derived(ratioProblem(this.ratioInput));
  targetValue = $derived(parseCount(this.targetInput));
  targetInputProblem = $derived(this.targetInput.trim() ? targetProblem(this.targetValue, this.model) : null);
  /** the errors that block leaving the current step */
  stepErrors = $derived.by(() => {
    const errs = errorsOfStep(this.errors, this.step);
    if (this.step === 3) {
      if (this.pruneMode === 'ratio' && this.ratioInputProblem) errs.push(this.ratioInputProblem);
      if (this.pruneMode === 'target' && this.targetInputProblem) errs.push(this.targetInputProblem);
    }
    return errs;
  });
  templateKind = $derived(typeof this.spec.lora.template === 'string' ? this.spec.lora.template : 'custom');
  previewTask = $derived<TaskRef | null>(this.spec.tasks[Math.min(this.promptTask, this.spec.tasks.length - 1)] ?? null);
  /** ratios the LoRA estimate can be asked for: the chosen ratios, else the plan's (for a target) */
  estimateRatios = $derived(this.spec.prune.ratios.length ? this.spec.prune.ratios : this.plan.value ? [this.plan.value.ratio] : [0.2]);

  private saveDraft = debounce(() => void this.doSave(), 700);
  private planLater = debounce(() => void this.fetchPlan(), 250);
  private previewLater = debounce(() => void this.fetchPreview(), 400);
  private estimateLater = debounce(() => void this.fetchEstimate(), 400);
  private validateLater = debounce(() => void this.fetchValidation(), 300);

  /** restores the draft (spec and step) the first time the wizard opens */
  async open() {
    if (this.opened) return;
    this.opened = true;
    try {
      const d = await api.invoke('drafts.get', {});
      if (d) {
        this.spec = normalizeSpec(d.spec);
        this.step = Math.max(0, Math.min(STEPS.length - 1, d.step | 0));
        this.savedAt = d.updatedAt;
        this.restored = true;
        this.syncInputs();
      }
    } catch (e) {
      app.fail(e, 'Could not restore the draft');
    } finally {
      this.ready = true;
    }
  }

  /** loads a spec (e.g. a finished run's, "Re-run with changes") as a new draft at the first step */
  loadSpec(raw: unknown, name?: string) {
    const s = normalizeSpec(raw);
    delete s.outDir;
    if (name) s.name = name;
    this.spec = s;
    this.step = 0;
    this.opened = true;
    this.ready = true;
    this.restored = false;
    this.custom.reset();
    this.syncInputs();
    this.changed();
  }

  /** starts over with the defaults (and an empty draft) */
  async reset() {
    this.spec = defaultSpec();
    this.step = 0;
    this.restored = false;
    this.custom.reset();
    this.syncInputs();
    this.saveDraft.cancel();
    this.cleanKey = this.key();
    try {
      await api.invoke('drafts.clear', {});
      this.savedAt = null;
    } catch (e) {
      app.fail(e, 'Could not clear the draft');
    }
  }

  private syncInputs() {
    this.pruneMode = this.spec.prune.ratios.length === 0 && this.spec.prune.targets.length > 0 ? 'target' : 'ratio';
    this.ratioInput = this.spec.prune.ratios[0] ?? 0.2;
    this.targetInput = '';
    this.promptTask = 0;
    this.estimateRatio = 0;
    this.plan.clear();
    this.preview.clear();
    this.estimate.clear();
    this.validation.clear();
  }

  /** the state right after a start or reset: not worth a draft until something changes */
  private cleanKey: string | null = null;
  /** the state a start failed in (its error shows until something changes) */
  private startKey = '';

  private key() {
    return JSON.stringify([this.spec, this.step]);
  }

  /** call after any change of spec or step: the draft is saved a moment later */
  changed() {
    if (!this.ready) return;
    if (this.startError && this.key() !== this.startKey) this.startError = null;
    if (this.cleanKey !== null && this.key() === this.cleanKey) return;
    this.cleanKey = null;
    this.saveDraft();
  }

  private async doSave() {
    try {
      const r = await api.invoke('drafts.save', { spec: $state.snapshot(this.spec) as SpecInput, step: this.step });
      this.savedAt = r.savedAt;
      this.saveError = null;
    } catch (e) {
      this.saveError = toWire(e);
    }
  }

  goTo(step: number) {
    if (step < 0 || step >= STEPS.length) return;
    // forward only through valid steps
    for (let s = this.step; s < step; s++) if (errorsOfStep(this.errors, s).length) return;
    this.step = step;
    this.changed();
  }

  next() {
    if (this.stepErrors.length) return;
    this.goTo(this.step + 1);
  }

  back() {
    this.goTo(this.step - 1);
  }

  /** the step a sidebar link may jump to: any earlier one, or later ones when all before are valid */
  reachable(step: number): boolean {
    for (let s = 0; s < step; s++) if (errorsOfStep(this.errors, s).length) return false;
    return true;
  }

  // ---- tasks -------------------------------------------------------------------------------------

  hasTask(name: string) {
    return this.spec.tasks.some((t) => taskName(t) === name);
  }

  toggleTask(name: string, on: boolean) {
    this.spec.tasks = on ? [...this.spec.tasks.filter((t) => taskName(t) !== name), name] : this.spec.tasks.filter((t) => taskName(t) !== name);
    this.changed();
  }

  removeTask(i: number) {
    this.spec.tasks = this.spec.tasks.filter((_, j) => j !== i);
    this.changed();
  }

  addCustom() {
    const ref = this.custom.ref;
    if (!ref || !this.custom.checked) return;
    this.spec.tasks = [...this.spec.tasks.filter((t) => taskName(t) !== ref.name), $state.snapshot(ref)];
    this.custom.reset();
    this.changed();
  }

  // ---- prompt ------------------------------------------------------------------------------------

  setTemplate(kind: 'task' | 'alpaca' | 'custom') {
    let t: TemplateChoice;
    if (kind === 'custom') {
      const cur = this.spec.lora.template;
      const base = typeof cur === 'object' ? cur : (cur === 'alpaca' ? this.defaults.value?.alpaca : this.defaults.value?.task) ?? { prompt: '', completion: '' };
      t = { prompt: base.prompt, completion: base.completion };
    } else t = kind;
    this.spec.lora.template = t;
    this.changed();
  }

  loadDefaults() {
    const task = this.previewTask;
    if (!task) return this.defaults.clear();
    void this.defaults.run(() => api.invoke('prompts.defaults', { task: $state.snapshot(task) as TaskRef }));
  }

  schedulePreview() {
    this.previewLater();
  }

  private fetchPreview() {
    const task = this.previewTask;
    if (!task || this.errors['lora.template.prompt'] || this.errors['lora.template.completion']) return this.preview.clear();
    void this.preview.run(() => api.invoke('prompts.preview', {
      task: $state.snapshot(task) as TaskRef, template: $state.snapshot(this.spec.lora.template) as TemplateChoice, n: 3, seed: this.spec.seed,
    }));
  }

  // ---- pruning -----------------------------------------------------------------------------------

  addRatio() {
    const r = this.ratioInput;
    if (r === null || this.ratioInputProblem) return;
    const v = Math.round(r * 1000) / 1000;
    if (!this.spec.prune.ratios.includes(v)) this.spec.prune.ratios = [...this.spec.prune.ratios, v].sort((a, b) => a - b);
    this.changed();
  }

  removeRatio(r: number) {
    this.spec.prune.ratios = this.spec.prune.ratios.filter((x) => x !== r);
    this.changed();
  }

  addTarget() {
    const t = this.targetValue;
    if (t === null || this.targetInputProblem) return;
    if (!this.spec.prune.targets.includes(t)) this.spec.prune.targets = [...this.spec.prune.targets, t].sort((a, b) => b - a);
    this.targetInput = '';
    this.changed();
  }

  removeTarget(t: number) {
    this.spec.prune.targets = this.spec.prune.targets.filter((x) => x !== t);
    this.changed();
  }

  setLayerRange(on: boolean) {
    const n = this.model?.nLayers ?? 1;
    this.spec.prune.layers = on ? [0, Math.max(0, n - 1)] : null;
    this.changed();
  }

  schedulePlan() {
    this.planLater();
  }

  private fetchPlan() {
    const model = this.spec.model;
    if (!model || this.errors['prune.layers']) return this.plan.clear();
    const byTarget = this.pruneMode === 'target';
    // by target: the one being typed, else the first one chosen
    const target = this.targetInput.trim() ? this.targetValue : (this.spec.prune.targets[0] ?? null);
    if (byTarget ? target === null || this.targetInputProblem : this.ratioInput === null || this.ratioInputProblem) return this.plan.clear();
    const layers = this.spec.prune.layers ? ([...this.spec.prune.layers] as [number, number]) : null;
    void this.plan.run(() => api.invoke('prune.plan', {
      model, ratio: byTarget ? null : this.ratioInput, targetParams: byTarget ? target : null, layers, roundTo: this.spec.prune.roundTo ?? 1,
    }));
  }

  // ---- LoRA --------------------------------------------------------------------------------------

  scheduleEstimate() {
    this.estimateLater();
  }

  private fetchEstimate() {
    if (!this.spec.model || !this.spec.tasks.length || errorsOfStep(this.errors, 4).length) return this.estimate.clear();
    const ratio = this.estimateRatios[Math.min(this.estimateRatio, this.estimateRatios.length - 1)] ?? 0.2;
    const s = $state.snapshot(this.spec) as SpecInput;
    void this.estimate.run(() => api.invoke('lora.estimate', { model: s.model, ratio, tasks: s.tasks, lora: s.lora, seed: s.seed, roundTo: s.prune.roundTo ?? 1 }));
  }

  // ---- review and start --------------------------------------------------------------------------

  scheduleValidation() {
    this.validateLater();
  }

  private fetchValidation() {
    if (Object.keys(this.errors).length) return this.validation.clear();
    const spec = this.cleanSpec();
    void this.validation.run(() => api.invoke('runs.validate', { spec }));
  }

  /** the spec as sent: a plain object without an empty outDir */
  cleanSpec(): SpecInput {
    const s = $state.snapshot(this.spec) as SpecInput;
    if (!s.outDir?.trim()) delete s.outDir;
    return s;
  }

  async start(): Promise<string | null> {
    if (Object.keys(this.errors).length || this.starting) return null;
    this.starting = true;
    this.startError = null;
    this.saveDraft.cancel();
    try {
      const { runId } = await api.invoke('runs.start', { spec: this.cleanSpec() });
      try {
        await api.invoke('drafts.clear', {});
      } catch (e) {
        app.fail(e, 'The run started, but the draft could not be cleared');
      }
      this.spec = defaultSpec();
      this.step = 0;
      this.savedAt = null;
      this.restored = false;
      this.syncInputs();
      this.cleanKey = this.key();
      return runId;
    } catch (e) {
      this.startError = toWire(e);
      if (this.ready) this.saveDraft(); // the save cancelled above
      this.startKey = this.key();
      return null;
    } finally {
      this.starting = false;
    }
  }
}

export const wizard = new WizardState();
