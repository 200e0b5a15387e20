/** Starts tfjs-backend-wasm under Node with its binaries read from node_modules. */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

let pathsSet = false;

/**
 * Points the wasm backend at the .wasm files shipped in node_modules. Node has WebAssembly SIMD (so the SIMD
 * binary is used), but tfjs-backend-wasm 4.22 disables its threaded build under Node (its pthreads need Web
 * Workers), so wasm runs XNNPACK on one thread; parallelism comes from running trials in separate workers.
 */
export function configureWasmPaths(): void {
  if (pathsSet) return;
  const require = createRequire(import.meta.url);
  const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  setWasmPaths(dir + path.sep);
  pathsSet = true;
}

/** True when the wasm binary uses SIMD (evaluated by tfjs from WebAssembly.validate). */
export async function wasmHasSimd(): Promise<boolean> {
  return Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
}
