// The libtorch executor of a resolved NetSpec, in plain C++: no Node-API and no torch headers here, so the binding and
// the executor's own test compile in seconds and link against executor.cc (the one slow translation unit).
// Every failure, libtorch's included, leaves as prunespace::EngineError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace prunespace {

/** A failure the caller can recover from: bad input, use after dispose, or an error inside libtorch. */
class EngineError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/** One node of the plan (nodes in topological order; `in` holds indices of earlier nodes). */
struct PlanNode {
  std::string op, id;
  std::vector<int> in;
  int inH = 0, inW = 0, inC = 0, outC = 0;
  int kernel = 1, stride = 1;
  bool same = false, bias = false;
  double max = -1, rate = 0;
};

struct ExecutorOptions {
  int input[3] = {0, 0, 0};  // h, w, c of one sample
  std::string device = "cpu";
  double momentum = 0.9, weightDecay = 0;
  bool nesterov = false;
  // Dropout masks from the net's own generator, so they follow the trial seed and not other nets in the process.
  bool seededDropout = false;
  uint64_t dropoutSeed = 0;
  // "auto": on the CPU, channels-last activations and kernels with every feature map's channels padded up to a
  // multiple of 8 (oneDNN's block: channels-last trains faster there, slower at other counts); zero channels that
  // stay zero, invisible outside. NCHW where padding cannot apply (depthwise nets, CUDA: unmeasured).
  // "nchw", "channels-last" (unpadded) and "channels-last-padded" force one.
  std::string memoryFormat = "auto";
};

/** Borrowed values (a caller's array); `present` false stands for a missing one (JavaScript null). */
template <typename T>
struct View {
  const T* data = nullptr;
  size_t length = 0;
  bool present = false;
  View() = default;
  View(const T* d, size_t n) : data(d), length(n), present(true) {}
};
using FloatView = View<float>;
using LabelView = View<int32_t>;
using Floats = std::vector<float>;

struct WeightSpec {
  std::string name;
  std::vector<int64_t> shape;  // tfjs layout
  bool trainable;
};

struct StepResult {
  double loss = 0, wrong = 0;
};

struct Outputs {
  Floats logits;
  std::vector<Floats> taps;  // NHWC
};

struct LossGradients {
  double loss = 0;
  std::vector<Floats> grads;  // tfjs layout, parameter order
};

/** libtorch's intra-op threads: one setting for the whole process, not for one net. */
void setThreads(int threads);
int threads();
int cudaDevices();
std::string torchVersion();
/**
 * libtorch's operator profiler on this thread, for bench/profile-step.ts: start records every op, stop writes their
 * Chrome trace to the start's path. One profile at a time.
 */
void profileStart(const std::string& path);
void profileStop();

class Executor {
 public:
  Executor(const std::vector<PlanNode>& plan, const ExecutorOptions& opts);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  /** Trainable parameters first, then the BN running statistics. */
  std::vector<WeightSpec> weightInfo() const;
  StepResult trainStep(FloatView x, LabelView labels, int64_t size, double lr, double smoothing);
  /** Loss summed over the batch, and wrong answers, in inference mode. */
  StepResult evaluate(FloatView x, LabelView labels, int64_t size);
  /** keepGraph leaves the outputs for backwardSeeds (or dropGraph). */
  Outputs forward(FloatView x, int64_t size, bool training, const std::vector<std::string>& taps, bool keepGraph);
  /** Gradients of the outputs kept by the last forward(..., keepGraph), seeded by dLogits and dTaps (NHWC). */
  std::vector<Floats> backwardSeeds(FloatView dLogits, const std::vector<FloatView>& dTaps);
  /** Forgets the graph kept by forward (a loss computed by the caller failed). */
  void dropGraph();
  bool holdsGraph() const;
  LossGradients gradients(FloatView x, LabelView labels, int64_t size, bool training, double smoothing, double temperature);
  /** H·v of the cross-entropy by double backpropagation; v in parameter order, missing entries skipped. */
  std::vector<Floats> hessianVector(FloatView x, LabelView labels, int64_t size, bool training, double smoothing,
                                    double temperature, const std::vector<FloatView>& v);
  void applyGradients(const std::vector<FloatView>& grads, double lr);
  std::vector<Floats> readWeights() const;
  /** indices in weightInfo order. */
  void writeWeights(const std::vector<int64_t>& indices, const std::vector<FloatView>& data);
  /** SGD momentum buffers in parameter order (tfjs layout); empty where no step made one yet. */
  std::vector<Floats> readMomentum() const;
  /** One entry per parameter; an empty one clears that buffer (as before a first step). All checked before any is set. */
  void writeMomentum(const std::vector<FloatView>& data);
  void dispose();
  bool disposed() const;
  /** How the net holds activations and kernels: "nchw", "channels-last", or "channels-last-padded" (some channels padded). */
  std::string memoryFormat() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Impl& live() const;
};

}  // namespace prunespace
