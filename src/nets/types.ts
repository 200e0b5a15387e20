/** The width-parametrized network description: one graph of nodes over channel groups drives complexity and models. */

/** Spatial height, width and channels of an activation (NHWC without the batch). */
export type Shape = [h: number, w: number, c: number];

/** What a channel group is in its network; refinement rules and reports use it. */
export type GroupKind =
  | 'stage' // outputs joined by residual adds, or a plain conv's output in a stage (VGG)
  | 'inner' // the inside of a residual block (bottleneck or basic block's first convs)
  | 'expand' // MobileNetV2's expansion 1x1 conv (its depthwise conv shares it)
  | 'pointwise' // MobileNetV1's pointwise conv (the next depthwise conv shares it)
  | 'stem' // the first conv, where it is not joined to a residual add
  | 'head'; // the last 1x1 conv before pooling (MobileNetV2's 1280)

/** Channels that must be pruned together; a width configuration keeps one count per group. */
export interface ChannelGroup {
  /** Index into a width configuration. */
  id: number;
  /** Readable name, stable across runs: 'stage1', 'stage2.block3.conv1', 'features.4.expand'. */
  name: string;
  kind: GroupKind;
  /** 0 for the stem, 1..S for stages, S+1 for the head: per-stage analysis and monotone constraints. */
  stage: number;
  /** Width of the original network. */
  base: number;
}

export type Padding = 'same' | 'valid';

/** Graph nodes in topological order. `out` names the ChannelGroup that holds a conv's output channels. */
export type NetNode =
  | { op: 'input'; id: string }
  | { op: 'conv'; id: string; input: string; out: number; kernel: number; stride: number; pad: Padding; bias: boolean }
  | { op: 'depthwise'; id: string; input: string; kernel: number; stride: number; pad: Padding; bias: boolean }
  | { op: 'bn'; id: string; input: string }
  | { op: 'relu'; id: string; input: string; max?: number }
  | { op: 'add'; id: string; inputs: [string, string] }
  /** Parameter-free shortcut: subsample by stride, zero-pad (or drop) channels to the width of group `out`. */
  | { op: 'shortcut'; id: string; input: string; out: number; stride: number }
  | { op: 'maxpool'; id: string; input: string; size: number; stride: number; pad: Padding }
  | { op: 'gap'; id: string; input: string }
  | { op: 'flatten'; id: string; input: string }
  | { op: 'dropout'; id: string; input: string; rate: number }
  /** The classifier: its output is not prunable. */
  | { op: 'linear'; id: string; input: string; units: number; bias: boolean };

export type NetOp = NetNode['op'];

/** Hyperparameters that pick one original network. */
export interface NetRef {
  family: string;
  input: Shape;
  classes: number;
  /** ResNet shortcut where widths change: 'zeropad' (parameter-free, default) or 'projection'. */
  shortcut?: 'zeropad' | 'projection';
}

/** One original network: its groups, its nodes, and where it came from. */
export interface NetSpec {
  ref: Required<NetRef>;
  groups: ChannelGroup[];
  nodes: NetNode[];
  /** Id of the node whose output is the logits. */
  output: string;
}

/** One kept-channel count per group, in group id order. */
export type WidthConfig = number[];
