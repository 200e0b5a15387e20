// The Node-API face of the executor (executor.h): checks every JavaScript value's type and range before the
// executor sees it, and turns every failure into a JavaScript error. No torch headers here.
#include <napi.h>
#include <cstring>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <string>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "executor.h"

namespace {

using prunespace::EngineError;
using prunespace::FloatView;
using prunespace::Floats;
using prunespace::LabelView;

// What a bad argument was, for the error message.
struct Arg {
  const char* method;
  const char* name;
  std::string where() const { return std::string(method) + ": " + name; }
};


double number(const Napi::Value& v, const Arg& a) {
  if (!v.IsNumber()) throw EngineError(a.where() + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw EngineError(a.where() + " must be finite");
  return d;
}

int64_t integer(const Napi::Value& v, const Arg& a, int64_t lo, int64_t hi) {
  double d = number(v, a);
  if (d != std::floor(d) || d < static_cast<double>(lo) || d > static_cast<double>(hi))
    throw EngineError(a.where() + " must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
  return static_cast<int64_t>(d);
}

bool boolean(const Napi::Value& v, const Arg& a) {
  if (!v.IsBoolean()) throw EngineError(a.where() + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string string(const Napi::Value& v, const Arg& a) {
  if (!v.IsString()) throw EngineError(a.where() + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

Napi::Array array(const Napi::Value& v, const Arg& a) {
  if (!v.IsArray()) throw EngineError(a.where() + " must be an array");
  return v.As<Napi::Array>();
}

// A typed array of exactly the expected element type (reading another type's bytes as floats would run past its end).
template <typename T>
prunespace::View<T> typed(const Napi::Value& v, napi_typedarray_type type, const char* typeName, const Arg& a, bool optional) {
  if (optional && (v.IsNull() || v.IsUndefined())) return {};
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw EngineError(a.where() + " must be a " + typeName + (optional ? " or null" : ""));
  auto t = v.As<Napi::TypedArrayOf<T>>();
  return prunespace::View<T>(t.Data(), t.ElementLength());
}
FloatView floats(const Napi::Value& v, const Arg& a, bool optional = false) {
  return typed<float>(v, napi_float32_array, "Float32Array", a, optional);
}
LabelView labels(const Napi::Value& v, const Arg& a) { return typed<int32_t>(v, napi_int32_array, "Int32Array", a, true); }

std::vector<FloatView> floatList(const Napi::Value& v, const Arg& a) {
  auto arr = array(v, a);
  std::vector<FloatView> out;
  for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(floats(arr.Get(i), a, true));
  return out;
}

// Optional plan fields: absent means the default; present must be the right type.
int optInt(const Napi::Object& o, const char* k, int fallback, const Arg& a) {
  auto v = o.Get(k);
  return v.IsUndefined() ? fallback : static_cast<int>(integer(v, {a.method, k}, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()));
}
double optNumber(const Napi::Object& o, const char* k, double fallback, const Arg& a) {
  auto v = o.Get(k);
  return v.IsUndefined() ? fallback : number(v, {a.method, k});
}
bool optBool(const Napi::Object& o, const char* k, const Arg& a) {
  auto v = o.Get(k);
  return v.IsUndefined() ? false : boolean(v, {a.method, k});
}

prunespace::PlanNode planNode(const Napi::Value& v, uint32_t i) {
  std::string where = "plan node " + std::to_string(i);
  Arg a{"new Net", where.c_str()};
  if (!v.IsObject() || v.IsArray()) throw EngineError(a.where() + " must be an object");
  auto o = v.As<Napi::Object>();
  prunespace::PlanNode n;
  n.op = string(o.Get("op"), {a.name, "op"});
  n.id = string(o.Get("id"), {a.name, "id"});
  auto in = array(o.Get("in"), {a.name, "in"});
  for (uint32_t j = 0; j < in.Length(); j++) n.in.push_back(static_cast<int>(integer(in.Get(j), {a.name, "in[]"}, 0, std::numeric_limits<int32_t>::max())));
  Arg f{a.name, ""};
  n.inH = optInt(o, "inH", 0, f);
  n.inW = optInt(o, "inW", 0, f);
  n.inC = optInt(o, "inC", 0, f);
  n.outC = optInt(o, "outC", 0, f);
  n.kernel = optInt(o, "kernel", 1, f);
  n.stride = optInt(o, "stride", 1, f);
  n.same = optBool(o, "same", f);
  n.bias = optBool(o, "bias", f);
  n.max = optNumber(o, "max", -1, f);
  n.rate = optNumber(o, "rate", 0, f);
  return n;
}

Napi::Float32Array toJs(Napi::Env env, Floats&& v) {
  size_t n = v.size();
  Napi::Float32Array out = Napi::Float32Array::New(env, n);
  // Copied into memory V8 allocates and frees itself. Handing the vector over as an external buffer saved this copy,
  // but Node runs the finalizers of external buffers only when the event loop turns, and a trial's training loop
  // never yields to it: every tapped activation of precise BN (about 30 MB a batch) stayed allocated, 600 MB a trial,
  // until the kernel killed a 160-candidate campaign at 24 GB.
  if (n > 0) std::memcpy(out.Data(), v.data(), n * sizeof(float));
  return out;
}

Napi::Array listToJs(Napi::Env env, std::vector<Floats>&& list) {
  auto out = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); i++) out.Set(i, toJs(env, std::move(list[i])));
  return out;
}

Napi::Array pair(Napi::Env env, const prunespace::StepResult& r) {
  auto out = Napi::Array::New(env, 2);
  out.Set(0u, r.loss);
  out.Set(1u, r.wrong);
  return out;
}

// Every failure becomes a JavaScript error; nothing escapes as a C++ exception into Node.
template <typename F>
Napi::Value guard(Napi::Env env, F&& f) {
  try {
    return f();
  } catch (const Napi::Error&) {
    throw;
  } catch (const EngineError& e) {
    throw Napi::Error::New(env, std::string("torch engine: ") + e.what());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string("torch engine: ") + e.what());
  } catch (...) {
    throw Napi::Error::New(env, "torch engine: unknown failure");
  }
}

constexpr int64_t kMaxBatch = std::numeric_limits<int32_t>::max();

class Net : public Napi::ObjectWrap<Net> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Net",
                       {InstanceMethod("weightInfo", &Net::WeightInfo), InstanceMethod("trainStep", &Net::TrainStep),
                        InstanceMethod("evaluate", &Net::Evaluate), InstanceMethod("forward", &Net::Forward),
                        InstanceMethod("gradients", &Net::Gradients), InstanceMethod("backwardSeeds", &Net::BackwardSeeds),
                        InstanceMethod("dropGraph", &Net::DropGraph), InstanceMethod("hessianVector", &Net::HessianVector),
                        InstanceMethod("applyGradients", &Net::ApplyGradients),
                        InstanceMethod("readWeights", &Net::ReadWeights), InstanceMethod("writeWeights", &Net::WriteWeights),
                        InstanceMethod("readMomentum", &Net::ReadMomentum), InstanceMethod("writeMomentum", &Net::WriteMomentum),
                        InstanceMethod("memoryFormat", &Net::MemoryFormat), InstanceMethod("dispose", &Net::Dispose)});
  }

  // new Net(nodes, { input: [h,w,c], device, momentum, nesterov, weightDecay, dropoutSeed?, memoryFormat? })
  Net(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Net>(info) {
    guard(info.Env(), [&]() -> Napi::Value {
      auto nodes = array(info[0], {"new Net", "nodes"});
      if (!info[1].IsObject()) throw EngineError("new Net: options must be an object");
      auto o = info[1].As<Napi::Object>();
      prunespace::ExecutorOptions opts;
      auto input = array(o.Get("input"), {"new Net", "input"});
      if (input.Length() != 3) throw EngineError("new Net: input must be [h, w, c]");
      for (uint32_t i = 0; i < 3; i++) opts.input[i] = static_cast<int>(integer(input.Get(i), {"new Net", "input[]"}, 1, 1 << 20));
      auto device = o.Get("device");
      if (!device.IsUndefined()) opts.device = string(device, {"new Net", "device"});
      Arg a{"new Net", ""};
      opts.momentum = optNumber(o, "momentum", 0.9, a);
      opts.nesterov = optBool(o, "nesterov", a);
      opts.weightDecay = optNumber(o, "weightDecay", 0, a);
      auto format = o.Get("memoryFormat");
      if (!format.IsUndefined()) opts.memoryFormat = string(format, {"new Net", "memoryFormat"});
      if (o.Get("dropoutSeed").IsNumber()) {
        opts.seededDropout = true;
        opts.dropoutSeed = static_cast<uint64_t>(optNumber(o, "dropoutSeed", 0, a));
      }
      std::vector<prunespace::PlanNode> plan;
      for (uint32_t i = 0; i < nodes.Length(); i++) plan.push_back(planNode(nodes.Get(i), i));
      exec_.reset(new prunespace::Executor(plan, opts));
      return info.Env().Undefined();
    });
  }

 private:
  std::unique_ptr<prunespace::Executor> exec_;

  prunespace::Executor& exec() {
    if (!exec_ || exec_->disposed()) throw EngineError("this net was disposed");
    return *exec_;
  }

  Napi::Value WeightInfo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      auto specs = exec().weightInfo();
      auto out = Napi::Array::New(env, specs.size());
      for (size_t k = 0; k < specs.size(); k++) {
        auto o = Napi::Object::New(env);
        o.Set("name", specs[k].name);
        auto s = Napi::Array::New(env, specs[k].shape.size());
        for (size_t i = 0; i < specs[k].shape.size(); i++) s.Set(i, Napi::Number::New(env, static_cast<double>(specs[k].shape[i])));
        o.Set("shape", s);
        o.Set("trainable", specs[k].trainable);
        out.Set(k, o);
      }
      return out;
    });
  }

  // trainStep(x, labels, size, lr, smoothing) -> [loss, wrong]
  Napi::Value TrainStep(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const char* m = "trainStep";
      auto r = exec().trainStep(floats(info[0], {m, "x"}), labels(info[1], {m, "labels"}), integer(info[2], {m, "size"}, 1, kMaxBatch),
                                number(info[3], {m, "lr"}), number(info[4], {m, "smoothing"}));
      return pair(info.Env(), r);
    });
  }

  // evaluate(x, labels, size) -> [lossSum, wrong], inference mode
  Napi::Value Evaluate(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const char* m = "evaluate";
      return pair(info.Env(), exec().evaluate(floats(info[0], {m, "x"}), labels(info[1], {m, "labels"}), integer(info[2], {m, "size"}, 1, kMaxBatch)));
    });
  }

  // forward(x, size, training, taps[], keepGraph) -> { logits, taps[] }; keepGraph leaves the outputs for backwardSeeds.
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      const char* m = "forward";
      std::vector<std::string> taps;
      if (!info[3].IsUndefined()) {
        auto a = array(info[3], {m, "taps"});
        for (uint32_t i = 0; i < a.Length(); i++) taps.push_back(string(a.Get(i), {m, "taps[]"}));
      }
      bool keep = info[4].IsUndefined() ? false : boolean(info[4], {m, "keepGraph"});
      auto r = exec().forward(floats(info[0], {m, "x"}), integer(info[1], {m, "size"}, 1, kMaxBatch), boolean(info[2], {m, "training"}), taps, keep);
      auto o = Napi::Object::New(env);
      o.Set("logits", toJs(env, std::move(r.logits)));
      o.Set("taps", listToJs(env, std::move(r.taps)));
      return o;
    });
  }

  // backwardSeeds(dLogits | null, dTaps (null | Float32Array)[]) -> grads[] for the last forward(..., keepGraph)
  Napi::Value BackwardSeeds(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const char* m = "backwardSeeds";
      auto& e = exec();
      FloatView dLogits;
      std::vector<FloatView> dTaps;
      try {
        dLogits = floats(info[0], {m, "dLogits"}, true);
        if (!info[1].IsUndefined() && !info[1].IsNull()) dTaps = floatList(info[1], {m, "dTaps"});
      } catch (...) {
        e.dropGraph();  // a bad seed must not leave the graph for a later call
        throw;
      }
      return listToJs(info.Env(), e.backwardSeeds(dLogits, dTaps));
    });
  }

  // dropGraph(): forgets the graph kept by forward(..., keepGraph) (a loss computed in TypeScript threw).
  Napi::Value DropGraph(const Napi::CallbackInfo& info) {
    if (exec_) exec_->dropGraph();
    return info.Env().Undefined();
  }

  // gradients(x, labels, size, training, smoothing, temperature) -> { loss, grads[] } of the cross-entropy
  Napi::Value Gradients(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      const char* m = "gradients";
      auto r = exec().gradients(floats(info[0], {m, "x"}), labels(info[1], {m, "labels"}), integer(info[2], {m, "size"}, 1, kMaxBatch),
                                boolean(info[3], {m, "training"}), number(info[4], {m, "smoothing"}), number(info[5], {m, "temperature"}));
      auto o = Napi::Object::New(env);
      o.Set("loss", r.loss);
      o.Set("grads", listToJs(env, std::move(r.grads)));
      return o;
    });
  }

  // hessianVector(x, labels, size, training, smoothing, temperature, v[]) -> H·v by double backpropagation
  Napi::Value HessianVector(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const char* m = "hessianVector";
      auto hv = exec().hessianVector(floats(info[0], {m, "x"}), labels(info[1], {m, "labels"}), integer(info[2], {m, "size"}, 1, kMaxBatch),
                                     boolean(info[3], {m, "training"}), number(info[4], {m, "smoothing"}),
                                     number(info[5], {m, "temperature"}), floatList(info[6], {m, "v"}));
      return listToJs(info.Env(), std::move(hv));
    });
  }

  // applyGradients(grads[] (tfjs layout, param order; null skips), lr)
  Napi::Value ApplyGradients(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      exec().applyGradients(floatList(info[0], {"applyGradients", "grads"}), number(info[1], {"applyGradients", "lr"}));
      return info.Env().Undefined();
    });
  }

  // readWeights() -> Float32Array[] in weightInfo order (tfjs layout)
  Napi::Value ReadWeights(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return listToJs(info.Env(), exec().readWeights()); });
  }

  // writeWeights(index[], Float32Array[]) with indices in weightInfo order
  Napi::Value WriteWeights(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const char* m = "writeWeights";
      auto idx = array(info[0], {m, "indices"});
      auto data = array(info[1], {m, "data"});
      std::vector<int64_t> indices;
      std::vector<FloatView> views;
      for (uint32_t i = 0; i < idx.Length(); i++) indices.push_back(integer(idx.Get(i), {m, "indices[]"}, 0, std::numeric_limits<int32_t>::max()));
      for (uint32_t i = 0; i < data.Length(); i++) views.push_back(floats(data.Get(i), {m, "data[]"}));
      exec().writeWeights(indices, views);
      return info.Env().Undefined();
    });
  }

  Napi::Value ReadMomentum(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return listToJs(info.Env(), exec().readMomentum()); });
  }

  // writeMomentum(Float32Array[] in parameter order, tfjs layout; an empty array clears that buffer)
  Napi::Value WriteMomentum(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto data = array(info[0], {"writeMomentum", "data"});
      std::vector<FloatView> views;
      for (uint32_t i = 0; i < data.Length(); i++) views.push_back(floats(data.Get(i), {"writeMomentum", "data[]"}));
      exec().writeMomentum(views);
      return info.Env().Undefined();
    });
  }

  Napi::Value MemoryFormat(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), exec().memoryFormat()); });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    if (exec_) exec_->dispose();
    return info.Env().Undefined();
  }
};

// setThreads(n): libtorch's intra-op threads, for the whole process.
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    prunespace::setThreads(static_cast<int>(integer(info[0], {"setThreads", "threads"}, 1, 1024)));
    return info.Env().Undefined();
  });
}

Napi::Value Threads(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), prunespace::threads()); });
}

Napi::Value CudaDevices(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), prunespace::cudaDevices()); });
}

Napi::Value Version(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), prunespace::torchVersion()); });
}

Napi::Value ProfileStart(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsString()) throw EngineError("profileStart: path must be a string");
    prunespace::profileStart(info[0].As<Napi::String>().Utf8Value());
    return info.Env().Undefined();
  });
}

Napi::Value ProfileStop(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    prunespace::profileStop();
    return info.Env().Undefined();
  });
}

// glibc serves allocations above its mmap threshold with fresh mmaps and returns freed heap tops to the kernel, so
// every training step faults in (and zeroes) its large activations and gradients again. Measured with
// `npm run bench -- train-speed` on resnet20 B128 at full width, one thread: 350-358 img/s with glibc's defaults,
// 412-422 with mmap off and no trimming (PyTorch 397-418 in the same runs, whether or not it got the same setting).
// So, once per process: no mmapped chunks, no trimming; the heap keeps its peak and reuses it every step.
// PRUNESPACE_TORCH_MALLOC=system keeps glibc's defaults.
std::string allocatorPolicy() {
  static std::once_flag once;
  static std::string policy = "system";
  std::call_once(once, [] {
#if defined(__GLIBC__)
    const char* env = std::getenv("PRUNESPACE_TORCH_MALLOC");
    if (env != nullptr && std::string(env) == "system") return;
    if (mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max()) == 1) policy = "heap";
#endif
  });
  return policy;
}

// The allocator policy in force and the bytes glibc holds in mmapped chunks now (0 where there is no glibc).
Napi::Value Allocator(const Napi::CallbackInfo& info) {
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("policy", allocatorPolicy());
  double mmapped = 0;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  mmapped = static_cast<double>(mallinfo2().hblkhd);
#endif
  out.Set("mmappedBytes", mmapped);
  return out;
}

// No static state but the process-wide allocator setting: every environment gets its own class.
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  allocatorPolicy();
  exports.Set("allocator", Napi::Function::New(env, Allocator));
  exports.Set("Net", Net::Define(env));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("threads", Napi::Function::New(env, Threads));
  exports.Set("cudaDevices", Napi::Function::New(env, CudaDevices));
  exports.Set("version", Napi::Function::New(env, Version));
  exports.Set("profileStart", Napi::Function::New(env, ProfileStart));
  exports.Set("profileStop", Napi::Function::New(env, ProfileStop));
  return exports;
}

}  // namespace

NODE_API_MODULE(prunespace_torch, Init)
