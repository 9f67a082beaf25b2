#!/usr/bin/env python3
"""PyTorch reference for bench/bench_steps.cpp (issue 7). Optional: the project never needs it.

The same configs, float32, one step = forward + backward + Adam update + zero_grad (set_to_none,
as nn::Optimizer::zero_grad drops gradients), median over --steps timed steps after --warmup:

  transformer_layer  nn.TransformerEncoderLayer(128, 4, 512, dropout=0, batch_first=True), post-LN,
                     input [32, 128, 128], loss = mean(out^2)
  tanh_rnn           nn.RNN(64, 128), input [32, 100, 64], loss = mean(h_last^2)
  lstm               nn.LSTM(64, 128), the same
  bahdanau_seq2seq   GRU encoder (hidden 128) over 30 source tokens, a 30-step GRUCell decoder with
                     additive attention (layout of nn::Seq2Seq), vocab 32, embedding 64, batch 32, CE
  sdpa               softmax(q k^T / sqrt(d)) v forward + backward only, q, k, v [32, 4, 256, 32]
                     (PyTorch 1.13 has no fused F.scaled_dot_product_attention; composed, as ours)
  matmul             torch.mm 1024 x 1024 by 1024 x 1024, no grad; GFLOP/s (the sgemm rate of MFU)
  char_gpt           lesson 14's nanogpt-cpu GPT (4 layers, 4 heads, d 128, block 64, vocab 65,
                     untied head), ids [12, 64], cross-entropy, AdamW lr 1e-4, weight decay 0
  gpt2_small         GPT-2 124M (12 layers, 12 heads, d 768, vocab 50,304, 1,024 positions, tied
                     head, GELU tanh, pre-LN, causal), ids [4, 64], the same loss and AdamW
                     (nn.TransformerEncoderLayer(norm_first=True) blocks: nn::GPT's layout)

Each config runs in its own process; memory = peak RSS (getrusage) minus the RSS right after
`import torch` (the working set), to hold against bench_steps' working_set_MB.

MFU (model FLOPs utilisation), side by side or with --ours: bench_steps.cpp's model FLOPs per
step (its header gives the formula; the same model on both sides) over each side's median step,
as a share of that side's matmul GFLOP/s in the same run.

Threads: OMP_WAIT_POLICY=PASSIVE is set before torch is imported (or OpenMP's spinning threads
fight OpenBLAS's on 2 cores), torch.set_num_threads(2), OPENBLAS_NUM_THREADS=2 (unless set).

Usage (Debian's python3-torch lives in /usr/bin/python3; this script re-runs itself there when
the python3 it was started with has no torch):
  bench/torch_reference.py                            # torch alone: table (+ --out FILE.json)
  bench/torch_reference.py --ours runs/bench/steps.json         # + ratio table ours/torch
  bench/torch_reference.py --side-by-side build/bench/bench_steps [--rounds 2]
      # alternates per config: ours (one process), torch (one process), ...; then the ratios
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # must precede `import torch`
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

CONFIGS = ["transformer_layer", "tanh_rnn", "lstm", "bahdanau_seq2seq", "sdpa", "matmul", "char_gpt", "gpt2_small"]


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1024.0 * 1024.0)


# ---- one config, in this process -----------------------------------------------------------

def run_config(name, warmup, steps):
    base_rss = rss_mb()
    import resource
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    after_import = rss_mb()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    flops = 0.0

    def trained(model, loss_fn, opt=None):
        opt = opt or torch.optim.Adam(model.parameters(), lr=1e-3)

        def step():
            loss = loss_fn()
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        return step

    if name == "transformer_layer":
        layer = nn.TransformerEncoderLayer(128, 4, 512, dropout=0.0, batch_first=True, norm_first=False)
        x = torch.randn(32, 128, 128)

        def loss_fn():
            out = layer(x)
            return (out * out).mean()
        step = trained(layer, loss_fn)
    elif name in ("tanh_rnn", "lstm"):
        rnn = nn.RNN(64, 128, batch_first=True) if name == "tanh_rnn" else nn.LSTM(64, 128, batch_first=True)
        x = torch.randn(32, 100, 64)

        def loss_fn():
            _, last = rnn(x)
            h = (last if name == "tanh_rnn" else last[0])[-1]
            return (h * h).mean()
        step = trained(rnn, loss_fn)
    elif name == "bahdanau_seq2seq":
        B, S, T, V, E, H = 32, 30, 30, 32, 64, 128

        class Seq2Seq(nn.Module):  # nn::Seq2Seq's layout (attention = true)
            def __init__(self):
                super().__init__()
                self.src_embed = nn.Embedding(V, E)
                self.tgt_embed = nn.Embedding(V, E)
                self.encoder = nn.GRU(E, H, batch_first=True)
                self.decoder = nn.GRUCell(E + H, H)
                self.query_proj = nn.Linear(H, H, bias=False)
                self.key_proj = nn.Linear(H, H)
                self.v = nn.Parameter(torch.empty(H).uniform_(-H ** -0.5, H ** -0.5))
                self.out = nn.Linear(2 * H, V)

            def forward(self, src, tgt_in):
                states, h_n = self.encoder(self.src_embed(src))  # [B, S, H]
                h = h_n[0]
                keys = self.key_proj(states)                      # [B, S, H]
                emb = self.tgt_embed(tgt_in)                      # [B, T, E]
                logits = []
                for t in range(tgt_in.shape[1]):
                    e = torch.tanh(self.query_proj(h).unsqueeze(1) + keys)
                    w = torch.softmax(torch.matmul(e, self.v.unsqueeze(1)).squeeze(-1), -1)  # [B, S]
                    ctx = torch.matmul(w.unsqueeze(1), states).squeeze(1)                   # [B, H]
                    h = self.decoder(torch.cat([emb[:, t], ctx], -1), h)
                    logits.append(self.out(torch.cat([h, ctx], -1)))
                return torch.stack(logits, 1)                     # [B, T, V]

        model = Seq2Seq()
        src = torch.randint(0, V, (B, S))
        tgt_in = torch.randint(0, V, (B, T))
        tgt_out = torch.randint(0, V, (B, T))

        def loss_fn():
            return F.cross_entropy(model(src, tgt_in).reshape(-1, V), tgt_out.reshape(-1))
        step = trained(model, loss_fn)
    elif name == "sdpa":
        q, k, v = (torch.randn(32, 4, 256, 32, requires_grad=True) for _ in range(3))
        scale = 32 ** -0.5

        def step():
            w = torch.softmax(torch.matmul(q * scale, k.transpose(-2, -1)), -1)
            torch.matmul(w, v).sum().backward()
            q.grad = k.grad = v.grad = None
    elif name in ("char_gpt", "gpt2_small"):
        # nn::GPT's layout: token + learned position embeddings, pre-LN encoder layers with a causal
        # mask and GELU (tanh), a final LayerNorm, the head (tied to the token embedding for GPT-2).
        V, block, D, H, L, tie, B, T = ((65, 64, 128, 4, 4, False, 12, 64) if name == "char_gpt"
                                        else (50304, 1024, 768, 12, 12, True, 4, 64))

        class GPT(nn.Module):
            def __init__(self):
                super().__init__()
                self.tok_emb = nn.Embedding(V, D)
                self.pos_emb = nn.Embedding(block, D)
                gelu = lambda x: F.gelu(x, approximate="tanh")
                self.blocks = nn.ModuleList(
                    nn.TransformerEncoderLayer(D, H, 4 * D, dropout=0.0, activation=gelu, batch_first=True, norm_first=True)
                    for _ in range(L))
                self.norm = nn.LayerNorm(D)
                self.lm_head = nn.Linear(D, V, bias=not tie)
                if tie:
                    self.lm_head.weight = self.tok_emb.weight

            def forward(self, ids):
                t = ids.shape[1]
                x = self.tok_emb(ids) + self.pos_emb(torch.arange(t))
                mask = torch.triu(torch.full((t, t), float("-inf")), 1)
                for block_ in self.blocks:
                    x = block_(x, src_mask=mask)
                return self.lm_head(self.norm(x))

        model = GPT()
        ids = torch.randint(0, V, (B, T))
        targets = torch.randint(0, V, (B * T,))

        def loss_fn():
            return F.cross_entropy(model(ids).reshape(-1, V), targets)
        step = trained(model, loss_fn, torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8,
                                                         weight_decay=0.0))
    elif name == "matmul":
        n = 1024
        a, b = torch.randn(n, n), torch.randn(n, n)
        flops = 2.0 * n ** 3

        def step():
            with torch.no_grad():
                torch.mm(a, b)
    else:
        raise SystemExit(f"unknown config {name}")

    for _ in range(warmup):
        step()
    ms = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        ms.append((time.perf_counter() - t0) * 1e3)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    med = statistics.median(ms)
    result = {
        "name": name, "ms_per_step": med, "mean_ms": statistics.mean(ms), "min_ms": min(ms), "max_ms": max(ms),
        "steps": len(ms), "peak_rss_MB": peak, "rss_before_import_MB": base_rss, "rss_after_import_MB": after_import,
        "working_set_MB": peak - after_import, "torch": torch.__version__, "threads": torch.get_num_threads(),
    }
    if flops:
        result["GFLOP/s"] = flops / (med / 1e3) / 1e9
    return result


# ---- drivers -------------------------------------------------------------------------------

def torch_in_child(name, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--config", name, "--warmup", str(args.warmup),
           "--steps", str(args.steps)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        return None
    return json.loads(p.stdout.strip().splitlines()[-1])


def ours_in_child(exe, name, args):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "ours.json")
        cmd = [exe, f"--benchmark_filter=^{name}/", f"--benchmark_out={out}", "--benchmark_out_format=json",
               f"--steps={args.steps}", f"--warmup={args.warmup}", "--child"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0 or not os.path.exists(out):
            sys.stderr.write(p.stdout + p.stderr)
            return None
        with open(out) as f:
            runs = read_ours(json.load(f))
    return runs.get(name)


def read_ours(doc):
    """bench_steps JSON -> {config: counters}; names cleaned ("tanh_rnn/iterations:1/..." -> "tanh_rnn")."""
    runs = {}
    for b in doc.get("benchmarks", []):
        if b.get("error_occurred"):
            continue
        name = b.get("run_name", b.get("name", "")).split("/")[0]
        runs[name] = b
    return runs


def load():
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "?"


def print_torch(results):
    print(f"\n{'config':<18} {'torch ms':>10} {'mean ms':>9} {'min ms':>9} {'max ms':>9} {'steps':>6} "
          f"{'peak MB':>9} {'after import':>13} {'working MB':>11}")
    for r in results:
        line = (f"{r['name']:<18} {r['ms_per_step']:>10.2f} {r['mean_ms']:>9.2f} {r['min_ms']:>9.2f} {r['max_ms']:>9.2f} "
                f"{r['steps']:>6} {r['peak_rss_MB']:>9.1f} {r['rss_after_import_MB']:>13.1f} {r['working_set_MB']:>11.1f}")
        if "GFLOP/s" in r:
            line += f"   {r['GFLOP/s']:.1f} GFLOP/s"
        print(line)


def print_ratios(ours, torch_results, rounds=None):
    print(f"\n{'config':<18} {'ours ms':>10} {'torch ms':>10} {'ours/torch':>11}   "
          f"{'ours MB':>8} {'torch MB':>9} {'ours/torch':>11}   (MB: working set = peak RSS - baseline)")
    for name in CONFIGS:
        t = torch_results.get(name)
        o = ours.get(name)
        if not t or not o:
            continue
        om, tm = o["ms_per_step"], t["ms_per_step"]
        ow, tw = o.get("working_set_MB", float("nan")), t["working_set_MB"]
        line = (f"{name:<18} {om:>10.2f} {tm:>10.2f} {om / tm:>10.2f}x   {ow:>8.1f} {tw:>9.1f} "
                f"{(ow / tw if tw > 0 else float('nan')):>10.2f}x")
        if name == "matmul" and "GFLOP/s" in o and "GFLOP/s" in t:
            line += f"   sgemm GFLOP/s {o['GFLOP/s']:.1f} vs {t['GFLOP/s']:.1f}"
        elif "model_GFLOP" in o:
            # Model FLOPs utilisation: bench_steps.cpp's count of the step's FLOPs (the same model for
            # both) over each side's step time, as a share of each side's own sgemm rate (matmul).
            line += f"   model GFLOP/s {o['model_GFLOP'] / om * 1e3:.1f} vs {o['model_GFLOP'] / tm * 1e3:.1f}"
            om_ = ours.get("matmul", {}).get("GFLOP/s")
            tm_ = torch_results.get("matmul", {}).get("GFLOP/s")
            if om_ and tm_:
                line += f", MFU {100 * o['model_GFLOP'] / om * 1e3 / om_:.0f}% vs {100 * o['model_GFLOP'] / tm * 1e3 / tm_:.0f}%"
        if rounds and name in rounds:
            line += "   per round: " + ", ".join(f"{r:.2f}x" for r in rounds[name])
        print(line)
    print("target: ours/torch <= 1.0x per config (goal 0.7x); memory ours <= torch's working set")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="run one config in this process and print its JSON (internal)")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--ours", help="bench_steps JSON (runs/bench/steps.json): print ours/torch")
    ap.add_argument("--side-by-side", metavar="BENCH_STEPS", help="alternate ours and torch per config")
    ap.add_argument("--rounds", type=int, default=1, help="--side-by-side: repeat the alternation; medians")
    ap.add_argument("--out", help="write the torch (and, side by side, ours) results as JSON")
    args = ap.parse_args()

    if args.config:
        print(json.dumps(run_config(args.config, args.warmup, args.steps)))
        return 0

    import importlib.util
    if importlib.util.find_spec("torch") is None:
        if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
            probe = subprocess.run(["/usr/bin/python3", "-c", "import torch"], capture_output=True)
            if probe.returncode == 0:
                os.execv("/usr/bin/python3", ["/usr/bin/python3", os.path.abspath(__file__)] + sys.argv[1:])
        print("torch_reference: PyTorch is not installed (apt-get install python3-torch); nothing to compare")
        return 0

    names = [c for c in args.configs.split(",") if c]
    print(f"torch reference: {len(names)} configs, {args.warmup} warm-up + {args.steps} timed steps, 2 threads, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")
    print(f"load average at start: {load()}")
    sys.stdout.flush()

    torch_results, ours = {}, {}
    if args.side_by_side:
        exe = os.path.abspath(args.side_by_side)
        per_round = {n: {"ours": [], "torch": []} for n in names}
        for r in range(args.rounds):
            for n in names:
                o = ours_in_child(exe, n, args)
                t = torch_in_child(n, args)
                if o:
                    per_round[n]["ours"].append(o)
                if t:
                    per_round[n]["torch"].append(t)
                print(f"round {r + 1} {n:<18} ours {o['ms_per_step'] if o else float('nan'):9.2f} ms   "
                      f"torch {t['ms_per_step'] if t else float('nan'):9.2f} ms   load {load()}")
                sys.stdout.flush()
        ratios = {}
        for n in names:
            os_, ts = per_round[n]["ours"], per_round[n]["torch"]
            if not os_ or not ts:
                continue
            # the round whose step time is the median (its memory figures go with it)
            o = sorted(os_, key=lambda x: x["ms_per_step"])[len(os_) // 2]
            t = sorted(ts, key=lambda x: x["ms_per_step"])[len(ts) // 2]
            ours[n] = dict(o, ms_per_step=statistics.median(x["ms_per_step"] for x in os_))
            torch_results[n] = dict(t, ms_per_step=statistics.median(x["ms_per_step"] for x in ts))
            ratios[n] = [a["ms_per_step"] / b["ms_per_step"] for a, b in zip(os_, ts)]
        print_torch([torch_results[n] for n in names if n in torch_results])
        print_ratios(ours, torch_results, ratios if args.rounds > 1 else None)
    else:
        for n in names:
            t = torch_in_child(n, args)
            if t:
                torch_results[n] = t
        print_torch([torch_results[n] for n in names if n in torch_results])
        if args.ours:
            with open(args.ours) as f:
                ours = read_ours(json.load(f))
            print_ratios(ours, torch_results)
    print(f"load average at end: {load()}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"torch": torch_results, "ours": ours, "load_average_end": load()}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
