"""PyTorch gradients of the torch engine's plan (same nodes, weights in tfjs layout) in float32 and float64.

Reads a JSON dump from bench/isa-gradients.ts on stdin and writes {"float32": {...}, "float64": {...}} (gradients in
tfjs layout by weight name, plus the loss) to stdout. The ops follow native/torch_engine.cc: TensorFlow 'same' padding
(the extra pixel bottom/right), a strided 1x1 conv as subsample then 1x1, BN on batch statistics, zero-pad shortcuts.
"""
import json
import sys

import torch
import torch.nn.functional as F

LAYOUT = 'nchw'


def same_pad(n, k, s):
    out = (n + s - 1) // s
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def to_torch(name, t):
    if t.dim() == 4 and name.endswith('/depthwise_kernel'):
        return t.permute(2, 3, 0, 1)
    if t.dim() == 4:
        return t.permute(3, 2, 0, 1)
    if t.dim() == 2:
        return t.t()
    return t


def to_tfjs(name, t):
    if t.dim() == 4 and name.endswith('/depthwise_kernel'):
        return t.permute(2, 3, 0, 1)
    if t.dim() == 4:
        return t.permute(2, 3, 1, 0)
    if t.dim() == 2:
        return t.t()
    return t


def run(dump, dtype):
    w = {}
    for name, v in dump['weights'].items():
        t = torch.tensor(v['data'], dtype=torch.float32).reshape(v['shape']).to(dtype)
        w[name] = to_torch(name, t).contiguous().requires_grad_(True)
    h, wd, c = dump['input']
    x = torch.tensor(dump['x'], dtype=torch.float32).reshape(-1, h, wd, c).to(dtype).permute(0, 3, 1, 2)
    # A fresh tensor with standard NCHW strides: with one channel, .contiguous() of the permuted view keeps
    # channels-last strides (it already counts as contiguous), which would run PyTorch's channels-last kernels.
    x = x.clone(memory_format=torch.contiguous_format) if LAYOUT == 'nchw' else x.contiguous()
    labels = torch.tensor(dump['labels'], dtype=torch.long)
    outs = []
    for n in dump['plan']:
        op = n['op']
        a = x if not n['in'] else outs[n['in'][0]]
        nid = n['id']
        if op == 'input':
            y = x
        elif op in ('conv', 'depthwise'):
            k, s = n['kernel'], n['stride']
            weight = w[nid + ('/depthwise_kernel' if op == 'depthwise' else '/kernel')]
            bias = w.get(nid + '/bias')
            groups = n['inC'] if op == 'depthwise' else 1
            if k == 1 and s > 1:
                y = F.conv2d(a[:, :, ::s, ::s], weight, bias)
            else:
                if n.get('same'):
                    t, b = same_pad(n['inH'], k, s)
                    l, r = same_pad(n['inW'], k, s)
                    a = F.pad(a, (l, r, t, b))
                y = F.conv2d(a, weight, bias, stride=s, groups=groups)
        elif op == 'bn':
            y = F.batch_norm(a, None, None, w[nid + '/gamma'], w[nid + '/beta'], training=True, eps=1e-5)
        elif op == 'relu':
            y = F.hardtanh(a, 0, n['max']) if 'max' in n else F.relu(a)
        elif op == 'add':
            y = a + outs[n['in'][1]]
        elif op == 'shortcut':
            s = n.get('stride', 1)
            y = a[:, :, ::s, ::s] if s > 1 else a
            if n['outC'] > n['inC']:
                y = F.pad(y, (0, 0, 0, 0, 0, n['outC'] - n['inC']))
            elif n['outC'] < n['inC']:
                y = y[:, :n['outC']]
        elif op == 'gap':
            y = a.mean((2, 3))
        elif op == 'flatten':
            y = a.permute(0, 2, 3, 1).reshape(a.shape[0], -1) if a.dim() == 4 else a
        elif op == 'linear':
            i = a.permute(0, 2, 3, 1).reshape(a.shape[0], -1) if a.dim() == 4 else a
            y = F.linear(i, w[nid + '/kernel'], w.get(nid + '/bias'))
        else:
            raise SystemExit(f'plan_gradients.py: op {op} not supported')
        outs.append(y)
    logp = F.log_softmax(outs[-1], 1)
    nll = -logp.gather(1, labels.unsqueeze(1)).squeeze(1)
    sm = dump['smoothing']
    loss = ((1 - sm) * nll - sm * logp.mean(1)).mean()
    loss.backward()
    grads = {name: to_tfjs(name, t.grad).contiguous().flatten().double().tolist() for name, t in w.items()}
    return {'loss': loss.item(), 'grads': grads}


def main():
    dump = json.load(sys.stdin)
    torch.set_num_threads(1)
    print(json.dumps({'float32': run(dump, torch.float32), 'float64': run(dump, torch.float64), 'torch': torch.__version__}))


main()
