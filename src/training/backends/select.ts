/** Chooses and starts the TensorFlow.js backend a trial trains on: native TensorFlow, wasm or pure-JS cpu. */
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../../util/errors.js';
import { configureWasmPaths, wasmHasSimd } from './wasm-setup.js';
import { registerWasmTrainingKernels } from './wasm-kernels.js';
import { registerBatchNormKernels } from './batch-norm.js';

export type BackendName = 'auto' | 'tensorflow' | 'wasm' | 'cpu';
export const backendNames: readonly BackendName[] = ['auto', 'tensorflow', 'wasm', 'cpu'];

export interface SelectedBackend {
  name: 'tensorflow' | 'wasm' | 'cpu';
  /** One line saying which backend runs and why. */
  reason: string;
}

/** The native packages, most capable first. Both are optional dependencies. */
const nativePackages = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

interface Attempt {
  ok: boolean;
  detail: string;
}

const cache = new Map<BackendName, SelectedBackend>();

function firstLine(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split('\n')[0];
}

function isMissingModule(e: unknown, pkg: string): boolean {
  const err = e as { code?: string; message?: string };
  return (err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'MODULE_NOT_FOUND') && String(err.message).includes(pkg);
}

/** Loads a native package (it registers the 'tensorflow' backend) and switches to it. */
async function startTensorflow(): Promise<Attempt> {
  const problems: string[] = [];
  for (const pkg of nativePackages) {
    try {
      await import(pkg);
    } catch (e) {
      problems.push(isMissingModule(e, pkg) ? `${pkg} is not installed` : `${pkg} failed to load (${firstLine(e)})`);
      continue;
    }
    if (await tf.setBackend('tensorflow')) return { ok: true, detail: `${pkg} is installed` };
    problems.push(`${pkg} loaded but its backend did not start`);
  }
  const allMissing = problems.every((p) => p.endsWith('is not installed'));
  return { ok: false, detail: allMissing ? `${nativePackages.join(' and ')} are not installed` : problems.join('; ') };
}

async function startWasm(): Promise<Attempt> {
  try {
    configureWasmPaths();
    if (!(await tf.setBackend('wasm'))) return { ok: false, detail: 'the wasm backend failed to initialise' };
  } catch (e) {
    return { ok: false, detail: `the wasm backend failed to initialise (${firstLine(e)})` };
  }
  registerWasmTrainingKernels();
  return { ok: true, detail: (await wasmHasSimd()) ? 'SIMD, single-threaded' : 'no SIMD, single-threaded' };
}

async function startCpu(): Promise<Attempt> {
  if (!(await tf.setBackend('cpu'))) return { ok: false, detail: 'the cpu backend failed to start' };
  registerBatchNormKernels();
  return { ok: true, detail: '' };
}

async function select(name: BackendName): Promise<SelectedBackend> {
  switch (name) {
    case 'tensorflow': {
      const a = await startTensorflow();
      if (!a.ok) throw new UserError(`--backend tensorflow: ${a.detail}; install @tensorflow/tfjs-node (or -gpu) or use --backend wasm`);
      return { name, reason: `tensorflow: requested; ${a.detail}` };
    }
    case 'wasm': {
      const a = await startWasm();
      if (!a.ok) throw new UserError(`--backend wasm: ${a.detail}`);
      return { name, reason: `wasm: requested (${a.detail})` };
    }
    case 'cpu': {
      const a = await startCpu();
      if (!a.ok) throw new UserError(`--backend cpu: ${a.detail}`);
      return { name, reason: 'cpu: requested (pure JavaScript, slow)' };
    }
    case 'auto': {
      const native = await startTensorflow();
      if (native.ok) return { name: 'tensorflow', reason: `tensorflow: ${native.detail}` };
      const wasm = await startWasm();
      if (wasm.ok) return { name: 'wasm', reason: `wasm (${wasm.detail}): ${native.detail}` };
      const cpu = await startCpu();
      if (cpu.ok) return { name: 'cpu', reason: `cpu: ${native.detail}, and ${wasm.detail}` };
      throw new UserError(`no TensorFlow.js backend could start: ${native.detail}; ${wasm.detail}; ${cpu.detail}`);
    }
    default:
      throw new UserError(`unknown backend '${String(name)}' (expected one of ${backendNames.join(', ')})`);
  }
}

/**
 * Starts the named backend (or the best available for 'auto'), registers our wasm training kernels, and
 * says why. Idempotent: asking again for the same name reuses the result and re-activates that backend.
 */
export async function selectBackend(name: BackendName): Promise<SelectedBackend> {
  const previous = cache.get(name);
  if (previous != null) {
    if (tf.getBackend() !== previous.name) await tf.setBackend(previous.name);
    if (previous.name === 'wasm') registerWasmTrainingKernels();
    return previous;
  }
  const chosen = await select(name);
  await tf.ready();
  cache.set(name, chosen);
  return chosen;
}
