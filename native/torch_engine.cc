// One generic libtorch executor over a resolved NetSpec (nodes in topological order), exposed to Node as `Net`.
// Activations run NCHW inside; batches arrive NHWC and weights cross in tfjs layout (converted here).
#include <napi.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cstring>
#include <limits>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using torch::Tensor;
using torch::IntArrayRef;
using torch::indexing::None;
using torch::indexing::Slice;

constexpr double kBnMomentum = 0.1;  // running = 0.9 running + 0.1 batch, as the tfjs loop
constexpr double kBnEps = 1e-5;

enum class Op { Input, Conv, Depthwise, Bn, Relu, Add, Shortcut, MaxPool, Gap, Flatten, Dropout, Linear };
// How a weight's tfjs layout maps to torch's.
enum class Layout { Conv, Depthwise, Linear, Vector };

struct Node {
  Op op = Op::Input;
  std::string id;
  std::vector<int> in;
  int inH = 0, inW = 0, inC = 0, outC = 0;
  int kernel = 1, stride = 1;
  bool same = false, bias = false;
  double max = -1, rate = 0;
  int w = -1, b = -1;                        // parameter indices (conv, depthwise, linear; bn: gamma, beta)
  int runningMean = -1, runningVar = -1;     // buffer indices (bn)
  int lastUse = -1;
};

struct Param {
  std::string name;
  Layout layout;
  bool decay;
  Tensor value;
  Tensor momentum;  // undefined until the first step
};

struct Buffer {
  std::string name;
  Tensor value;
};

int getInt(const Napi::Object& o, const char* k, int fallback = 0) {
  auto v = o.Get(k);
  return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : fallback;
}
double getDouble(const Napi::Object& o, const char* k, double fallback) {
  auto v = o.Get(k);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}
bool getBool(const Napi::Object& o, const char* k) {
  auto v = o.Get(k);
  return v.IsBoolean() && v.As<Napi::Boolean>().Value();
}

Op opOf(const std::string& s) {
  static const std::unordered_map<std::string, Op> ops = {
      {"input", Op::Input}, {"conv", Op::Conv}, {"depthwise", Op::Depthwise}, {"bn", Op::Bn},
      {"relu", Op::Relu}, {"add", Op::Add}, {"shortcut", Op::Shortcut}, {"maxpool", Op::MaxPool},
      {"gap", Op::Gap}, {"flatten", Op::Flatten}, {"dropout", Op::Dropout}, {"linear", Op::Linear}};
  auto it = ops.find(s);
  if (it == ops.end()) throw std::runtime_error("unknown node op " + s);
  return it->second;
}

// TensorFlow's 'same' padding: total = max((out - 1) * s + k - in, 0), the extra pixel at the bottom/right.
std::pair<int, int> samePad(int in, int k, int s) {
  int out = (in + s - 1) / s;
  int total = std::max((out - 1) * s + k - in, 0);
  return {total / 2, total - total / 2};
}

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

Napi::Float32Array toJs(Napi::Env env, const Tensor& t) {
  Tensor c = t.detach().to(torch::kCPU, torch::kFloat).contiguous();
  auto out = Napi::Float32Array::New(env, c.numel());
  if (c.numel()) std::memcpy(out.Data(), c.data_ptr<float>(), c.numel() * sizeof(float));
  return out;
}

// NHWC activations for JS (rank-2 outputs as they are).
Tensor toNhwc(const Tensor& t) { return t.dim() == 4 ? t.permute({0, 2, 3, 1}) : t; }

class Net : public Napi::ObjectWrap<Net> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Net",
                       {InstanceMethod("weightInfo", &Net::WeightInfo), InstanceMethod("trainStep", &Net::TrainStep),
                        InstanceMethod("evaluate", &Net::Evaluate), InstanceMethod("forward", &Net::Forward),
                        InstanceMethod("gradients", &Net::Gradients), InstanceMethod("backwardSeeds", &Net::BackwardSeeds),
                        InstanceMethod("hessianVector", &Net::HessianVector),
                        InstanceMethod("applyGradients", &Net::ApplyGradients),
                        InstanceMethod("readWeights", &Net::ReadWeights), InstanceMethod("writeWeights", &Net::WriteWeights),
                        InstanceMethod("readMomentum", &Net::ReadMomentum), InstanceMethod("writeMomentum", &Net::WriteMomentum),
                        InstanceMethod("dispose", &Net::Dispose)});
  }

  // new Net(nodes, { input: [h,w,c], threads, device, momentum, nesterov, weightDecay })
  Net(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Net>(info) {
    guard(info.Env(), [&] {
      auto nodes = info[0].As<Napi::Array>();
      auto opts = info[1].As<Napi::Object>();
      auto input = opts.Get("input").As<Napi::Array>();
      for (int i = 0; i < 3; i++) input_[i] = input.Get(i).As<Napi::Number>().Int32Value();
      int threads = getInt(opts, "threads", 1);
      if (threads > 0) torch::set_num_threads(threads);
      std::string device = opts.Get("device").IsString() ? opts.Get("device").As<Napi::String>().Utf8Value() : "cpu";
      device_ = torch::Device(device);
      momentum_ = getDouble(opts, "momentum", 0.9);
      nesterov_ = getBool(opts, "nesterov");
      weightDecay_ = getDouble(opts, "weightDecay", 0);
      build(nodes);
    });
  }

 private:
  std::vector<Node> nodes_;
  std::vector<Param> params_;
  std::vector<Buffer> buffers_;
  std::unordered_map<std::string, int> nodeIndex_;
  int input_[3] = {0, 0, 0};
  torch::Device device_ = torch::kCPU;
  double momentum_ = 0.9, weightDecay_ = 0;
  bool nesterov_ = false;
  // Outputs of the last forwardGraph call (logits first, then taps), awaiting their seeds.
  std::vector<Tensor> pending_;

  template <typename F>
  static void guard(Napi::Env env, F&& f) {
    try {
      f();
    } catch (const c10::Error& e) {
      throw Napi::Error::New(env, std::string("torch: ") + e.what_without_backtrace());
    } catch (const Napi::Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
  }

  torch::TensorOptions fopts() const { return torch::TensorOptions().dtype(torch::kFloat).device(device_); }

  int addParam(const std::string& name, Layout l, bool decay, std::vector<int64_t> torchShape) {
    params_.push_back({name, l, decay, torch::zeros(torchShape, fopts()), Tensor()});
    return static_cast<int>(params_.size()) - 1;
  }

  void build(const Napi::Array& arr) {
    for (uint32_t i = 0; i < arr.Length(); i++) {
      auto o = arr.Get(i).As<Napi::Object>();
      Node n;
      n.op = opOf(o.Get("op").As<Napi::String>().Utf8Value());
      n.id = o.Get("id").As<Napi::String>().Utf8Value();
      auto in = o.Get("in").As<Napi::Array>();
      for (uint32_t j = 0; j < in.Length(); j++) n.in.push_back(in.Get(j).As<Napi::Number>().Int32Value());
      n.inH = getInt(o, "inH");
      n.inW = getInt(o, "inW");
      n.inC = getInt(o, "inC");
      n.outC = getInt(o, "outC");
      n.kernel = getInt(o, "kernel", 1);
      n.stride = getInt(o, "stride", 1);
      n.same = getBool(o, "same");
      n.bias = getBool(o, "bias");
      n.max = getDouble(o, "max", -1);
      n.rate = getDouble(o, "rate", 0);
      const std::string& id = n.id;
      switch (n.op) {
        case Op::Conv:
          n.w = addParam(id + "/kernel", Layout::Conv, true, {n.outC, n.inC, n.kernel, n.kernel});
          if (n.bias) n.b = addParam(id + "/bias", Layout::Vector, false, {n.outC});
          break;
        case Op::Depthwise:
          n.w = addParam(id + "/depthwise_kernel", Layout::Depthwise, true, {n.inC, 1, n.kernel, n.kernel});
          if (n.bias) n.b = addParam(id + "/bias", Layout::Vector, false, {n.inC});
          break;
        case Op::Linear:
          n.w = addParam(id + "/kernel", Layout::Linear, true, {n.outC, n.inC});
          if (n.bias) n.b = addParam(id + "/bias", Layout::Vector, false, {n.outC});
          break;
        case Op::Bn:
          n.w = addParam(id + "/gamma", Layout::Vector, false, {n.inC});
          n.b = addParam(id + "/beta", Layout::Vector, false, {n.inC});
          n.runningMean = static_cast<int>(buffers_.size());
          buffers_.push_back({id + "/moving_mean", torch::zeros({n.inC}, fopts())});
          n.runningVar = static_cast<int>(buffers_.size());
          buffers_.push_back({id + "/moving_variance", torch::ones({n.inC}, fopts())});
          break;
        default:
          break;
      }
      nodeIndex_[id] = static_cast<int>(nodes_.size());
      for (int j : n.in) nodes_[j].lastUse = static_cast<int>(nodes_.size());
      nodes_.push_back(std::move(n));
    }
    for (auto& p : params_) {
      if (p.layout == Layout::Vector && p.name.size() > 6 && p.name.compare(p.name.size() - 6, 6, "/gamma") == 0) p.value.fill_(1);
      p.value.set_requires_grad(true);
    }
  }

  std::vector<Tensor> paramValues() const {
    std::vector<Tensor> v;
    for (auto& p : params_) v.push_back(p.value);
    return v;
  }

  // NHWC Float32Array -> NCHW tensor on the device.
  Tensor batchInput(const Napi::Value& v, int64_t size) const {
    auto a = v.As<Napi::Float32Array>();
    if (static_cast<int64_t>(a.ElementLength()) != size * input_[0] * input_[1] * input_[2])
      throw std::runtime_error("batch has " + std::to_string(a.ElementLength()) + " values, expected " +
                               std::to_string(size) + "x" + std::to_string(input_[0]) + "x" + std::to_string(input_[1]) +
                               "x" + std::to_string(input_[2]));
    return nchwCopy(torch::from_blob(a.Data(), {size, input_[0], input_[1], input_[2]}, torch::kFloat));
  }

  // A fresh NCHW tensor on the device with standard strides. Never just `.contiguous()` of the permuted view: with
  // one channel that view already counts as contiguous and keeps channels-last strides, which send every
  // convolution after it down libtorch 1.13's channels-last path. That path ran arbitrary widths at about half
  // speed, and its gradients below a stride-2 block with a zero-pad shortcut were off by up to 6% (tested against tfjs in
  // test/engine-torch.test.ts), though it was faster at widths in multiples of 8.
  Tensor nchwCopy(const Tensor& nhwc) const {
    Tensor out = torch::empty({nhwc.size(0), nhwc.size(3), nhwc.size(1), nhwc.size(2)}, fopts());
    out.copy_(nhwc.permute({0, 3, 1, 2}));
    return out;
  }

  Tensor batchLabels(const Napi::Value& v, int64_t size) const {
    if (!v.IsTypedArray()) throw std::runtime_error("this loss needs labels");
    auto a = v.As<Napi::Int32Array>();
    if (static_cast<int64_t>(a.ElementLength()) != size) throw std::runtime_error("labels and batch size differ");
    return torch::from_blob(a.Data(), {size}, torch::kInt).to(device_, torch::kLong);
  }

  Tensor padSame(const Tensor& x, const Node& n, int k, double value) const {
    auto [top, bottom] = samePad(n.inH, k, n.stride);
    auto [left, right] = samePad(n.inW, k, n.stride);
    if (top == 0 && bottom == 0 && left == 0 && right == 0) return x;
    return torch::constant_pad_nd(x, {left, right, top, bottom}, value);
  }

  // The generic executor. training: BN on batch statistics and dropout on; updateStats: BN running averages move.
  Tensor run(const Tensor& x, bool training, bool updateStats, const std::vector<int>& taps, std::vector<Tensor>* tapOut) {
    std::vector<Tensor> outs(nodes_.size());
    std::vector<char> keep(nodes_.size(), 0);
    for (int t : taps) keep[t] = 1;
    for (size_t i = 0; i < nodes_.size(); i++) {
      const Node& n = nodes_[i];
      const Tensor& a = n.in.empty() ? x : outs[n.in[0]];
      Tensor y;
      switch (n.op) {
        case Op::Input: y = x; break;
        case Op::Conv:
        case Op::Depthwise: {
          auto [top, bottom] = samePad(n.inH, n.kernel, n.stride);
          auto [left, right] = samePad(n.inW, n.kernel, n.stride);
          Tensor bias = n.b >= 0 ? params_[n.b].value : Tensor();
          int groups = n.op == Op::Depthwise ? n.inC : 1;
          if (n.kernel == 1 && n.stride > 1) {
            // A strided 1x1 conv is a subsample then a 1x1 conv ('same' adds no padding at k = 1). libtorch 1.13's
            // CPU backward of the strided 1x1 conv wrote past its buffer at some shapes (valgrind: invalid write in
            // convolution_backward, a projection shortcut at 12x12, 4->8 channels); the subsampled form avoids it.
            Tensor s = a.index({Slice(), Slice(), Slice(None, None, n.stride), Slice(None, None, n.stride)});
            y = torch::conv2d(s, params_[n.w].value, bias);
          } else if (!n.same || (top == bottom && left == right)) {
            int64_t stride = n.stride;
            int64_t ph = n.same ? top : 0, pw = n.same ? left : 0;
            y = torch::conv2d(a, params_[n.w].value, bias, IntArrayRef{stride, stride}, IntArrayRef{ph, pw}, IntArrayRef{1, 1}, groups);
          } else {
            int64_t stride = n.stride;
            y = torch::conv2d(padSame(a, n, n.kernel, 0.0), params_[n.w].value, bias, IntArrayRef{stride, stride}, IntArrayRef{0, 0}, IntArrayRef{1, 1}, groups);
          }
          break;
        }
        case Op::Bn: {
          const Tensor& g = params_[n.w].value;
          const Tensor& b = params_[n.b].value;
          Tensor& rm = buffers_[n.runningMean].value;
          Tensor& rv = buffers_[n.runningVar].value;
          if (!training) {
            y = torch::batch_norm(a, g, b, rm, rv, false, kBnMomentum, kBnEps, true);
          } else {
            auto r = torch::native_batch_norm(a, g, b, {}, {}, true, kBnMomentum, kBnEps);
            y = std::get<0>(r);
            if (updateStats) {
              // tfjs semantics: the running variance averages the biased batch variance.
              torch::NoGradGuard ng;
              Tensor mean = std::get<1>(r).detach();
              Tensor var = std::get<2>(r).detach().pow(-2) - kBnEps;
              rm.mul_(1 - kBnMomentum).add_(mean, kBnMomentum);
              rv.mul_(1 - kBnMomentum).add_(var, kBnMomentum);
            }
          }
          break;
        }
        case Op::Relu: y = n.max >= 0 ? torch::hardtanh(a, 0, n.max) : torch::relu(a); break;
        case Op::Add: y = a + outs[n.in[1]]; break;
        case Op::Shortcut: {
          Tensor s = n.stride > 1 ? a.index({Slice(), Slice(), Slice(None, None, n.stride), Slice(None, None, n.stride)}) : a;
          if (n.outC > n.inC) s = torch::constant_pad_nd(s, {0, 0, 0, 0, 0, n.outC - n.inC}, 0);
          else if (n.outC < n.inC) s = s.narrow(1, 0, n.outC);
          y = s;
          break;
        }
        case Op::MaxPool:
          y = torch::max_pool2d(n.same ? padSame(a, n, n.kernel, -std::numeric_limits<double>::infinity()) : a, n.kernel, n.stride);
          break;
        case Op::Gap: y = a.mean({2, 3}); break;
        case Op::Flatten: y = a.dim() == 4 ? a.permute({0, 2, 3, 1}).reshape({a.size(0), -1}) : a; break;
        case Op::Dropout: y = torch::dropout(a, n.rate, training); break;
        case Op::Linear: {
          Tensor in = a.dim() == 4 ? a.permute({0, 2, 3, 1}).reshape({a.size(0), -1}) : a;
          y = torch::linear(in, params_[n.w].value, n.b >= 0 ? params_[n.b].value : Tensor());
          break;
        }
      }
      outs[i] = y;
      for (int j : n.in)
        if (nodes_[j].lastUse == static_cast<int>(i) && !keep[j]) outs[j] = Tensor();
    }
    if (tapOut)
      for (int t : taps) tapOut->push_back(outs[t]);
    return outs.back();
  }

  static Tensor crossEntropy(const Tensor& logits, const Tensor& labels, double smoothing, double temperature) {
    Tensor z = temperature == 1 ? logits : logits / temperature;
    Tensor logp = torch::log_softmax(z, 1);
    Tensor nll = -logp.gather(1, labels.unsqueeze(1)).squeeze(1);
    if (smoothing > 0) nll = (1 - smoothing) * nll - smoothing * logp.mean(1);
    return nll.mean();
  }

  std::vector<int> tapIndices(const Napi::Value& v) const {
    std::vector<int> out;
    if (!v.IsArray()) return out;
    auto a = v.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      std::string id = a.Get(i).As<Napi::String>().Utf8Value();
      auto it = nodeIndex_.find(id);
      if (it == nodeIndex_.end()) throw std::runtime_error("tap " + id + ": no such node");
      out.push_back(it->second);
    }
    return out;
  }

  // p -= lr * (momentum buffer), with coupled L2 on kernels: PyTorch SGD (dampening 0), as the tfjs optimizer.
  void sgd(const std::vector<Tensor>& grads, double lr) {
    torch::NoGradGuard ng;
    for (size_t i = 0; i < params_.size(); i++) {
      Param& p = params_[i];
      if (!grads[i].defined()) continue;
      Tensor g = grads[i];
      if (p.decay && weightDecay_ > 0) g = g.add(p.value, weightDecay_);
      if (momentum_ > 0) {
        if (!p.momentum.defined()) p.momentum = g.clone();
        else p.momentum.mul_(momentum_).add_(g);
        if (nesterov_) p.value.add_(g.add(p.momentum, momentum_), -lr);
        else p.value.add_(p.momentum, -lr);
      } else {
        p.value.add_(g, -lr);
      }
    }
  }

  Napi::Array gradsToJs(Napi::Env env, const std::vector<Tensor>& grads) const {
    auto out = Napi::Array::New(env, params_.size());
    for (size_t i = 0; i < params_.size(); i++) {
      Tensor g = grads[i].defined() ? grads[i] : torch::zeros_like(params_[i].value);
      out.Set(i, toJs(env, toTfjsLayout(g, params_[i].layout)));
    }
    return out;
  }

  std::vector<Tensor> gradsFromJs(const Napi::Array& a) const {
    std::vector<Tensor> out(params_.size());
    for (size_t i = 0; i < params_.size(); i++) {
      auto v = a.Get(i);
      if (!v.IsTypedArray()) continue;
      auto f = v.As<Napi::Float32Array>();
      const Param& p = params_[i];
      auto shape = tfjsShape(p.value, p.layout);
      if (static_cast<int64_t>(f.ElementLength()) != p.value.numel()) throw std::runtime_error(p.name + ": wrong number of values");
      out[i] = toTorchLayout(torch::from_blob(f.Data(), shape, torch::kFloat), p.layout).to(device_).contiguous();
    }
    return out;
  }

  Napi::Value WeightInfo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto out = Napi::Array::New(env);
    uint32_t k = 0;
    auto push = [&](const std::string& name, std::vector<int64_t> shape, bool trainable) {
      auto o = Napi::Object::New(env);
      o.Set("name", name);
      auto s = Napi::Array::New(env, shape.size());
      for (size_t i = 0; i < shape.size(); i++) s.Set(i, Napi::Number::New(env, static_cast<double>(shape[i])));
      o.Set("shape", s);
      o.Set("trainable", trainable);
      out.Set(k++, o);
    };
    for (auto& p : params_) push(p.name, tfjsShape(p.value, p.layout), true);
    for (auto& b : buffers_) push(b.name, b.value.sizes().vec(), false);
    return out;
  }

  // trainStep(x, labels, size, lr, smoothing) -> [loss, wrong]
  Napi::Value TrainStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    double loss = 0, wrong = 0;
    guard(env, [&] {
      int64_t size = info[2].As<Napi::Number>().Int64Value();
      Tensor x = batchInput(info[0], size);
      Tensor labels = batchLabels(info[1], size);
      double lr = info[3].As<Napi::Number>().DoubleValue();
      double smoothing = info[4].As<Napi::Number>().DoubleValue();
      Tensor logits = run(x, true, true, {}, nullptr);
      Tensor l = crossEntropy(logits, labels, smoothing, 1);
      Tensor w = logits.detach().argmax(1).ne(labels).sum();
      auto grads = torch::autograd::grad({l}, paramValues(), {}, false, false, true);
      sgd(grads, lr);
      loss = l.item<double>();
      wrong = static_cast<double>(w.item<int64_t>());
    });
    auto out = Napi::Array::New(env, 2);
    out.Set(0u, loss);
    out.Set(1u, wrong);
    return out;
  }

  // evaluate(x, labels, size) -> [lossSum, wrong], inference mode
  Napi::Value Evaluate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    double loss = 0, wrong = 0;
    guard(env, [&] {
      torch::InferenceMode im;
      int64_t size = info[2].As<Napi::Number>().Int64Value();
      Tensor logits = run(batchInput(info[0], size), false, false, {}, nullptr);
      Tensor labels = batchLabels(info[1], size);
      loss = crossEntropy(logits, labels, 0, 1).item<double>() * size;
      wrong = static_cast<double>(logits.argmax(1).ne(labels).sum().item<int64_t>());
    });
    auto out = Napi::Array::New(env, 2);
    out.Set(0u, loss);
    out.Set(1u, wrong);
    return out;
  }

  Napi::Object outputsToJs(Napi::Env env, const Tensor& logits, const std::vector<Tensor>& taps) {
    auto o = Napi::Object::New(env);
    o.Set("logits", toJs(env, logits));
    auto t = Napi::Array::New(env, taps.size());
    for (size_t i = 0; i < taps.size(); i++) t.Set(i, toJs(env, toNhwc(taps[i])));
    o.Set("taps", t);
    return o;
  }

  // forward(x, size, training, taps[], keepGraph) -> { logits, taps[] }; keepGraph leaves the outputs for backwardSeeds.
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object result;
    guard(env, [&] {
      int64_t size = info[1].As<Napi::Number>().Int64Value();
      bool training = info[2].As<Napi::Boolean>().Value();
      auto taps = tapIndices(info[3]);
      bool keepGraph = info[4].IsBoolean() && info[4].As<Napi::Boolean>().Value();
      std::vector<Tensor> tapOut;
      pending_.clear();
      if (keepGraph) {
        Tensor logits = run(batchInput(info[0], size), training, false, taps, &tapOut);
        pending_.push_back(logits);
        for (auto& t : tapOut) pending_.push_back(t);
        result = outputsToJs(env, logits, tapOut);
      } else {
        torch::NoGradGuard ng;
        Tensor logits = run(batchInput(info[0], size), training, false, taps, &tapOut);
        result = outputsToJs(env, logits, tapOut);
      }
    });
    return result;
  }

  // backwardSeeds(dLogits | null, dTaps (null | Float32Array)[]) -> grads[] for the last forward(..., keepGraph)
  Napi::Value BackwardSeeds(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Value result;
    guard(env, [&] {
      if (pending_.empty()) throw std::runtime_error("backwardSeeds without a forward that kept its graph");
      std::vector<Tensor> outs, seeds;
      auto seedFor = [&](const Napi::Value& v, const Tensor& out) {
        if (!v.IsTypedArray()) return;
        auto f = v.As<Napi::Float32Array>();
        if (static_cast<int64_t>(f.ElementLength()) != out.numel()) throw std::runtime_error("a seed's size differs from its output");
        Tensor nhwc = toNhwc(out);
        Tensor s = torch::from_blob(f.Data(), nhwc.sizes(), torch::kFloat);
        outs.push_back(out);
        seeds.push_back(out.dim() == 4 ? nchwCopy(s) : s.to(device_).clone());
      };
      seedFor(info[0], pending_[0]);
      if (info[1].IsArray()) {
        auto d = info[1].As<Napi::Array>();
        for (uint32_t i = 0; i < d.Length() && i + 1 < pending_.size(); i++) seedFor(d.Get(i), pending_[i + 1]);
      }
      std::vector<Tensor> grads(params_.size());
      if (!outs.empty()) grads = torch::autograd::grad(outs, paramValues(), seeds, false, false, true);
      pending_.clear();
      result = gradsToJs(env, grads);
    });
    return result;
  }

  // gradients(x, labels, size, training, smoothing, temperature) -> { loss, grads[] } of the cross-entropy
  Napi::Value Gradients(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto o = Napi::Object::New(env);
    guard(env, [&] {
      int64_t size = info[2].As<Napi::Number>().Int64Value();
      Tensor logits = run(batchInput(info[0], size), info[3].As<Napi::Boolean>().Value(), false, {}, nullptr);
      Tensor l = crossEntropy(logits, batchLabels(info[1], size), info[4].As<Napi::Number>().DoubleValue(),
                              info[5].As<Napi::Number>().DoubleValue());
      auto grads = torch::autograd::grad({l}, paramValues(), {}, false, false, true);
      o.Set("loss", l.item<double>());
      o.Set("grads", gradsToJs(env, grads));
    });
    return o;
  }

  // hessianVector(x, labels, size, training, smoothing, temperature, v[]) -> H·v by double backpropagation
  Napi::Value HessianVector(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Value result;
    guard(env, [&] {
      int64_t size = info[2].As<Napi::Number>().Int64Value();
      auto v = gradsFromJs(info[6].As<Napi::Array>());
      Tensor logits = run(batchInput(info[0], size), info[3].As<Napi::Boolean>().Value(), false, {}, nullptr);
      Tensor l = crossEntropy(logits, batchLabels(info[1], size), info[4].As<Napi::Number>().DoubleValue(),
                              info[5].As<Napi::Number>().DoubleValue());
      auto params = paramValues();
      auto grads = torch::autograd::grad({l}, params, {}, true, true, true);
      Tensor dot = torch::zeros({}, fopts());
      for (size_t i = 0; i < grads.size(); i++)
        if (grads[i].defined() && v[i].defined()) dot = dot + (grads[i] * v[i]).sum();
      std::vector<Tensor> hv(params.size());
      if (dot.requires_grad()) hv = torch::autograd::grad({dot}, params, {}, false, false, true);
      result = gradsToJs(env, hv);
    });
    return result;
  }

  // applyGradients(grads[] (tfjs layout, param order; null skips), lr)
  Napi::Value ApplyGradients(const Napi::CallbackInfo& info) {
    guard(info.Env(), [&] { sgd(gradsFromJs(info[0].As<Napi::Array>()), info[1].As<Napi::Number>().DoubleValue()); });
    return info.Env().Undefined();
  }

  // readWeights() -> Float32Array[] in weightInfo order (tfjs layout)
  Napi::Value ReadWeights(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto out = Napi::Array::New(env);
    guard(env, [&] {
      uint32_t k = 0;
      for (auto& p : params_) out.Set(k++, toJs(env, toTfjsLayout(p.value, p.layout)));
      for (auto& b : buffers_) out.Set(k++, toJs(env, b.value));
    });
    return out;
  }

  // writeWeights(index[], Float32Array[]) with indices in weightInfo order; sizes are checked in TypeScript and here.
  Napi::Value WriteWeights(const Napi::CallbackInfo& info) {
    guard(info.Env(), [&] {
      auto idx = info[0].As<Napi::Array>();
      auto data = info[1].As<Napi::Array>();
      torch::NoGradGuard ng;
      for (uint32_t i = 0; i < idx.Length(); i++) {
        size_t k = idx.Get(i).As<Napi::Number>().Uint32Value();
        auto f = data.Get(i).As<Napi::Float32Array>();
        Tensor target;
        std::vector<int64_t> shape;
        Layout l = Layout::Vector;
        if (k < params_.size()) {
          target = params_[k].value;
          l = params_[k].layout;
          shape = tfjsShape(target, l);
        } else {
          target = buffers_.at(k - params_.size()).value;
          shape = target.sizes().vec();
        }
        if (static_cast<int64_t>(f.ElementLength()) != target.numel()) throw std::runtime_error("weight size differs");
        target.copy_(toTorchLayout(torch::from_blob(f.Data(), shape, torch::kFloat), l));
      }
    });
    return info.Env().Undefined();
  }

  // readMomentum() -> Float32Array[] in parameter order (tfjs layout); an empty array where no step made a buffer yet.
  Napi::Value ReadMomentum(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto out = Napi::Array::New(env, params_.size());
    guard(env, [&] {
      for (size_t i = 0; i < params_.size(); i++) {
        const Param& p = params_[i];
        out.Set(i, p.momentum.defined() ? toJs(env, toTfjsLayout(p.momentum, p.layout)) : Napi::Float32Array::New(env, 0));
      }
    });
    return out;
  }

  // writeMomentum(Float32Array[] in parameter order, tfjs layout): an empty array clears that buffer (as before a first step).
  Napi::Value WriteMomentum(const Napi::CallbackInfo& info) {
    guard(info.Env(), [&] {
      auto data = info[0].As<Napi::Array>();
      if (data.Length() != params_.size()) throw std::runtime_error("momentum: one array per parameter expected");
      torch::NoGradGuard ng;
      for (uint32_t i = 0; i < data.Length(); i++) {
        Param& p = params_[i];
        auto f = data.Get(i).As<Napi::Float32Array>();
        if (f.ElementLength() == 0) {
          p.momentum = Tensor();
          continue;
        }
        if (static_cast<int64_t>(f.ElementLength()) != p.value.numel()) throw std::runtime_error("momentum size differs from its weight");
        auto shape = tfjsShape(p.value, p.layout);
        p.momentum = toTorchLayout(torch::from_blob(f.Data(), shape, torch::kFloat), p.layout).to(p.value.options()).clone();
      }
    });
    return info.Env().Undefined();
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    pending_.clear();
    params_.clear();
    buffers_.clear();
    nodes_.clear();
    return info.Env().Undefined();
  }
};

Napi::Value CudaDevices(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), torch::cuda::is_available() ? static_cast<double>(torch::cuda::device_count()) : 0);
}

Napi::Value Version(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
                                           std::to_string(TORCH_VERSION_PATCH));
}

// No static state: every environment (main thread, each worker thread) gets its own class.
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Net", Net::Define(env));
  exports.Set("cudaDevices", Napi::Function::New(env, CudaDevices));
  exports.Set("version", Napi::Function::New(env, Version));
  return exports;
}

}  // namespace

NODE_API_MODULE(prunespace_torch, Init)
