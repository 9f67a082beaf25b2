// Resuming training exactly: the optimizer's state under PyTorch's names, the whole training
// state in one file, and the test that matters: a run killed with SIGKILL right after its save
// at step N, resumed in another process, ends bit-identical to a run that went straight through,
// in every logged loss and every parameter. Plus every refusal (another config, optimizer, model
// shape, generator), each with nothing changed.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "common/expect_error.hpp"
#include "common/tmp_dir.hpp"
#include "ag/ag.hpp"
#include "nn/checkpoint.hpp"
#include "nn/layers.hpp"
#include "nn/module.hpp"
#include "nn/optim.hpp"


namespace {

// x [B, 4] -> linear -> relu -> dropout -> linear -> [B, 1]: parameters, and a generator
// (the dropout's) that a resumed run must continue from where it was.
class Net : public nn::Module {
 public:
  Net(std::size_t hidden, std::uint64_t seed) {
    ag::Generator gen(seed);
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(4, hidden, gen));
    drop = register_module("drop", std::make_shared<nn::Dropout>(0.25, seed + 1));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(hidden, 1, gen));
  }
  ag::Tensor forward(const ag::Tensor& x) { return (*fc2)((*drop)(ag::relu((*fc1)(x)))); }
  std::string describe() const override { return "Net"; }
  std::shared_ptr<nn::Linear> fc1, fc2;
  std::shared_ptr<nn::Dropout> drop;
};

using MakeOptimizer = std::function<std::unique_ptr<nn::Optimizer>(std::vector<ag::Tensor>)>;

std::unique_ptr<nn::Optimizer> adamw(std::vector<ag::Tensor> p) {
  return std::make_unique<nn::AdamW>(std::move(p), nn::AdamWOptions{.lr = 1e-2, .weight_decay = 0.05});
}

// One training run: its model, optimizer, schedule and data stream, stepped one step at a time.
struct Run {
  Net net;
  std::unique_ptr<nn::Optimizer> opt;
  nn::CosineSchedule schedule{1e-2, 40, 4, 1e-3};
  ag::Generator data;
  std::vector<double> losses;

  Run(std::uint64_t seed, const MakeOptimizer& make = adamw, std::size_t hidden = 8)
      : net(hidden, seed), opt(make(net.parameters())), data(seed + 2) {}

  void step() {
    // a batch of 16: y = sum of x, plus noise, both drawn from the data stream
    ag::Tensor x = ag::randn({16, 4}, data), noise = ag::randn({16, 1}, data);
    ag::Tensor y = ag::sum(x, {1}, true) + 0.1 * noise;
    opt->zero_grad();
    ag::Tensor loss = ag::mse_loss(net.forward(x), y);
    loss.backward();
    nn::clip_grad_norm(net.parameters(), 1.0);
    opt->set_lr(schedule.lr(opt->steps() + 1));
    opt->step();
    losses.push_back(loss.item());
  }
  nn::TrainingState state() {
    nn::TrainingState s{.step = std::int64_t(losses.size()), .generators = {{"data", &data}}, .config = {{"hidden", "8"}}, .extra = {}};
    return s;
  }
};

std::vector<double> values(const nn::Module& m) {
  std::vector<double> out;
  for (const auto& p : m.parameters())
    for (double v : p.to_vector()) out.push_back(v);
  return out;
}

// Bit-for-bit equality of two vectors of doubles (memcmp: NaN == NaN, 0 != -0).
bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(resume)

BOOST_AUTO_TEST_CASE(optimizer_state_dict_uses_pytorchs_names_and_continues_exactly) {
  const std::vector<std::pair<std::string, MakeOptimizer>> kinds = {
      {"SGD", [](auto p) { return std::make_unique<nn::SGD>(std::move(p), nn::SGDOptions{.lr = 0.05, .momentum = 0.9, .nesterov = true}); }},
      {"Adam", [](auto p) { return std::make_unique<nn::Adam>(std::move(p), nn::AdamOptions{.lr = 1e-2, .weight_decay = 0.01}); }},
      {"AdamW", adamw}};
  for (const auto& [kind, make] : kinds) {
    BOOST_TEST_CONTEXT(kind) {
      Run a(7, make), b(7, make);
      for (int k = 0; k < 5; ++k) a.step();
      const auto sd = a.opt->state_dict();
      // names: state.<i>.<key>, one entry per key for each of the 4 parameters
      std::vector<std::string> names;
      for (const auto& [n, t] : sd) names.push_back(n);
      if (kind == "SGD") {
        BOOST_TEST(names.size() == 4u);
        BOOST_TEST(names.front() == "state.0.momentum_buffer");
      } else {
        BOOST_TEST(names.size() == 12u);
        BOOST_TEST(names[0] == "state.0.exp_avg");
        BOOST_TEST(names[1] == "state.0.exp_avg_sq");
        BOOST_TEST(names[2] == "state.0.step");
        BOOST_TEST(sd[2].second.item() == 5.0);
        BOOST_TEST(sd[2].second.dim() == 0u);
      }
      // b: the same parameters and data position, then a's optimizer state
      for (std::size_t i = 0; i < a.net.parameters().size(); ++i) b.net.parameters()[i].array() = a.net.parameters()[i].array();
      b.data = a.data;
      b.opt->load_state_dict(sd);
      b.opt->set_steps(a.opt->steps());
      a.net.eval(), b.net.eval();  // no dropout: only the optimizer's state decides
      for (int k = 0; k < 3; ++k) a.step(), b.step();
      BOOST_TEST(same_bits(values(a.net), values(b.net)));
      // the state was copied, not shared: a's further steps did not touch sd
      BOOST_TEST(!same_bits(sd[0].second.to_vector(), a.opt->state_dict()[0].second.to_vector()));
    }
  }
}

BOOST_AUTO_TEST_CASE(optimizer_load_state_dict_errors_change_nothing) {
  Run a(3);
  for (int k = 0; k < 2; ++k) a.step();
  const auto before = a.opt->state_dict();
  auto bad = before;
  bad.emplace_back("state.9.exp_avg", before[0].second);
  bad.emplace_back("state.1.momentum_buffer", before[0].second);
  bad.emplace_back("exp_avg", before[0].second);
  bad.emplace_back("x", before[0].second);  // shorter than the "state." prefix
  bad[0].second = ag::zeros({3, 3});  // parameter 0 is [8, 4]
  expect_error([&] { a.opt->load_state_dict(bad); },
               {"AdamW.load_state_dict", "'state.9.exp_avg' names parameter 9, but the optimizer has 4",
                "keeps no 'momentum_buffer' (its keys: exp_avg, exp_avg_sq, step)", "'exp_avg' is not named state.<parameter index>.<key>", "'x' is not named state.<parameter index>.<key>",
                "'state.0.exp_avg' is float32 [3,3], but parameter 0 is float32 [8,4]"});
  const auto after = a.opt->state_dict();
  BOOST_REQUIRE(after.size() == before.size());
  for (std::size_t i = 0; i < after.size(); ++i) BOOST_TEST(same_bits(after[i].second.to_vector(), before[i].second.to_vector()));
  // an empty state: every parameter starts fresh (Adam's step from 0)
  a.opt->load_state_dict({});
  BOOST_TEST(a.opt->state_dict().empty());
}

BOOST_AUTO_TEST_CASE(training_state_round_trip_continues_bit_identical) {
  TmpDir dir("resume");
  Run straight(11);
  for (int k = 0; k < 20; ++k) straight.step();

  Run first(11);
  for (int k = 0; k < 10; ++k) first.step();
  nn::save_training_state(dir.file("state.safetensors"), first.net, *first.opt, first.state());

  Run resumed(99);  // other initial weights, dropout and data: everything must come from the file
  nn::TrainingState s = resumed.state();
  nn::load_training_state(dir.file("state.safetensors"), resumed.net, *resumed.opt, s);
  BOOST_TEST(s.step == 10);
  BOOST_TEST(resumed.opt->steps() == 10);
  resumed.losses = first.losses;
  for (int k = 0; k < 10; ++k) resumed.step();
  BOOST_TEST(same_bits(resumed.losses, straight.losses));
  BOOST_TEST(same_bits(values(resumed.net), values(straight.net)));

  // what the file holds, by name
  nn::Metadata meta;
  const auto tensors = nn::load_safetensors(dir.file("state.safetensors"), &meta);
  BOOST_TEST(tensors.front().first == "model.fc1.weight");
  BOOST_TEST(meta.at("format") == "attnlab.training_state.v1");
  BOOST_TEST(meta.at("optimizer") == "AdamW");
  BOOST_TEST(meta.at("optimizer.betas") == "0.9,0.999");
  BOOST_TEST(meta.at("optimizer.weight_decay") == "0.05");
  BOOST_TEST(meta.count("rng.model.drop.generator") == 1u);
  BOOST_TEST(meta.count("rng.data") == 1u);
  BOOST_TEST(meta.at("config.hidden") == "8");
  bool has_exp_avg = false;
  for (const auto& [n, t] : tensors) has_exp_avg = has_exp_avg || n == "optimizer.state.0.exp_avg";
  BOOST_TEST(has_exp_avg);
}

BOOST_AUTO_TEST_CASE(killed_after_its_save_and_resumed_in_another_process_is_bit_identical) {
  TmpDir dir("resume");
  const std::string ckpt = dir.file("state.safetensors"), log = dir.file("losses.bin");
  const int N = 12;
  Run straight(5);
  for (int k = 0; k < 2 * N; ++k) straight.step();

  // The child trains N steps, logging each loss as it goes, saves, and is killed by SIGKILL:
  // no destructor, no flush, no atexit handler runs after the save.
  const pid_t child = ::fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    Run run(5);
    std::ofstream out(log, std::ios::binary);
    for (int k = 0; k < N; ++k) {
      run.step();
      out.write(reinterpret_cast<const char*>(&run.losses.back()), sizeof(double));
      out.flush();
    }
    nn::save_training_state(ckpt, run.net, *run.opt, run.state());
    ::raise(SIGKILL);
    ::_exit(3);  // not reached
  }
  int status = 0;
  BOOST_REQUIRE(::waitpid(child, &status, 0) == child);
  BOOST_TEST(WIFSIGNALED(status));
  BOOST_TEST(WTERMSIG(status) == SIGKILL);

  // This process resumes from the file and finishes.
  Run resumed(1234);
  nn::TrainingState s = resumed.state();
  nn::load_training_state(ckpt, resumed.net, *resumed.opt, s);
  BOOST_REQUIRE(s.step == N);
  std::ifstream in(log, std::ios::binary);
  double v;
  while (in.read(reinterpret_cast<char*>(&v), sizeof v)) resumed.losses.push_back(v);
  BOOST_REQUIRE(resumed.losses.size() == std::size_t(N));
  for (int k = N; k < 2 * N; ++k) resumed.step();
  BOOST_TEST(same_bits(resumed.losses, straight.losses), "every logged loss equal, bit for bit");
  BOOST_TEST(same_bits(values(resumed.net), values(straight.net)), "every parameter equal, bit for bit");
}

BOOST_AUTO_TEST_CASE(a_run_with_other_options_is_refused_and_nothing_changes) {
  TmpDir dir("resume");
  const std::string ckpt = dir.file("state.safetensors");
  Run saved(1);
  for (int k = 0; k < 3; ++k) saved.step();
  nn::save_training_state(ckpt, saved.net, *saved.opt, saved.state());

  auto unchanged = [](Run& r, const std::vector<double>& params, ag::Generator data) {
    BOOST_TEST(same_bits(values(r.net), params));
    BOOST_TEST(r.opt->steps() == 0);
    BOOST_TEST(r.data.engine() == data.engine());
  };
  {  // another config value and another optimizer hyperparameter: both named
    Run other(2, [](auto p) { return std::make_unique<nn::AdamW>(std::move(p), nn::AdamWOptions{.lr = 1e-2, .betas = {0.8, 0.999}, .weight_decay = 0.05}); });
    const auto params = values(other.net);
    const ag::Generator data = other.data;
    nn::TrainingState s = other.state();
    s.config["hidden"] = "16";
    s.config["task"] = "adding";
    expect_error([&] { nn::load_training_state(ckpt, other.net, *other.opt, s); },
                 {"was saved with config.hidden = 8, this run has 16", "was saved with config.task = (not set), this run has adding",
                  "was saved with optimizer.betas = 0.9,0.999, this run has 0.8,0.999"});
    unchanged(other, params, data);
  }
  {  // another optimizer
    Run other(2, [](auto p) { return std::make_unique<nn::Adam>(std::move(p), nn::AdamOptions{.lr = 1e-2, .weight_decay = 0.05}); });
    nn::TrainingState s = other.state();
    expect_error([&] { nn::load_training_state(ckpt, other.net, *other.opt, s); }, {"was saved with optimizer = AdamW, this run has Adam"});
  }
  {  // another model shape, and a generator the file does not have
    Run other(2, adamw, 6);
    const auto params = values(other.net);
    const ag::Generator data = other.data;
    nn::TrainingState s = other.state();
    ag::Generator sampler(0);
    s.generators.emplace_back("sampler", &sampler);
    expect_error([&] { nn::load_training_state(ckpt, other.net, *other.opt, s); },
                 {"has 'model.fc1.weight' of shape [8,4], the model expects [6,4]", "has no state for generator 'sampler'"});
    unchanged(other, params, data);
  }
  {  // a model checkpoint is not a training state
    nn::save(saved.net, dir.file("model.safetensors"));
    Run other(2);
    nn::TrainingState s = other.state();
    expect_error([&] { nn::load_training_state(dir.file("model.safetensors"), other.net, *other.opt, s); },
                 {"is not a training state", "nn::load"});
  }
  {  // an optimizer that does not hold the model's parameters
    Run other(2);
    auto opt = adamw({other.net.parameters().front()});
    nn::TrainingState s = other.state();
    expect_error([&] { nn::save_training_state(ckpt, other.net, *opt, s); }, {"save_training_state", "exactly the model's parameters"});
  }
}

BOOST_AUTO_TEST_SUITE_END()
