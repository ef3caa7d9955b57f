// tasks/ — the task registry: built-in benchmark tasks, custom tasks from user files, training prompts.
export { TaskError, type ChoiceItem, type Task, type TaskInfo, type TaskErrorCode } from './types.js';
export { getTask, listTasks, defaultDataDir, type GetTaskOptions } from './registry.js';
export { loadCustomTask, previewRows, type CustomMapping, type ClassificationMapping, type MultipleChoiceMapping, type CustomTask, type CustomTaskOptions } from './custom.js';
export { ALPACA_TEMPLATE, alpacaTemplate, defaultTemplate, templateFor, renderExample, fewShot, choiceTexts, type PromptTemplate } from './prompts.js';
export { placeholders } from './template.js';
