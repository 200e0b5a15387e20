/**
 * ONNX export of a saved subnetwork: the graph is built from its NetSpec at its widths and its saved weights, BN
 * folded into the preceding convolution, the training normalisation folded in at the input, logits out.
 */
import protos, { type onnx as O } from 'onnx-proto';

// onnx-proto is CommonJS: its namespace comes through the default export.
const { onnx } = protos;
import { resolveNet } from '../nets/resolve.js';
import type { NetNode, NetSpec, Shape, WidthConfig } from '../nets/types.js';
import { UserError } from '../util/errors.js';
import type { WeightSet, WeightTensor } from '../training/engine.js';

/** Opsets whose operators (Slice steps, Pad and Clip with tensor inputs) this export uses with unchanged meaning. */
export const OPSET_MIN = 13;
export const OPSET_MAX = 21;
export const OPSET_DEFAULT = 17;
/** BatchNorm epsilon every engine trains with (PyTorch's default). */
const BN_EPSILON = 1e-5;

export interface OnnxOptions {
  opset: number;
  /** 'dynamic' names the batch dimension 'batch'; a number fixes it. */
  batch: 'dynamic' | number;
  layout: 'nhwc' | 'nchw';
  /** Per-channel mean and standard deviation in 0..255 units: the input is x * 255 normalised by them. */
  mean: ArrayLike<number>;
  std: ArrayLike<number>;
  producerVersion: string;
}

export function checkOpset(opset: number): void {
  if (!Number.isInteger(opset) || opset < OPSET_MIN || opset > OPSET_MAX) {
    throw new UserError(`--opset ${opset} is not supported (supported: ${OPSET_MIN}..${OPSET_MAX})`);
  }
}

/** Accumulates nodes and initialisers under unique names. */
class GraphWriter {
  readonly nodes: O.INodeProto[] = [];
  readonly inits: O.ITensorProto[] = [];
  private n = 0;

  float(name: string, dims: number[], data: ArrayLike<number>): string {
    this.inits.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: bytes(Float32Array.from(data)) });
    return name;
  }

  int64(name: string, values: number[]): string {
    this.inits.push({ name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: bytes(BigInt64Array.from(values.map(BigInt))) });
    return name;
  }

  op(opType: string, inputs: string[], name: string, attrs: O.IAttributeProto[] = []): string {
    const output = `${name}:${this.n++}`;
    this.nodes.push({ opType, input: inputs, output: [output], name, attribute: attrs });
    return output;
  }
}

function bytes(a: Float32Array | BigInt64Array): Uint8Array {
  // ONNX raw data is little-endian, as typed arrays are on every platform Node runs on.
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

const ints = (name: string, v: number[]): O.IAttributeProto => ({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: v });
const int = (name: string, v: number): O.IAttributeProto => ({ name, type: onnx.AttributeProto.AttributeType.INT, i: v });

/** tfjs 'same' padding: the total along an axis, the smaller half before. */
function samePads(size: number, kernel: number, stride: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

function padsFor(input: Shape, kernel: number, stride: number, pad: 'same' | 'valid'): number[] {
  if (pad === 'valid') return [0, 0, 0, 0];
  const [t, b] = samePads(input[0], kernel, stride);
  const [l, r] = samePads(input[1], kernel, stride);
  return [t, l, b, r];
}

function weight(weights: WeightSet, name: string): WeightTensor {
  const w = weights.get(name);
  if (!w) throw new UserError(`saved weights lack ${name}`);
  return w;
}

/** tfjs [kh, kw, cin, cout] to ONNX [cout, cin, kh, kw]. */
function convKernel(w: WeightTensor): { dims: number[]; data: Float32Array } {
  const [kh, kw, cin, cout] = w.shape;
  const data = new Float32Array(w.data.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++) data[((o * cin + i) * kh + y) * kw + x] = w.data[((y * kw + x) * cin + i) * cout + o];
  return { dims: [cout, cin, kh, kw], data };
}

/** A conv (or depthwise) node with the BN that follows it, when the BN reads only it. */
function bnAfter(spec: NetSpec, id: string): NetNode | undefined {
  const readers = spec.nodes.filter((n) => (n.op === 'add' ? n.inputs.includes(id) : 'input' in n && n.input === id));
  return readers.length === 1 && readers[0].op === 'bn' ? readers[0] : undefined;
}

/** BN's inference transform as a per-channel scale and shift. */
function bnAffine(weights: WeightSet, id: string, c: number): { scale: Float32Array; shift: Float32Array } {
  const gamma = weights.get(`${id}/gamma`)?.data;
  const beta = weights.get(`${id}/beta`)?.data;
  const mean = weight(weights, `${id}/moving_mean`).data;
  const variance = weight(weights, `${id}/moving_variance`).data;
  const scale = new Float32Array(c);
  const shift = new Float32Array(c);
  for (let i = 0; i < c; i++) {
    scale[i] = (gamma ? gamma[i] : 1) / Math.sqrt(variance[i] + BN_EPSILON);
    shift[i] = (beta ? beta[i] : 0) - mean[i] * scale[i];
  }
  return { scale, shift };
}

/** The ModelProto of the subnetwork at `widths` with `weights` (tfjs names and layout, as engines exchange them). */
export function buildOnnx(spec: NetSpec, widths: WidthConfig, weights: WeightSet, o: OnnxOptions): O.ModelProto {
  checkOpset(o.opset);
  const g = new GraphWriter();
  const resolved = resolveNet(spec, widths);
  const [h, w, c] = spec.ref.input;
  if (o.mean.length !== c || o.std.length !== c) throw new UserError(`normalisation has ${o.mean.length} channels, the net's input has ${c}`);
  const batchDim: O.TensorShapeProto.IDimension = o.batch === 'dynamic' ? { dimParam: 'batch' } : { dimValue: o.batch };
  const dims = (shape: number[]): O.TensorShapeProto.IDimension[] => [batchDim, ...shape.map((d) => ({ dimValue: d }))];

  // Inside, activations are NCHW (ONNX's convolution layout).
  let x = 'pixels';
  if (o.layout === 'nhwc') x = g.op('Transpose', [x], 'input.to_nchw', [ints('perm', [0, 3, 1, 2])]);
  // (255 x - mean) / std as one multiply-add per channel; not folded into the stem, whose zero padding it would change.
  const scale = Array.from({ length: c }, (_, i) => 255 / o.std[i]);
  const shift = Array.from({ length: c }, (_, i) => -o.mean[i] / o.std[i]);
  x = g.op('Mul', [x, g.float('input.scale', [c, 1, 1], scale)], 'input.scale');
  x = g.op('Add', [x, g.float('input.shift', [c, 1, 1], shift)], 'input.shift');

  const out = new Map<string, string>([['input', x]]);
  const folded = new Set<string>();
  /** A flatten node's input shape, by the flatten's id: the linear layer after it reorders rows by it. */
  const shapes = new Map<string, Shape>();
  for (const { node, inputs, output } of resolved) {
    if (node.op === 'input') continue;
    if (folded.has(node.id)) continue;
    const src = node.op === 'add' ? '' : out.get(node.input)!;
    let y: string;
    switch (node.op) {
      case 'conv':
      case 'depthwise': {
        const depthwise = node.op === 'depthwise';
        const k = weight(weights, `${node.id}/${depthwise ? 'depthwise_kernel' : 'kernel'}`);
        const { dims: kd, data } = depthwise
          ? { dims: [k.shape[2], 1, k.shape[0], k.shape[1]], data: convKernel({ shape: [k.shape[0], k.shape[1], 1, k.shape[2]], data: k.data }).data }
          : convKernel(k);
        const cout = kd[0];
        const bias = node.bias ? Float32Array.from(weight(weights, `${node.id}/bias`).data) : new Float32Array(cout);
        const bn = bnAfter(spec, node.id);
        if (bn) {
          const { scale: s, shift: t } = bnAffine(weights, bn.id, cout);
          const per = data.length / cout;
          for (let oc = 0; oc < cout; oc++) {
            for (let j = 0; j < per; j++) data[oc * per + j] *= s[oc];
            bias[oc] = bias[oc] * s[oc] + t[oc];
          }
          folded.add(bn.id);
        }
        const attrs = [ints('kernel_shape', [node.kernel, node.kernel]), ints('strides', [node.stride, node.stride]), ints('pads', padsFor(inputs[0], node.kernel, node.stride, node.pad))];
        if (depthwise) attrs.push(int('group', cout));
        const inputsOf = [src, g.float(`${node.id}.weight`, kd, data)];
        if (bn || node.bias) inputsOf.push(g.float(`${node.id}.bias`, [cout], bias));
        y = g.op('Conv', inputsOf, node.id, attrs);
        if (bn) out.set(bn.id, y);
        break;
      }
      case 'bn': {
        // A BN not after a conv (no family has one): its affine transform as Mul and Add.
        const { scale: s, shift: t } = bnAffine(weights, node.id, output[2]);
        y = g.op('Mul', [src, g.float(`${node.id}.scale`, [output[2], 1, 1], s)], `${node.id}.scale`);
        y = g.op('Add', [y, g.float(`${node.id}.shift`, [output[2], 1, 1], t)], node.id);
        break;
      }
      case 'relu':
        y =
          node.max === undefined
            ? g.op('Relu', [src], node.id)
            : g.op('Clip', [src, g.float(`${node.id}.min`, [], [0]), g.float(`${node.id}.max`, [], [node.max])], node.id);
        break;
      case 'add':
        y = g.op('Add', node.inputs.map((i) => out.get(i)!), node.id);
        break;
      case 'shortcut': {
        // Subsample by the stride (tfjs's 1x1 'same' conv reads rows 0, s, 2s, ...), then zero-pad or drop channels.
        const cin = inputs[0][2];
        const cout = output[2];
        y = node.stride > 1
          ? g.op('Slice', [src, g.int64(`${node.id}.starts`, [0, 0]), g.int64(`${node.id}.ends`, [inputs[0][0], inputs[0][1]]), g.int64(`${node.id}.axes`, [2, 3]), g.int64(`${node.id}.steps`, [node.stride, node.stride])], `${node.id}.subsample`)
          : src;
        if (cout > cin) y = g.op('Pad', [y, g.int64(`${node.id}.pads`, [0, 0, 0, 0, 0, cout - cin, 0, 0])], node.id);
        else if (cout < cin) y = g.op('Slice', [y, g.int64(`${node.id}.channels.starts`, [0]), g.int64(`${node.id}.channels.ends`, [cout]), g.int64(`${node.id}.channels.axes`, [1])], node.id);
        break;
      }
      case 'maxpool':
        y = g.op('MaxPool', [src], node.id, [ints('kernel_shape', [node.size, node.size]), ints('strides', [node.stride, node.stride]), ints('pads', padsFor(inputs[0], node.size, node.stride, node.pad))]);
        break;
      case 'gap':
        y = g.op('GlobalAveragePool', [src], node.id);
        break;
      case 'flatten':
        shapes.set(node.id, inputs[0]);
        // Values stay NCHW here; the linear layer that reads them has its rows reordered to match.
        y = g.op('Flatten', [src], node.id, [int('axis', 1)]);
        break;
      case 'dropout':
        y = src;
        break;
      case 'linear': {
        const k = weight(weights, `${node.id}/kernel`);
        const [fin, units] = k.shape;
        // tfjs flattens NHWC (h, w, c); here the flattened order is (c, h, w).
        const fromFlatten = spec.nodes.find((n) => n.id === node.input)?.op === 'flatten';
        const [ih, iw, ic] = fromFlatten ? shapes.get(node.input)! : inputs[0];
        const data = new Float32Array(k.data.length);
        for (let yy = 0; yy < ih; yy++)
          for (let xx = 0; xx < iw; xx++)
            for (let cc = 0; cc < ic; cc++) {
              const from = (yy * iw + xx) * ic + cc;
              const to = (cc * ih + yy) * iw + xx;
              data.set(k.data.subarray(from * units, (from + 1) * units), to * units);
            }
        const flat = fromFlatten ? src : g.op('Flatten', [src], `${node.id}.flatten`, [int('axis', 1)]);
        const gemmIn = [flat, g.float(`${node.id}.weight`, [fin, units], data)];
        if (node.bias) gemmIn.push(g.float(`${node.id}.bias`, [units], weight(weights, `${node.id}/bias`).data));
        y = g.op('Gemm', gemmIn, node.id);
        break;
      }
    }
    out.set(node.id, y);
  }
  const logits = out.get(spec.output)!;
  g.nodes.push({ opType: 'Identity', input: [logits], output: ['logits'], name: 'logits' });
  const tensorType = (shape: number[]): O.ITypeProto => ({ tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims(shape) } } });
  return onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'prunespace',
    producerVersion: o.producerVersion,
    opsetImport: [{ domain: '', version: o.opset }],
    graph: {
      name: spec.ref.family,
      node: g.nodes,
      initializer: g.inits,
      input: [{ name: 'pixels', type: tensorType(o.layout === 'nhwc' ? [h, w, c] : [c, h, w]), docString: `raw pixels in [0, 1], ${o.layout.toUpperCase()}` }],
      output: [{ name: 'logits', type: tensorType([spec.ref.classes]), docString: 'class logits' }],
    },
  });
}

/** One layer of a network at one shape, as the latency table times it (NCHW, batch 1, weights whose values do not matter). */
export type LayerShape =
  | { op: 'conv'; cin: number; cout: number; h: number; w: number; kernel: number; stride: number; pad: 'same' | 'valid'; depthwise: boolean }
  | { op: 'maxpool'; c: number; h: number; w: number; size: number; stride: number; pad: 'same' | 'valid' }
  | { op: 'gap'; c: number; h: number; w: number }
  | { op: 'add'; c: number; h: number; w: number }
  | { op: 'linear'; fin: number; units: number };

/** The input dims a single-layer model takes (batch first). */
export function layerInputDims(layer: LayerShape): number[] {
  if (layer.op === 'linear') return [1, layer.fin];
  return [1, layer.op === 'conv' ? layer.cin : layer.c, layer.h, layer.w];
}

/**
 * A model of one layer as buildOnnx writes it inside a network (a conv with its folded bias and the ReLU ORT fuses
 * into it; a residual add with its ReLU), input 'x', for timing the layer by itself.
 */
export function buildLayerOnnx(layer: LayerShape, opset = OPSET_DEFAULT): O.ModelProto {
  const g = new GraphWriter();
  const fill = (n: number) => Float32Array.from({ length: n }, (_, i) => ((i * 7919) % 997) / 997 - 0.5);
  let y: string;
  switch (layer.op) {
    case 'conv': {
      const cinPerGroup = layer.depthwise ? 1 : layer.cin;
      const dims = [layer.cout, cinPerGroup, layer.kernel, layer.kernel];
      const attrs = [ints('kernel_shape', [layer.kernel, layer.kernel]), ints('strides', [layer.stride, layer.stride]), ints('pads', padsFor([layer.h, layer.w, layer.cin], layer.kernel, layer.stride, layer.pad))];
      if (layer.depthwise) attrs.push(int('group', layer.cout));
      y = g.op('Conv', ['x', g.float('w', dims, fill(dims.reduce((a, b) => a * b, 1))), g.float('b', [layer.cout], fill(layer.cout))], 'conv', attrs);
      y = g.op('Relu', [y], 'relu');
      break;
    }
    case 'maxpool':
      y = g.op('MaxPool', ['x'], 'pool', [ints('kernel_shape', [layer.size, layer.size]), ints('strides', [layer.stride, layer.stride]), ints('pads', padsFor([layer.h, layer.w, layer.c], layer.size, layer.stride, layer.pad))]);
      break;
    case 'gap':
      y = g.op('GlobalAveragePool', ['x'], 'gap');
      break;
    case 'add':
      // The second operand is a graph constant so the one input is all the timing feeds; the add still reads both.
      y = g.op('Relu', [g.op('Add', ['x', g.float('other', [1, layer.c, layer.h, layer.w], fill(layer.c * layer.h * layer.w))], 'add')], 'relu');
      break;
    case 'linear':
      y = g.op('Gemm', ['x', g.float('w', [layer.fin, layer.units], fill(layer.fin * layer.units)), g.float('b', [layer.units], fill(layer.units))], 'gemm');
      break;
  }
  g.nodes.push({ opType: 'Identity', input: [y], output: ['y'], name: 'y' });
  const tensor = (dims: number[]): O.ITypeProto => ({ tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } });
  return onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'prunespace',
    producerVersion: 'latency-table',
    opsetImport: [{ domain: '', version: opset }],
    graph: { name: layer.op, node: g.nodes, initializer: g.inits, input: [{ name: 'x', type: tensor(layerInputDims(layer)) }], output: [{ name: 'y', type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } } }] },
  });
}

export function encodeOnnx(model: O.ModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/**
 * What the ONNX checker asks that can be told without it: an opset declared, every node input defined before use
 * (graph input, initialiser or an earlier node's output), unique outputs, initialiser data matching its dims.
 * Returns the problems found (empty when the model is well formed).
 */
export function checkOnnx(bytesIn: Uint8Array): string[] {
  const m = onnx.ModelProto.decode(bytesIn);
  const problems: string[] = [];
  if (!m.opsetImport.some((op) => (op.domain ?? '') === '' && Number(op.version) > 0)) problems.push('no default-domain opset declared');
  // Decoded messages carry every repeated field (empty when absent); their interfaces only say "optional".
  const graph = m.graph as O.GraphProto | null;
  if (!graph) return [...problems, 'no graph'];
  const defined = new Set<string>(graph.input.map((i) => i.name ?? ''));
  for (const t of graph.initializer as O.TensorProto[]) {
    const count = t.dims.reduce((a: number, d) => a * Number(d), 1);
    const size = t.dataType === onnx.TensorProto.DataType.INT64 ? 8 : 4;
    if (t.rawData.length !== count * size) problems.push(`initialiser ${t.name}: ${t.rawData.length} bytes for dims ${t.dims.join('x')}`);
    if (defined.has(t.name)) problems.push(`name ${t.name} defined twice`);
    defined.add(t.name);
  }
  for (const n of graph.node as O.NodeProto[]) {
    for (const i of n.input) if (i !== '' && !defined.has(i)) problems.push(`node ${n.name} reads ${i}, not defined before it`);
    for (const o of n.output) {
      if (defined.has(o)) problems.push(`node ${n.name} redefines ${o}`);
      defined.add(o);
    }
  }
  for (const o of graph.output) if (!defined.has(o.name ?? '')) problems.push(`graph output ${o.name} is never produced`);
  return problems;
}
