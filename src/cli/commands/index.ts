/** Every prunespace command registers itself here, one module per command. */
import type { Command } from 'commander';
import { registerBenchInfer } from './bench-infer.js';
import { registerComplexity } from './complexity.js';
import { registerDistill } from './distill.js';
import { registerExport } from './export.js';
import { registerLatencyTable } from './latency-table.js';
import { registerPrune } from './prune.js';
import { registerSample } from './sample.js';
import { registerRefine } from './refine.js';
import { registerReport } from './report.js';
import { registerSearch } from './search.js';
import { registerServe } from './serve.js';
import { registerResume } from './resume.js';
import { registerStatus } from './status.js';
import { registerTrain } from './train.js';
import { registerWorker } from './worker.js';

export function registerCommands(program: Command): void {
  registerComplexity(program);
  registerSample(program);
  registerReport(program);
  registerRefine(program);
  registerSearch(program);
  registerResume(program);
  registerStatus(program);
  registerTrain(program);
  registerWorker(program);
  registerDistill(program);
  registerPrune(program);
  registerBenchInfer(program);
  registerExport(program);
  registerLatencyTable(program);
  registerServe(program);
}
