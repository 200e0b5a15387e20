// The page side of `bench-infer --browser`: loads one model at a time on ONNX Runtime Web (wasm) or tfjs (wasm) and
// runs timed forward passes on request. Timing happens here, so driving the page adds nothing to the measured time.
import * as ort from '/ort/ort.wasm.min.mjs';

const tf = globalThis.tf;
let current = null;

/** Starts both runtimes on `threads` wasm threads; more than one needs the cross-origin isolation the server sends. */
async function start(threads) {
  if (threads > 1 && !globalThis.crossOriginIsolated) throw new Error('wasm threads need a cross-origin isolated page');
  ort.env.wasm.wasmPaths = `${location.origin}/ort/`;
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.proxy = false;
  // One thread: the plain SIMD build of the tfjs backend, which starts no workers at all.
  if (threads === 1) tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  tf.wasm.setWasmPaths(`${location.origin}/tfjs/`);
  tf.wasm.setThreadsCount(threads);
  if (!(await tf.setBackend('wasm'))) throw new Error('the tfjs wasm backend did not start');
  await tf.ready();
  return {
    ort: ort.env.versions.web ?? ort.env.versions.common,
    tfjs: tf.version.tfjs,
    tfjsWasm: tf.wasm.version_wasm,
    ortThreads: ort.env.wasm.numThreads,
    tfjsThreads: tf.wasm.getThreadsCount(),
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    userAgent: navigator.userAgent,
  };
}

/**
 * Loads a model for timing. `inputs` maps batch size to pixels in [0, 1] (the ONNX file's layout for onnxruntime-web,
 * NHWC for tfjs); tfjs gets them normalised as in training, since its model has no normalisation folded in.
 */
async function load(engine, spec) {
  await unload();
  const inputs = new Map();
  if (engine === 'onnxruntime-web') {
    const session = await ort.InferenceSession.create(spec.url, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
    for (const [size, data] of spec.inputs) inputs.set(size, new ort.Tensor('float32', Float32Array.from(data), spec.dims(size)));
    const forward = async (x) => (await session.run({ pixels: x })).logits.data;
    current = { forward, inputs, release: () => session.release() };
  } else {
    const model = await tf.loadLayersModel(spec.url);
    const [h, w, c] = spec.shape;
    for (const [size, data] of spec.inputs) {
      inputs.set(size, tf.tidy(() => tf.tensor4d(Float32Array.from(data), [size, h, w, c]).mul(255).sub(tf.tensor1d(spec.mean)).div(tf.tensor1d(spec.std))));
    }
    const forward = async (x) => {
      const y = model.predict(x);
      const data = await y.data();
      y.dispose();
      return data;
    };
    current = { forward, inputs, release: () => (inputs.forEach((t) => t.dispose()), model.dispose()) };
  }
}

/** Milliseconds `count` forward passes of the batch of `size` take. */
async function passes(count, size) {
  const x = current.inputs.get(size);
  const t0 = performance.now();
  for (let i = 0; i < count; i++) await current.forward(x);
  return performance.now() - t0;
}

/** The logits of the batch-1 input, for checking against the Node engines. */
async function logits() {
  return Array.from(await current.forward(current.inputs.get(1)));
}

async function unload() {
  if (current) await current.release();
  current = null;
}

globalThis.prunespaceBench = {
  start,
  load: (engine, spec) => {
    const dims = spec.layout === 'nchw' ? (n) => [n, spec.shape[2], spec.shape[0], spec.shape[1]] : (n) => [n, ...spec.shape];
    return load(engine, { ...spec, dims });
  },
  passes,
  logits,
  unload,
};
document.body.dataset.ready = '1';
