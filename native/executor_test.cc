// The executor alone, without Node: bad plans and inputs fail as EngineError, a disposed net refuses, and batch norm
// keeps the variance of near-dead channels. Built by binding.gyp next to the addon; run by test/engine-torch-safety.test.ts.
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>

#include "executor.h"

using namespace prunespace;

namespace {

int failures = 0;

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

void check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok" : "FAIL", what.c_str());
  if (!ok) failures++;
}

// f must throw an EngineError whose message contains `part`.
void throws(const std::string& what, const std::string& part, const std::function<void()>& f) {
  try {
    f();
    check(false, what + ": no error");
  } catch (const EngineError& e) {
    std::string m = e.what();
    check(m.find(part) != std::string::npos, what + ": " + m);
  } catch (const std::exception& e) {
    check(false, what + ": not an EngineError: " + e.what());
  }
}

PlanNode node(const std::string& op, const std::string& id, std::vector<int> in, int h, int w, int c, int outC, int kernel = 1,
              bool same = false) {
  PlanNode n;
  n.op = op;
  n.id = id;
  n.in = std::move(in);
  n.inH = h;
  n.inW = w;
  n.inC = c;
  n.outC = outC;
  n.kernel = kernel;
  n.same = same;
  return n;
}

// input 4x4x2 -> conv 3x3 same (2 channels) -> bn -> relu -> gap -> linear 3 classes
std::vector<PlanNode> tinyPlan() {
  return {node("input", "input", {}, 4, 4, 2, 2), node("conv", "conv", {0}, 4, 4, 2, 2, 3, true), node("bn", "bn", {1}, 4, 4, 2, 2),
          node("relu", "relu", {2}, 4, 4, 2, 2), node("gap", "gap", {3}, 4, 4, 2, 2), node("linear", "fc", {4}, 1, 1, 2, 3)};
}

ExecutorOptions tinyOptions() {
  ExecutorOptions o;
  o.input[0] = 4;
  o.input[1] = 4;
  o.input[2] = 2;
  return o;
}

int indexOf(const Executor& e, const std::string& name) {
  auto info = e.weightInfo();
  for (size_t i = 0; i < info.size(); i++)
    if (info[i].name == name) return static_cast<int>(i);
  throw EngineError("no weight " + name);
}

}  // namespace

int main() {
  setThreads(1);
  const int batch = 8;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  Floats x(batch * 4 * 4 * 2);
  for (auto& v : x) v = normal(rng);
  std::vector<int32_t> labels = {0, 1, 2, 0, 1, 2, 0, 1};
  FloatView xs(x.data(), x.size());
  LabelView ls(labels.data(), labels.size());

  {
    Executor e(tinyPlan(), tinyOptions());
    auto r = e.trainStep(xs, ls, batch, 0.1, 0);
    check(std::isfinite(r.loss) && r.loss > 0 && r.wrong >= 0 && r.wrong <= batch, "a train step on a valid plan");
    throws("out-of-range label", "outside 0..2", [&] {
      std::vector<int32_t> bad = labels;
      bad[3] = 3;
      e.trainStep(xs, LabelView(bad.data(), bad.size()), batch, 0.1, 0);
    });
    throws("negative label", "outside 0..2", [&] {
      std::vector<int32_t> bad = labels;
      bad[0] = -1;
      e.evaluate(xs, LabelView(bad.data(), bad.size()), batch);
    });
    throws("batch of the wrong length", "expected 7x4x4x2", [&] { e.evaluate(xs, ls, 7); });
    throws("missing labels", "needs labels", [&] { e.gradients(xs, LabelView(), batch, true, 0, 1); });
    throws("unknown tap", "no such node", [&] { e.forward(xs, batch, false, {"nope"}, false); });
    throws("weight index past the end", "outside", [&] {
      float v = 0;
      e.writeWeights({99}, {FloatView(&v, 1)});
    });
    throws("weight of the wrong size", "values, expected", [&] {
      float v = 0;
      e.writeWeights({0}, {FloatView(&v, 1)});
    });
    throws("backward without a kept graph", "without a forward", [&] { e.backwardSeeds(FloatView(), {}); });
    e.forward(xs, batch, true, {}, true);
    check(e.holdsGraph(), "forward(keepGraph) keeps the graph");
    e.dropGraph();
    check(!e.holdsGraph(), "dropGraph forgets it");
    throws("too many tap seeds", "tap seeds", [&] {
      e.forward(xs, batch, true, {}, true);
      e.backwardSeeds(FloatView(), {FloatView(), FloatView()});
    });
    check(!e.holdsGraph(), "a failed backward drops the graph");
    e.dispose();
    throws("train step after dispose", "disposed", [&] { e.trainStep(xs, ls, batch, 0.1, 0); });
    throws("weight info after dispose", "disposed", [&] { e.weightInfo(); });
  }

  // Malformed plans.
  auto plan = [](std::function<void(std::vector<PlanNode>&)> edit) {
    auto p = tinyPlan();
    edit(p);
    Executor e(p, tinyOptions());
  };
  throws("an input index from the future", "not an earlier node", [&] { plan([](auto& p) { p[2].in = {4}; }); });
  throws("a negative input index", "not an earlier node", [&] { plan([](auto& p) { p[2].in = {-1}; }); });
  throws("a node reading itself", "not an earlier node", [&] { plan([](auto& p) { p[3].in = {3}; }); });
  throws("an add with one input", "expected 2", [&] { plan([](auto& p) { p[3].op = "add"; }); });
  throws("a conv without inputs", "expected 1", [&] { plan([](auto& p) { p[1].in.clear(); }); });
  throws("channels that disagree", "input is 4x4x2", [&] { plan([](auto& p) { p[2].inC = 5; }); });
  throws("a linear layer of the wrong width", "values a sample", [&] { plan([](auto& p) { p[5].inC = 7; }); });
  throws("an unknown op", "unknown node op", [&] { plan([](auto& p) { p[3].op = "softmax"; }); });
  throws("an empty plan", "no nodes", [&] { Executor e({}, tinyOptions()); });
  throws("a zero kernel", "sizes must be", [&] { plan([](auto& p) { p[1].kernel = 0; }); });
  throws("a repeated id", "repeats", [&] { plan([](auto& p) { p[3].id = "bn"; }); });
  throws("no logits at the end", "last node", [&] { plan([](auto& p) { p.resize(4); }); });
  throws("a bad device", "torch", [&] {
    auto o = tinyOptions();
    o.device = "nowhere:7";
    Executor e(tinyPlan(), o);
  });

  // Near-dead channels: channel 0's kernel is zero (variance exactly 0), channel 1's is 1e-5 (variance ~1e-9, where
  // invstd^-2 - eps in float keeps about two digits). With the running variance zeroed and momentum 0.1, one step
  // leaves 0.1 x the batch's biased variance.
  {
    Executor e(tinyPlan(), tinyOptions());
    auto w = e.readWeights();
    int k = indexOf(e, "conv/kernel"), rv = indexOf(e, "bn/moving_variance");
    Floats kernel(w[k].size());  // [3,3,2,2]: the output channel is the last axis
    for (size_t i = 0; i < kernel.size(); i++) kernel[i] = i % 2 == 0 ? 0.0f : normal(rng) * 1e-5f;
    Floats zeros(2, 0.0f);
    e.writeWeights({k, rv}, {FloatView(kernel.data(), kernel.size()), FloatView(zeros.data(), zeros.size())});
    auto conv = e.forward(xs, batch, false, {"conv"}, false).taps[0];  // NHWC
    double mean[2] = {0, 0}, var[2] = {0, 0};
    size_t n = conv.size() / 2;
    for (size_t i = 0; i < conv.size(); i++) mean[i % 2] += conv[i] / n;
    for (size_t i = 0; i < conv.size(); i++) var[i % 2] += (conv[i] - mean[i % 2]) * (conv[i] - mean[i % 2]) / n;
    e.trainStep(xs, ls, batch, 0, 0);
    auto after = e.readWeights()[rv];
    check(after[0] == 0.0f, "a dead channel's running variance is exactly 0 (got " + fmt(after[0]) + ")");
    double rel = std::fabs(after[1] - 0.1 * var[1]) / (0.1 * var[1]);
    check(var[1] > 1e-12 && var[1] < 1e-7 && rel < 1e-4,
          "a near-dead channel's running variance is 0.1 x its batch variance (" + fmt(after[1]) + " vs " +
              fmt(0.1 * var[1]) + ", relative error " + fmt(rel) + ")");
  }

  std::printf("%d failure%s\n", failures, failures == 1 ? "" : "s");
  return failures ? 1 : 0;
}
