// The libtorch executor behind executor.h. Activations run NCHW, or channels-last with channels padded to a multiple
// of 8 (ExecutorOptions::memoryFormat); batches arrive NHWC and weights cross in tfjs layout at their true widths
// (converted here). The plan is checked whole at construction (indices, arity, every shape), so running it
// only ever indexes what exists.
#include "executor.h"

#include <torch/torch.h>
#include <torch/version.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <optional>
#include <unordered_map>

namespace prunespace {
namespace {

using torch::IntArrayRef;
using torch::Tensor;
using torch::indexing::None;
using torch::indexing::Slice;

constexpr double kBnMomentum = 0.1;  // running = 0.9 running + 0.1 batch, as the tfjs loop
constexpr double kBnEps = 1e-5;
constexpr int kMaxDim = 1 << 20;     // any one size in a plan (a sanity bound, far above real nets)

enum class Op { Input, Conv, Depthwise, Bn, Relu, Add, Shortcut, MaxPool, Gap, Flatten, Dropout, Linear };
// How a weight's tfjs layout maps to torch's.
enum class Layout { Conv, Depthwise, Linear, Vector };

struct Node {
  Op op = Op::Input;
  PlanNode p;
  int w = -1, b = -1;                     // parameter indices (conv, depthwise, linear; bn: gamma, beta)
  int runningMean = -1, runningVar = -1;  // buffer indices (bn)
  int lastUse = -1;
};

// The part of a channel-padded tensor that holds the net's true widths: the leading `logical` entries of each dim.
Tensor trueView(const Tensor& t, const std::vector<int64_t>& logical) {
  Tensor v = t;
  for (size_t d = 0; d < logical.size(); d++)
    if (v.size(static_cast<int64_t>(d)) != logical[d]) v = v.narrow(static_cast<int64_t>(d), 0, logical[d]);
  return v;
}

// Feature maps whose channels were padded, back to their true channel count (the padded ones are zero).
Tensor trueChannels(const Tensor& t, int64_t c) { return t.dim() >= 2 && t.size(1) != c ? t.narrow(1, 0, c) : t; }

struct Param {
  std::string name;
  Layout layout;
  bool decay;
  Tensor value;                  // torch layout, channels padded where the net pads them (the padding stays zero)
  std::vector<int64_t> logical;  // the true sizes, torch layout
  Tensor momentum;               // undefined until the first step
  Tensor view() const { return trueView(value, logical); }
};

struct Buffer {
  std::string name;
  Tensor value;
  std::vector<int64_t> logical;
  Tensor view() const { return trueView(value, logical); }
};

// A node's output as the plan declares it: h x w x c (rank 4 in torch) or a vector of c (rank 2).
struct Shape {
  int h = 0, w = 0, c = 0;
  bool flat = false;
  bool operator==(const Shape& o) const { return h == o.h && w == o.w && c == o.c && flat == o.flat; }
  std::string str() const { return flat ? std::to_string(c) : std::to_string(h) + "x" + std::to_string(w) + "x" + std::to_string(c); }
};

Op opOf(const std::string& s) {
  static const std::unordered_map<std::string, Op> ops = {
      {"input", Op::Input}, {"conv", Op::Conv}, {"depthwise", Op::Depthwise}, {"bn", Op::Bn},
      {"relu", Op::Relu}, {"add", Op::Add}, {"shortcut", Op::Shortcut}, {"maxpool", Op::MaxPool},
      {"gap", Op::Gap}, {"flatten", Op::Flatten}, {"dropout", Op::Dropout}, {"linear", Op::Linear}};
  auto it = ops.find(s);
  if (it == ops.end()) throw EngineError("unknown node op '" + s + "'");
  return it->second;
}

// TensorFlow's 'same' padding: total = max((out - 1) * s + k - in, 0), the extra pixel at the bottom/right.
std::pair<int, int> samePad(int in, int k, int s) {
  int out = (in + s - 1) / s;
  int total = std::max((out - 1) * s + k - in, 0);
  return {total / 2, total - total / 2};
}
int outSize(int in, int k, int s, bool same) { return same ? (in + s - 1) / s : (in - k) / s + 1; }

Tensor toTorchLayout(const Tensor& t, Layout l) {
  switch (l) {
    case Layout::Conv: return t.permute({3, 2, 0, 1});       // [kh,kw,cin,cout] -> [cout,cin,kh,kw]
    case Layout::Depthwise: return t.permute({2, 3, 0, 1});  // [kh,kw,c,1] -> [c,1,kh,kw]
    case Layout::Linear: return t.t();                       // [in,out] -> [out,in]
    default: return t;
  }
}
Tensor toTfjsLayout(const Tensor& t, Layout l) {
  switch (l) {
    case Layout::Conv: return t.permute({2, 3, 1, 0});
    case Layout::Depthwise: return t.permute({2, 3, 0, 1});
    case Layout::Linear: return t.t();
    default: return t;
  }
}
std::vector<int64_t> tfjsShape(const Tensor& t, Layout l) { return toTfjsLayout(t, l).sizes().vec(); }

Floats toFloats(const Tensor& t) {
  Tensor c = t.detach().to(torch::kCPU, torch::kFloat).contiguous();
  Floats out(static_cast<size_t>(c.numel()));
  if (c.numel()) std::memcpy(out.data(), c.data_ptr<float>(), out.size() * sizeof(float));
  return out;
}

// NHWC activations for the caller (rank-2 outputs as they are).
Tensor toNhwc(const Tensor& t) { return t.dim() == 4 ? t.permute({0, 2, 3, 1}) : t; }

// A borrowed array as a CPU tensor of `shape`, without copying (the caller copies before it returns).
Tensor borrow(const FloatView& v, std::vector<int64_t> shape) {
  return torch::from_blob(const_cast<float*>(v.data), shape, torch::kFloat);
}

// Turns every failure inside the executor into an EngineError.
template <typename F>
auto guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const EngineError&) {
    throw;
  } catch (const c10::Error& e) {
    throw EngineError(std::string("torch: ") + e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    throw EngineError("out of memory");
  } catch (const std::exception& e) {
    throw EngineError(e.what());
  } catch (...) {
    throw EngineError("unknown failure inside libtorch");
  }
}

}  // namespace

struct Executor::Impl {
  std::vector<Node> nodes;
  std::vector<Param> params;
  std::vector<Buffer> buffers;
  std::unordered_map<std::string, int> nodeIndex;
  int input[3] = {0, 0, 0};
  int classes = 0;
  torch::Device device = torch::kCPU;
  double momentum = 0.9, weightDecay = 0;
  bool nesterov = false;
  std::optional<at::Generator> dropoutGen;
  bool channelsLast = false;
  // Channel counts of feature maps rounded up to a multiple of this (1: none): the extra channels are zero in every
  // kernel, BN scale and shift, so they stay exactly zero through training, and nothing outside sees them.
  int quantum = 1;
  std::vector<int> physC;  // channels each node's output tensor really has
  // Outputs of the last forward(..., keepGraph) (logits first, then taps), awaiting their seeds.
  std::vector<Tensor> pending;

  torch::TensorOptions fopts() const { return torch::TensorOptions().dtype(torch::kFloat).device(device); }

  int addParam(const std::string& name, Layout l, bool decay, std::vector<int64_t> shape, std::vector<int64_t> logical) {
    params.push_back({name, l, decay, torch::zeros(shape, fopts()), logical, Tensor()});
    return static_cast<int>(params.size()) - 1;
  }

  // Checks one node against the shapes of the nodes before it and returns its output shape.
  Shape check(size_t i, const PlanNode& p, Op op, const std::vector<Shape>& shapes) const {
    std::string where = "plan node " + std::to_string(i) + " (" + p.id + ", " + p.op + ")";
    size_t arity = op == Op::Input ? 0 : op == Op::Add ? 2 : 1;
    if (p.in.size() != arity)
      throw EngineError(where + ": " + std::to_string(p.in.size()) + " inputs, expected " + std::to_string(arity));
    for (int j : p.in)
      if (j < 0 || static_cast<size_t>(j) >= i) throw EngineError(where + ": input " + std::to_string(j) + " is not an earlier node");
    for (int v : {p.inH, p.inW, p.inC, p.outC, p.kernel, p.stride})
      if (v < 1 || v > kMaxDim) throw EngineError(where + ": sizes must be in 1.." + std::to_string(kMaxDim));
    if (op == Op::Dropout && !(p.rate >= 0 && p.rate < 1)) throw EngineError(where + ": dropout rate must be in [0, 1)");
    Shape in{p.inH, p.inW, p.inC, false};
    auto expect = [&](const Shape& s, const Shape& want) {
      if (!(s == want)) throw EngineError(where + ": input is " + want.str() + ", the plan says " + s.str());
    };
    if (op == Op::Input) {
      Shape s{input[0], input[1], input[2], false};
      expect(in, s);
      if (p.outC != input[2]) throw EngineError(where + ": outC differs from the input's channels");
      return s;
    }
    const Shape& a = shapes[p.in[0]];
    auto spatial = [&]() {
      if (a.flat) throw EngineError(where + ": needs a feature map, its input is a vector");
      expect(in, a);
    };
    switch (op) {
      case Op::Conv:
      case Op::Depthwise:
      case Op::MaxPool: {
        spatial();
        if (!p.same && (p.kernel > p.inH || p.kernel > p.inW)) throw EngineError(where + ": kernel larger than its input");
        if (op != Op::Conv && p.outC != p.inC) throw EngineError(where + ": outC must equal inC");
        return {outSize(p.inH, p.kernel, p.stride, p.same), outSize(p.inW, p.kernel, p.stride, p.same), p.outC, false};
      }
      case Op::Shortcut:
        spatial();
        return {(p.inH + p.stride - 1) / p.stride, (p.inW + p.stride - 1) / p.stride, p.outC, false};
      case Op::Add:
        if (!(shapes[p.in[1]] == a)) throw EngineError(where + ": adds " + a.str() + " to " + shapes[p.in[1]].str());
        [[fallthrough]];
      case Op::Bn:
      case Op::Relu:
      case Op::Dropout: {
        if (a.flat) {
          if (op == Op::Bn) throw EngineError(where + ": batch norm needs a feature map");
          if (p.inC != a.c) throw EngineError(where + ": inC is " + std::to_string(p.inC) + ", its input has " + std::to_string(a.c));
        } else {
          expect(in, a);
        }
        if (p.outC != p.inC) throw EngineError(where + ": outC must equal inC");
        return a;
      }
      case Op::Gap:
        spatial();
        if (p.outC != p.inC) throw EngineError(where + ": outC must equal inC");
        return {1, 1, p.inC, true};
      case Op::Flatten:
      case Op::Linear: {
        int64_t flat = a.flat ? a.c : static_cast<int64_t>(a.h) * a.w * a.c;
        int64_t want = op == Op::Flatten ? static_cast<int64_t>(p.inH) * p.inW * p.inC : p.inC;
        if (flat != want || flat > kMaxDim)
          throw EngineError(where + ": its input has " + std::to_string(flat) + " values a sample, the plan says " + std::to_string(want));
        return {1, 1, op == Op::Flatten ? static_cast<int>(flat) : p.outC, true};
      }
      default:
        throw EngineError(where + ": unhandled op");
    }
  }

  void build(const std::vector<PlanNode>& plan) {
    if (plan.empty()) throw EngineError("the plan has no nodes");
    for (int v : input)
      if (v < 1 || v > kMaxDim) throw EngineError("the input shape must be three sizes in 1.." + std::to_string(kMaxDim));
    std::vector<Shape> shapes;
    for (size_t i = 0; i < plan.size(); i++) {
      Node n;
      n.p = plan[i];
      n.op = opOf(n.p.op);
      if (i == 0 && n.op != Op::Input) throw EngineError("plan node 0 must be the input");
      if (nodeIndex.count(n.p.id)) throw EngineError("plan node " + std::to_string(i) + ": id " + n.p.id + " repeats");
      shapes.push_back(check(i, n.p, n.op, shapes));
      const PlanNode& p = n.p;
      const std::string& id = p.id;
      int inC = n.op == Op::Input ? p.outC : physC[p.in[0]];  // the input tensor's real channels
      int outC = physicalOut(n.op, p, inC, quantum);
      if (n.op == Op::Add && physC[p.in[1]] != inC) throw EngineError("channel padding does not fit this plan (" + id + " adds unequally padded maps)");
      physC.push_back(outC);
      switch (n.op) {
        case Op::Conv:
          n.w = addParam(id + "/kernel", Layout::Conv, true, {outC, inC, p.kernel, p.kernel}, {p.outC, p.inC, p.kernel, p.kernel});
          if (p.bias) n.b = addParam(id + "/bias", Layout::Vector, false, {outC}, {p.outC});
          break;
        case Op::Depthwise:
          n.w = addParam(id + "/depthwise_kernel", Layout::Depthwise, true, {inC, 1, p.kernel, p.kernel}, {p.inC, 1, p.kernel, p.kernel});
          if (p.bias) n.b = addParam(id + "/bias", Layout::Vector, false, {inC}, {p.inC});
          break;
        case Op::Linear:
          n.w = addParam(id + "/kernel", Layout::Linear, true, {p.outC, p.inC}, {p.outC, p.inC});
          if (p.bias) n.b = addParam(id + "/bias", Layout::Vector, false, {p.outC}, {p.outC});
          break;
        case Op::Bn:
          n.w = addParam(id + "/gamma", Layout::Vector, false, {inC}, {p.inC});
          params[n.w].view().fill_(1);  // padded channels keep scale 0, so they stay 0
          n.b = addParam(id + "/beta", Layout::Vector, false, {inC}, {p.inC});
          n.runningMean = static_cast<int>(buffers.size());
          buffers.push_back({id + "/moving_mean", torch::zeros({inC}, fopts()), {p.inC}});
          n.runningVar = static_cast<int>(buffers.size());
          buffers.push_back({id + "/moving_variance", torch::ones({inC}, fopts()), {p.inC}});
          break;
        default:
          break;
      }
      nodeIndex[id] = static_cast<int>(nodes.size());
      for (int j : p.in) nodes[j].lastUse = static_cast<int>(nodes.size());
      nodes.push_back(std::move(n));
    }
    if (!shapes.back().flat) throw EngineError("the plan's last node must give one vector of logits a sample");
    classes = shapes.back().c;
    if (channelsLast)
      for (auto& p : params)
        if (p.layout == Layout::Conv) p.value = p.value.contiguous(at::MemoryFormat::ChannelsLast);
    for (auto& p : params) p.value.set_requires_grad(true);
  }

  // The channels a node's output tensor has, given its input's: convolutions and zero-pad shortcuts round up to the
  // quantum q; vectors keep their true size (maps are cut back to their true channels before gap, flatten and linear).
  static int physicalOut(Op op, const PlanNode& p, int inC, int q) {
    switch (op) {
      case Op::Input: return p.outC;
      case Op::Conv:
      case Op::Shortcut: return (p.outC + q - 1) / q * q;
      case Op::Gap:
      case Op::Flatten:
      case Op::Linear: return p.outC;
      default: return inC;
    }
  }

  // Measured with bench/train-speed.ts and bench/width-alignment.ts: oneDNN's channels-last convolutions beat NCHW
  // at channel counts in multiples of its block (8) and lose at other counts, and arbitrary widths padded up to
  // multiples of 8 train faster channels-last than unpadded NCHW. Depthwise nets and CUDA are unmeasured.
  // Whether padding to `q` keeps every add's two maps equal (the plan is unchecked yet: a bad index answers no).
  static bool padsEvenly(const std::vector<PlanNode>& plan, int q) {
    std::vector<int> c;
    for (size_t i = 0; i < plan.size(); i++) {
      const PlanNode& p = plan[i];
      for (int j : p.in)
        if (j < 0 || static_cast<size_t>(j) >= i) return false;
      Op op = opOf(p.op);
      if (op == Op::Depthwise) return false;
      int in = p.in.empty() ? p.outC : c[p.in[0]];
      if (op == Op::Add && (p.in.size() != 2 || c[p.in[1]] != in)) return false;
      c.push_back(physicalOut(op, p, in, q));
    }
    return true;
  }

  std::vector<Tensor> paramValues() const {
    std::vector<Tensor> v;
    for (auto& p : params) v.push_back(p.value);
    return v;
  }

  static int64_t batchSize(int64_t size) {
    if (size < 1 || size > std::numeric_limits<int32_t>::max()) throw EngineError("batch size must be a positive integer");
    return size;
  }

  // NHWC values -> NCHW tensor on the device.
  Tensor batchInput(const FloatView& v, int64_t size) const {
    batchSize(size);
    if (!v.present) throw EngineError("no batch given");
    int64_t want = size * input[0] * input[1] * input[2];
    if (static_cast<int64_t>(v.length) != want)
      throw EngineError("batch has " + std::to_string(v.length) + " values, expected " + std::to_string(size) + "x" +
                        std::to_string(input[0]) + "x" + std::to_string(input[1]) + "x" + std::to_string(input[2]));
    return deviceCopy(borrow(v, {size, input[0], input[1], input[2]}));
  }

  // NHWC values -> a fresh tensor on the device in the net's memory format.
  Tensor deviceCopy(const Tensor& nhwc) const {
    if (!channelsLast) return nchwCopy(nhwc);
    Tensor out = torch::empty({nhwc.size(0), nhwc.size(3), nhwc.size(1), nhwc.size(2)}, fopts().memory_format(at::MemoryFormat::ChannelsLast));
    out.copy_(nhwc.permute({0, 3, 1, 2}));
    return out;
  }

  // A fresh NCHW tensor on the device with standard strides. Never just `.contiguous()` of the permuted view: with
  // one channel that view already counts as contiguous and keeps channels-last strides, which send every
  // convolution after it down libtorch 1.13's channels-last path, which ran arbitrary widths at about half speed
  // (faster at multiples of 8). Its gradients are right: the 6% once blamed on it was one ReLU input within float32
  // rounding of zero (bench/isa-gradients.ts, test/engine-torch-isa.test.ts).
  Tensor nchwCopy(const Tensor& nhwc) const {
    Tensor out = torch::empty({nhwc.size(0), nhwc.size(3), nhwc.size(1), nhwc.size(2)}, fopts());
    out.copy_(nhwc.permute({0, 3, 1, 2}));
    return out;
  }

  // Labels are checked here, on the host: on CUDA an out-of-range label is a device-side assert, not an error.
  Tensor batchLabels(const LabelView& v, int64_t size) const {
    if (!v.present) throw EngineError("this loss needs labels");
    if (static_cast<int64_t>(v.length) != size)
      throw EngineError(std::to_string(v.length) + " labels for a batch of " + std::to_string(size));
    for (size_t i = 0; i < v.length; i++)
      if (v.data[i] < 0 || v.data[i] >= classes)
        throw EngineError("label " + std::to_string(v.data[i]) + " at " + std::to_string(i) + " is outside 0.." +
                          std::to_string(classes - 1));
    return torch::from_blob(const_cast<int32_t*>(v.data), {size}, torch::kInt).to(device, torch::kLong);
  }

  Tensor padSame(const Tensor& x, const PlanNode& p, int k, double value) const {
    auto [top, bottom] = samePad(p.inH, k, p.stride);
    auto [left, right] = samePad(p.inW, k, p.stride);
    if (top == 0 && bottom == 0 && left == 0 && right == 0) return x;
    return torch::constant_pad_nd(x, {left, right, top, bottom}, value);
  }

  // Batch norm on batch statistics; with updateStats the running averages move by the batch's mean and biased
  // variance (tfjs semantics). The fused kernel writes the batch's unbiased variance, computed in double, into a
  // scratch buffer (momentum 1); scaling it by (n - 1) / n keeps the variance itself, never negative, where
  // rebuilding it from the saved invstd (invstd^-2 - eps) cancels to noise for near-dead channels.
  Tensor batchNormTrain(const Tensor& a, const Node& n, bool updateStats) {
    const Tensor& g = params[n.w].value;
    const Tensor& b = params[n.b].value;
    if (!updateStats) return std::get<0>(torch::native_batch_norm(a, g, b, {}, {}, true, kBnMomentum, kBnEps));
    int64_t count = a.numel() / a.size(1);
    Tensor mean = torch::zeros({a.size(1)}, fopts());
    Tensor var = torch::zeros({a.size(1)}, fopts());
    Tensor y = std::get<0>(torch::native_batch_norm(a, g, b, mean, var, true, 1.0, kBnEps));
    // Out of place: autograd saved the scratch buffers with the op.
    torch::NoGradGuard ng;
    Tensor biased = count > 1 ? var * (static_cast<double>(count - 1) / count) : torch::zeros_like(var);
    buffers[n.runningMean].value.mul_(1 - kBnMomentum).add_(mean, kBnMomentum);
    buffers[n.runningVar].value.mul_(1 - kBnMomentum).add_(biased, kBnMomentum);
    return y;
  }

  // The generic executor. training: BN on batch statistics and dropout on; updateStats: BN running averages move.
  Tensor run(const Tensor& x, bool training, bool updateStats, const std::vector<int>& taps, std::vector<Tensor>* tapOut) {
    std::vector<Tensor> outs(nodes.size());
    std::vector<char> keep(nodes.size(), 0);
    for (int t : taps) keep.at(t) = 1;
    for (size_t i = 0; i < nodes.size(); i++) {
      const Node& n = nodes[i];
      const PlanNode& p = n.p;
      const Tensor& a = n.op == Op::Input ? x : outs[p.in[0]];
      Tensor y;
      switch (n.op) {
        case Op::Input: y = x; break;
        case Op::Conv:
        case Op::Depthwise: {
          auto [top, bottom] = samePad(p.inH, p.kernel, p.stride);
          auto [left, right] = samePad(p.inW, p.kernel, p.stride);
          Tensor bias = n.b >= 0 ? params[n.b].value : Tensor();
          int groups = n.op == Op::Depthwise ? static_cast<int>(params[n.w].value.size(0)) : 1;
          int64_t stride = p.stride;
          if (p.kernel == 1 && p.stride > 1) {
            // A strided 1x1 conv is a subsample then a 1x1 conv ('same' adds no padding at k = 1). libtorch 1.13's
            // CPU backward of the strided 1x1 conv wrote past its buffer at some shapes (valgrind: invalid write in
            // convolution_backward, a projection shortcut at 12x12, 4->8 channels); the subsampled form avoids it.
            Tensor s = a.index({Slice(), Slice(), Slice(None, None, p.stride), Slice(None, None, p.stride)});
            y = torch::conv2d(s, params[n.w].value, bias, IntArrayRef{1, 1}, IntArrayRef{0, 0}, IntArrayRef{1, 1}, groups);
          } else if (!p.same || (top == bottom && left == right)) {
            int64_t ph = p.same ? top : 0, pw = p.same ? left : 0;
            y = torch::conv2d(a, params[n.w].value, bias, IntArrayRef{stride, stride}, IntArrayRef{ph, pw}, IntArrayRef{1, 1}, groups);
          } else {
            y = torch::conv2d(padSame(a, p, p.kernel, 0.0), params[n.w].value, bias, IntArrayRef{stride, stride}, IntArrayRef{0, 0},
                              IntArrayRef{1, 1}, groups);
          }
          break;
        }
        case Op::Bn:
          if (training) y = batchNormTrain(a, n, updateStats);
          else
            y = torch::batch_norm(a, params[n.w].value, params[n.b].value, buffers[n.runningMean].value,
                                  buffers[n.runningVar].value, false, kBnMomentum, kBnEps, true);
          break;
        case Op::Relu: y = p.max >= 0 ? torch::hardtanh(a, 0, p.max) : torch::relu(a); break;
        case Op::Add: y = a + outs[p.in[1]]; break;
        case Op::Shortcut: {
          Tensor s = p.stride > 1 ? a.index({Slice(), Slice(), Slice(None, None, p.stride), Slice(None, None, p.stride)}) : a;
          // The first min(inC, outC) channels through, zeros after, up to this node's real channel count.
          if (p.outC < p.inC) s = s.narrow(1, 0, p.outC);
          int64_t want = physC[i];
          if (s.size(1) < want) s = torch::constant_pad_nd(s, {0, 0, 0, 0, 0, want - s.size(1)}, 0);
          else if (s.size(1) > want) s = s.narrow(1, 0, want);  // only zero padding lies beyond
          y = s;
          break;
        }
        case Op::MaxPool:
          y = torch::max_pool2d(p.same ? padSame(a, p, p.kernel, -std::numeric_limits<double>::infinity()) : a, p.kernel, p.stride);
          break;
        case Op::Gap: y = trueChannels(a, p.inC).mean({2, 3}); break;
        case Op::Flatten: y = a.dim() == 4 ? trueChannels(a, p.inC).permute({0, 2, 3, 1}).reshape({a.size(0), -1}) : a; break;
        case Op::Dropout:
          if (training && dropoutGen && p.rate > 0) {
            // Inverted dropout as torch::dropout, with the mask drawn on the CPU from the net's generator.
            Tensor keepMask = torch::empty(a.sizes(), torch::kFloat).bernoulli_(1 - p.rate, *dropoutGen).to(a.device());
            y = a * keepMask / (1 - p.rate);
          } else {
            y = torch::dropout(a, p.rate, training);
          }
          break;
        case Op::Linear: {
          Tensor in = a.dim() == 4 ? trueChannels(a, nodes[p.in[0]].p.outC).permute({0, 2, 3, 1}).reshape({a.size(0), -1}) : a;
          y = torch::linear(in, params[n.w].value, n.b >= 0 ? params[n.b].value : Tensor());
          break;
        }
      }
      outs[i] = y;
      for (int j : p.in)
        if (nodes[j].lastUse == static_cast<int>(i) && !keep[j]) outs[j] = Tensor();
    }
    if (tapOut)
      for (int t : taps) tapOut->push_back(outs[t]);
    return outs.back();
  }

  static Tensor crossEntropy(const Tensor& logits, const Tensor& labels, double smoothing, double temperature) {
    if (!(smoothing >= 0 && smoothing < 1)) throw EngineError("label smoothing must be in [0, 1)");
    if (!(temperature > 0)) throw EngineError("temperature must be positive");
    Tensor z = temperature == 1 ? logits : logits / temperature;
    Tensor logp = torch::log_softmax(z, 1);
    Tensor nll = -logp.gather(1, labels.unsqueeze(1)).squeeze(1);
    if (smoothing > 0) nll = (1 - smoothing) * nll - smoothing * logp.mean(1);
    return nll.mean();
  }

  std::vector<int> tapIndices(const std::vector<std::string>& ids) const {
    std::vector<int> out;
    for (auto& id : ids) {
      auto it = nodeIndex.find(id);
      if (it == nodeIndex.end()) throw EngineError("tap " + id + ": no such node");
      out.push_back(it->second);
    }
    return out;
  }

  // p -= lr * (momentum buffer), with coupled L2 on kernels: PyTorch SGD (dampening 0), as the tfjs optimizer.
  void sgd(const std::vector<Tensor>& grads, double lr) {
    torch::NoGradGuard ng;
    for (size_t i = 0; i < params.size(); i++) {
      Param& p = params[i];
      if (!grads[i].defined()) continue;
      Tensor g = grads[i];
      if (p.decay && weightDecay > 0) g = g.add(p.value, weightDecay);
      if (momentum > 0) {
        if (!p.momentum.defined()) p.momentum = g.clone();
        else p.momentum.mul_(momentum).add_(g);
        if (nesterov) p.value.add_(g.add(p.momentum, momentum), -lr);
        else p.value.add_(p.momentum, -lr);
      } else {
        p.value.add_(g, -lr);
      }
    }
  }

  std::vector<Floats> gradsOut(const std::vector<Tensor>& grads) const {
    std::vector<Floats> out;
    for (size_t i = 0; i < params.size(); i++) {
      Tensor g = grads[i].defined() ? trueView(grads[i], params[i].logical) : torch::zeros_like(params[i].view());
      out.push_back(toFloats(toTfjsLayout(g, params[i].layout)));
    }
    return out;
  }

  // One parameter's values in tfjs layout -> a tensor shaped and laid out as the parameter, zero in its padding.
  static Tensor paramFromTfjs(const Param& p, const FloatView& v, const char* what) {
    Tensor view = p.view();
    if (static_cast<int64_t>(v.length) != view.numel())
      throw EngineError(p.name + ": " + std::to_string(v.length) + " " + what + ", expected " + std::to_string(view.numel()));
    torch::NoGradGuard ng;
    Tensor out = torch::zeros_like(p.value);
    trueView(out, p.logical).copy_(toTorchLayout(borrow(v, tfjsShape(view, p.layout)), p.layout));
    return out;
  }

  // Per-parameter values in tfjs layout -> tensors on the device; missing ones stay undefined.
  std::vector<Tensor> gradsIn(const std::vector<FloatView>& a) const {
    if (a.size() > params.size())
      throw EngineError(std::to_string(a.size()) + " arrays for " + std::to_string(params.size()) + " parameters");
    std::vector<Tensor> out(params.size());
    for (size_t i = 0; i < a.size(); i++) {
      if (!a[i].present) continue;
      const Param& p = params[i];
      out[i] = paramFromTfjs(p, a[i], "values");
    }
    return out;
  }
};

Executor::Executor(const std::vector<PlanNode>& plan, const ExecutorOptions& opts) : impl_(new Impl) {
  guarded([&] {
    Impl& m = *impl_;
    for (int i = 0; i < 3; i++) m.input[i] = opts.input[i];
    m.device = torch::Device(opts.device);
    if (!(opts.momentum >= 0 && opts.momentum < 1)) throw EngineError("momentum must be in [0, 1)");
    if (!(opts.weightDecay >= 0)) throw EngineError("weight decay must be non-negative");
    m.momentum = opts.momentum;
    m.nesterov = opts.nesterov;
    m.weightDecay = opts.weightDecay;
    if (opts.seededDropout) m.dropoutGen = at::make_generator<at::CPUGeneratorImpl>(opts.dropoutSeed);
    const std::string& f = opts.memoryFormat;
    bool cpu = opts.device.rfind("cpu", 0) == 0;
    if (f == "auto") {
      m.channelsLast = cpu && Impl::padsEvenly(plan, 8);
      m.quantum = m.channelsLast ? 8 : 1;
    } else if (f == "nchw" || f == "channels-last" || f == "channels-last-padded") {
      m.channelsLast = f != "nchw";
      m.quantum = f == "channels-last-padded" ? 8 : 1;
    } else {
      throw EngineError("memory format must be auto, nchw, channels-last or channels-last-padded, got '" + f + "'");
    }
    m.build(plan);
  });
}

Executor::~Executor() = default;

Executor::Impl& Executor::live() const {
  if (!impl_) throw EngineError("this net was disposed");
  return *impl_;
}

std::vector<WeightSpec> Executor::weightInfo() const {
  return guarded([&] {
    Impl& m = live();
    std::vector<WeightSpec> out;
    for (auto& p : m.params) out.push_back({p.name, tfjsShape(p.view(), p.layout), true});
    for (auto& b : m.buffers) out.push_back({b.name, b.view().sizes().vec(), false});
    return out;
  });
}

StepResult Executor::trainStep(FloatView x, LabelView labels, int64_t size, double lr, double smoothing) {
  return guarded([&] {
    Impl& m = live();
    Tensor input = m.batchInput(x, size);
    Tensor l = m.batchLabels(labels, size);
    if (!std::isfinite(lr)) throw EngineError("learning rate must be finite");
    Tensor logits = m.run(input, true, true, {}, nullptr);
    Tensor loss = Impl::crossEntropy(logits, l, smoothing, 1);
    Tensor wrong = logits.detach().argmax(1).ne(l).sum();
    auto grads = torch::autograd::grad({loss}, m.paramValues(), {}, false, false, true);
    m.sgd(grads, lr);
    return StepResult{loss.item<double>(), static_cast<double>(wrong.item<int64_t>())};
  });
}

StepResult Executor::evaluate(FloatView x, LabelView labels, int64_t size) {
  return guarded([&] {
    Impl& m = live();
    torch::InferenceMode im;
    Tensor input = m.batchInput(x, size);
    Tensor l = m.batchLabels(labels, size);
    Tensor logits = m.run(input, false, false, {}, nullptr);
    double loss = Impl::crossEntropy(logits, l, 0, 1).item<double>() * size;
    return StepResult{loss, static_cast<double>(logits.argmax(1).ne(l).sum().item<int64_t>())};
  });
}

Outputs Executor::forward(FloatView x, int64_t size, bool training, const std::vector<std::string>& taps, bool keepGraph) {
  return guarded([&] {
    Impl& m = live();
    m.pending.clear();
    auto tapIdx = m.tapIndices(taps);
    Tensor input = m.batchInput(x, size);
    std::vector<Tensor> tapOut;
    Tensor logits;
    if (keepGraph) {
      logits = m.run(input, training, false, tapIdx, &tapOut);
    } else {
      torch::NoGradGuard ng;
      logits = m.run(input, training, false, tapIdx, &tapOut);
    }
    // Taps at their true channels (a differentiable view, so seeds given for them reach the padded maps too).
    for (size_t k = 0; k < tapOut.size(); k++)
      if (tapOut[k].dim() == 4) tapOut[k] = trueChannels(tapOut[k], m.nodes[tapIdx[k]].p.outC);
    Outputs out{toFloats(logits), {}};
    for (auto& t : tapOut) out.taps.push_back(toFloats(toNhwc(t)));
    if (keepGraph) {
      m.pending.push_back(logits);
      for (auto& t : tapOut) m.pending.push_back(t);
    }
    return out;
  });
}

std::vector<Floats> Executor::backwardSeeds(FloatView dLogits, const std::vector<FloatView>& dTaps) {
  return guarded([&] {
    Impl& m = live();
    if (m.pending.empty()) throw EngineError("backwardSeeds without a forward that kept its graph");
    // The graph goes whatever happens below: a second call must not find it.
    std::vector<Tensor> pending;
    pending.swap(m.pending);
    if (dTaps.size() > pending.size() - 1)
      throw EngineError(std::to_string(dTaps.size()) + " tap seeds for " + std::to_string(pending.size() - 1) + " taps");
    std::vector<Tensor> outs, seeds;
    auto seedFor = [&](const FloatView& v, const Tensor& out) {
      if (!v.present) return;
      if (static_cast<int64_t>(v.length) != out.numel()) throw EngineError("a seed's size differs from its output");
      Tensor s = borrow(v, toNhwc(out).sizes().vec());
      outs.push_back(out);
      seeds.push_back(out.dim() == 4 ? m.deviceCopy(s) : s.to(m.device).clone());
    };
    seedFor(dLogits, pending[0]);
    for (size_t i = 0; i < dTaps.size(); i++) seedFor(dTaps[i], pending[i + 1]);
    std::vector<Tensor> grads(m.params.size());
    if (!outs.empty()) grads = torch::autograd::grad(outs, m.paramValues(), seeds, false, false, true);
    return m.gradsOut(grads);
  });
}

void Executor::dropGraph() {
  if (impl_) impl_->pending.clear();
}

bool Executor::holdsGraph() const { return impl_ && !impl_->pending.empty(); }

LossGradients Executor::gradients(FloatView x, LabelView labels, int64_t size, bool training, double smoothing, double temperature) {
  return guarded([&] {
    Impl& m = live();
    Tensor input = m.batchInput(x, size);
    Tensor l = m.batchLabels(labels, size);
    Tensor loss = Impl::crossEntropy(m.run(input, training, false, {}, nullptr), l, smoothing, temperature);
    auto grads = torch::autograd::grad({loss}, m.paramValues(), {}, false, false, true);
    return LossGradients{loss.item<double>(), m.gradsOut(grads)};
  });
}

std::vector<Floats> Executor::hessianVector(FloatView x, LabelView labels, int64_t size, bool training, double smoothing,
                                            double temperature, const std::vector<FloatView>& v) {
  return guarded([&] {
    Impl& m = live();
    auto vs = m.gradsIn(v);
    Tensor input = m.batchInput(x, size);
    Tensor l = m.batchLabels(labels, size);
    Tensor loss = Impl::crossEntropy(m.run(input, training, false, {}, nullptr), l, smoothing, temperature);
    auto params = m.paramValues();
    auto grads = torch::autograd::grad({loss}, params, {}, true, true, true);
    Tensor dot = torch::zeros({}, m.fopts());
    for (size_t i = 0; i < grads.size(); i++)
      if (grads[i].defined() && vs[i].defined()) dot = dot + (grads[i] * vs[i]).sum();
    std::vector<Tensor> hv(params.size());
    if (dot.requires_grad()) hv = torch::autograd::grad({dot}, params, {}, false, false, true);
    return m.gradsOut(hv);
  });
}

void Executor::applyGradients(const std::vector<FloatView>& grads, double lr) {
  guarded([&] {
    Impl& m = live();
    if (!std::isfinite(lr)) throw EngineError("learning rate must be finite");
    m.sgd(m.gradsIn(grads), lr);
  });
}

std::vector<Floats> Executor::readWeights() const {
  return guarded([&] {
    Impl& m = live();
    std::vector<Floats> out;
    for (auto& p : m.params) out.push_back(toFloats(toTfjsLayout(p.view(), p.layout)));
    for (auto& b : m.buffers) out.push_back(toFloats(b.view()));
    return out;
  });
}

std::vector<Floats> Executor::readMomentum() const {
  return guarded([&] {
    Impl& m = live();
    std::vector<Floats> out;
    for (auto& p : m.params) out.push_back(p.momentum.defined() ? toFloats(toTfjsLayout(trueView(p.momentum, p.logical), p.layout)) : Floats());
    return out;
  });
}

void Executor::writeMomentum(const std::vector<FloatView>& data) {
  guarded([&] {
    Impl& m = live();
    if (data.size() != m.params.size()) throw EngineError("writeMomentum: one array per parameter expected");
    for (size_t i = 0; i < data.size(); i++)
      if (data[i].present && data[i].length != 0 && static_cast<int64_t>(data[i].length) != m.params[i].view().numel())
        throw EngineError(m.params[i].name + ": momentum has " + std::to_string(data[i].length) + " values, expected " +
                          std::to_string(m.params[i].view().numel()));
    torch::NoGradGuard ng;
    for (size_t i = 0; i < data.size(); i++) {
      Param& p = m.params[i];
      if (!data[i].present || data[i].length == 0) {
        p.momentum = Tensor();
        continue;
      }
      p.momentum = Impl::paramFromTfjs(p, data[i], "momentum values");
    }
  });
}

void Executor::writeWeights(const std::vector<int64_t>& indices, const std::vector<FloatView>& data) {
  guarded([&] {
    Impl& m = live();
    if (indices.size() != data.size()) throw EngineError("writeWeights: as many indices as arrays expected");
    int64_t total = static_cast<int64_t>(m.params.size() + m.buffers.size());
    // All checked before any is written, so a bad entry leaves the net as it was.
    for (size_t i = 0; i < indices.size(); i++) {
      if (indices[i] < 0 || indices[i] >= total)
        throw EngineError("weight index " + std::to_string(indices[i]) + " is outside 0.." + std::to_string(total - 1));
      if (!data[i].present) throw EngineError("weight " + std::to_string(indices[i]) + ": no values");
    }
    torch::NoGradGuard ng;
    std::vector<std::pair<Tensor, Tensor>> writes;
    for (size_t i = 0; i < indices.size(); i++) {
      size_t k = static_cast<size_t>(indices[i]);
      bool param = k < m.params.size();
      Tensor target = param ? m.params[k].view() : m.buffers[k - m.params.size()].view();
      Layout l = param ? m.params[k].layout : Layout::Vector;
      const std::string& name = param ? m.params[k].name : m.buffers[k - m.params.size()].name;
      if (static_cast<int64_t>(data[i].length) != target.numel())
        throw EngineError(name + ": " + std::to_string(data[i].length) + " values, expected " + std::to_string(target.numel()));
      writes.push_back({target, toTorchLayout(borrow(data[i], param ? tfjsShape(target, l) : target.sizes().vec()), l)});
    }
    for (auto& [target, value] : writes) target.copy_(value);
  });
}

void Executor::dispose() { impl_.reset(); }

bool Executor::disposed() const { return !impl_; }

std::string Executor::memoryFormat() const {
  const Impl& m = live();
  bool padded = false;
  for (const Param& p : m.params) padded = padded || p.value.sizes() != IntArrayRef(p.logical);
  return !m.channelsLast ? "nchw" : padded ? "channels-last-padded" : "channels-last";
}

void setThreads(int n) {
  guarded([&] {
    if (n < 1 || n > 1024) throw EngineError("threads must be in 1..1024");
    if (torch::get_num_threads() != n) torch::set_num_threads(n);
  });
}

int threads() {
  return guarded([] { return torch::get_num_threads(); });
}

int cudaDevices() {
  return guarded([] { return torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0; });
}

std::string torchVersion() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." + std::to_string(TORCH_VERSION_PATCH);
}

namespace {
thread_local std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
}

void profileStart(const std::string& path) {
  if (profile) throw EngineError("profileStart: a profile is already recording");
  guarded([&] { profile = std::make_unique<torch::autograd::profiler::RecordProfile>(path); return 0; });
}

void profileStop() {
  if (!profile) throw EngineError("profileStop: no profile is recording");
  // RecordProfile writes the trace when it is destroyed.
  guarded([&] { profile.reset(); return 0; });
}

}  // namespace prunespace
