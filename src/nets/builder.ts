/** A small helper that families use to append nodes and groups without repeating ids and wiring. */
import type { ChannelGroup, GroupKind, NetNode, NetRef, NetSpec } from './types.js';

type Distribute<T> = T extends unknown ? Omit<T, 'id'> : never;
export type NodeInit = Distribute<NetNode>;

export class NetBuilder {
  readonly groups: ChannelGroup[] = [];
  readonly nodes: NetNode[] = [];
  private readonly ids = new Set<string>();

  constructor(private readonly ref: Required<NetRef>) {
    this.nodes.push({ op: 'input', id: 'input' });
    this.ids.add('input');
  }

  group(name: string, kind: GroupKind, stage: number, base: number): number {
    const id = this.groups.length;
    this.groups.push({ id, name, kind, stage, base });
    return id;
  }

  /** Appends a node under a unique id and returns the id. */
  add(id: string, node: NodeInit): string {
    if (this.ids.has(id)) throw new Error(`duplicate node id ${id}`);
    this.ids.add(id);
    this.nodes.push({ ...node, id } as NetNode);
    return id;
  }

  /** conv -> bn (-> relu / relu6): the unit every family is made of. */
  convBn(
    name: string,
    input: string,
    out: number,
    kernel: number,
    stride: number,
    opts: { act?: 'relu' | 'relu6' | 'none'; bias?: boolean } = {},
  ): string {
    const conv = this.add(name, { op: 'conv', input, out, kernel, stride, pad: 'same', bias: opts.bias ?? false });
    return this.bnAct(name, conv, opts.act ?? 'relu');
  }

  depthwiseBn(name: string, input: string, kernel: number, stride: number, act: 'relu' | 'relu6'): string {
    const dw = this.add(name, { op: 'depthwise', input, kernel, stride, pad: 'same', bias: false });
    return this.bnAct(name, dw, act);
  }

  private bnAct(name: string, input: string, act: 'relu' | 'relu6' | 'none'): string {
    const bn = this.add(`${name}.bn`, { op: 'bn', input });
    if (act === 'none') return bn;
    return this.add(`${name}.${act}`, { op: 'relu', input: bn, ...(act === 'relu6' ? { max: 6 } : {}) });
  }

  /** Global average pooling then the classifier. */
  classifier(input: string, opts: { dropout?: number } = {}): NetSpec {
    let x = this.add('pool', { op: 'gap', input });
    if (opts.dropout) x = this.add('dropout', { op: 'dropout', input: x, rate: opts.dropout });
    const output = this.add('fc', { op: 'linear', input: x, units: this.ref.classes, bias: true });
    return this.finish(output);
  }

  finish(output: string): NetSpec {
    return { ref: this.ref, groups: this.groups, nodes: this.nodes, output };
  }
}
