/**
 * A minimal WebAssembly binary writer: enough to emit small SIMD loops that share the tfjs wasm backend's
 * memory (no toolchain needed at build or run time). Only the opcodes our channel kernels use.
 */

export const i32 = 0x7f;
export const v128 = 0x7b;
export const f32 = 0x7d;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

function name(s: string): number[] {
  const bytes = [...Buffer.from(s, 'utf8')];
  return [...uleb(bytes.length), ...bytes];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

/** Instruction encoders (operands inline). */
export const op = {
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  tee: (i: number) => [0x22, ...uleb(i)],
  i32: (v: number) => [0x41, ...sleb(v)],
  add: [0x6a],
  sub: [0x6b],
  eqz: [0x45],
  geU: [0x4f],
  ltU: [0x49],
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  br: (depth: number) => [0x0c, ...uleb(depth)],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  end: [0x0b],
  load: [0xfd, ...uleb(0), 2, 0],
  store: [0xfd, ...uleb(11), 2, 0],
  fadd: [0xfd, ...uleb(228)],
  fsub: [0xfd, ...uleb(229)],
  fmul: [0xfd, ...uleb(230)],
  splat: [0xfd, ...uleb(0x13)],
  fgt: [0xfd, ...uleb(0x44)],
  fle: [0xfd, ...uleb(0x45)],
  fge: [0xfd, ...uleb(0x46)],
  and: [0xfd, ...uleb(0x4e)],
};

export interface FunctionDef {
  name: string;
  params: number[];
  /** Extra locals, by type, after the params. */
  locals: number[];
  body: number[][];
}

/** A module importing env.memory and exporting the given void functions. */
export function assembleModule(functions: FunctionDef[]): Uint8Array<ArrayBuffer> {
  const types = functions.map((f) => [0x60, ...vec(f.params.map((p) => [p])), ...uleb(0)]);
  const imports = [[...name('env'), ...name('memory'), 0x02, 0x00, ...uleb(0)]];
  const funcs = functions.map((_, i) => uleb(i));
  const exports = functions.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]);
  const bodies = functions.map((f) => {
    const locals = vec(f.locals.map((t) => [...uleb(1), t]));
    const code = [...locals, ...f.body.flat(), ...op.end];
    return [...uleb(code.length), ...code];
  });
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(2, vec(imports)),
    ...section(3, vec(funcs)),
    ...section(7, vec(exports)),
    ...section(10, vec(bodies)),
  ]);
}
