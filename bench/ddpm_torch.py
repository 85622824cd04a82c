#!/usr/bin/env python3
"""The peer of bench/ddpm: the same UNet steps in PyTorch, for comparison.

Times what build/bench/ddpm times, with PyTorch on the CPU: Algorithm 1
(forward, L_simple, backward, global-norm clipping at 1.0, Adam with lr
2e-4, EMA 0.9999) and one step of Algorithm 2 (a no-grad, eval-mode
forward and the step's arithmetic), for the `small` UNet (1x32x32, ch 32,
ch_mult 1,2,2, 2 blocks, attention at 16, 8 groups, dropout 0.1) in
float32, at batch 16 and 64, on 1 and 2 threads, in interleaved rounds;
prints the median and the best of each, one "name value unit" line per
figure as the C benches do, then the peak resident memory of a fresh
process running 20 training steps at each batch. The network is the one
tests/ddpm/reference.py defines from DDPM.md (and checks against
nanodiff), with a vectorised timestep embedding.

    python3 bench/ddpm_torch.py [--rounds N] [--quick]

Run it beside build/bench/ddpm, alternating, on a quiet machine. PyTorch
is needed here only; nanodiff never depends on it.
"""
import argparse
import importlib.util
import math
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "reference", os.path.join(HERE, "..", "tests", "ddpm", "reference.py"))
reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)

SMALL = dict(in_channels=1, out_channels=1, resolution=32, ch=32, ch_mult=(1, 2, 2),
             num_res_blocks=2, attn_resolutions=(16,), groups=8, dropout=0.1)
MACS = 417800192  # nd_unet_macs of `small`, per image forward
T = 1000


def timestep_embedding(t, dim):
    half = dim // 2
    f = torch.exp(-torch.arange(half, dtype=torch.float32) * (math.log(10000.0) / (half - 1)))
    arg = torch.as_tensor(t, dtype=torch.float32)[:, None] * f[None, :]
    return torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)


reference.timestep_embedding = timestep_embedding


def schedule():
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0)
    prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
    return dict(betas=betas, abar=abar,
                coef1=betas * prev.sqrt() / (1 - abar),
                coef2=(1 - prev) * (1 - betas).sqrt() / (1 - abar))


class Run:
    def __init__(self, batch):
        torch.manual_seed(0)
        self.s = schedule()
        self.model = reference.UNet(SMALL)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=2e-4)
        self.ema = [p.detach().clone() for p in self.model.parameters()]
        self.x0 = torch.rand(batch, 1, 32, 32) * 2 - 1
        self.batch = batch

    def extract(self, table, t):
        return table[t].float().view(-1, 1, 1, 1)

    def train_step(self):
        self.model.train()
        t = torch.randint(0, T, (self.batch,))
        eps = torch.randn_like(self.x0)
        xt = self.extract(self.s["abar"].sqrt(), t) * self.x0 + \
            self.extract((1 - self.s["abar"]).sqrt(), t) * eps
        loss = ((eps - self.model(xt, t.float())) ** 2).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        with torch.no_grad():
            for s, p in zip(self.ema, self.model.parameters()):
                s.sub_((1 - 0.9999) * (s - p))

    def sample_step(self):
        self.model.eval()
        with torch.no_grad():
            i = 500
            t = torch.full((self.batch,), i, dtype=torch.long)
            xt = self.x0
            eps = self.model(xt, t.float())
            abar = self.extract(self.s["abar"], t)
            x0 = ((xt - (1 - abar).sqrt() * eps) / abar.sqrt()).clamp(-1, 1)
            mean = self.extract(self.s["coef1"], t) * x0 + self.extract(self.s["coef2"], t) * xt
            return mean + self.extract(self.s["betas"], t).sqrt() * torch.randn_like(xt)


def rss_child(batch, threads):
    torch.set_num_threads(threads)
    run = Run(batch)
    for _ in range(20):
        run.train_step()
    print(f"{peak_rss_mib():.1f}")


def peak_rss_mib():
    """VmHWM, this process's own peak: ru_maxrss would carry over the
    peak of the parent that forked it, which exec does not reset."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--quick", action="store_true", help="one round, batch 2: a smoke test")
    ap.add_argument("--rss-only", action="store_true", help="only the peak memory figures")
    ap.add_argument("--rss-child", nargs=2, type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.rss_child:
        rss_child(*a.rss_child)
        return
    batches = [2] if a.quick else [16, 64]
    rounds = 1 if a.quick else a.rounds
    ncpu = os.cpu_count() or 1
    threads = sorted({1, min(2, ncpu)})
    print(f"# ddpm_torch: PyTorch {torch.__version__}, small UNet, float32, "
          f"{rounds} rounds; median (best) ms per step | threads {threads}")
    if a.rss_only:
        report_rss(batches, threads)
        return
    runs = {b: Run(b) for b in batches}
    times = {}
    for th in threads:  # warm-up: 2 steps of each
        torch.set_num_threads(th)
        for b in batches:
            for _ in range(2):
                runs[b].train_step()
                runs[b].sample_step()
    for _ in range(rounds):
        for b in batches:
            runs[b].train_step()  # untimed, after the change of batch
            for th in threads:
                torch.set_num_threads(th)
                for name, fn in (("train", runs[b].train_step), ("sample", runs[b].sample_step)):
                    t0 = time.perf_counter()
                    fn()
                    times.setdefault((name, b, th), []).append(time.perf_counter() - t0)
    for (name, b, th), ts in sorted(times.items()):
        med, best = statistics.median(ts), min(ts)
        flops = 2 * MACS * b * (3 if name == "train" else 1)
        print(f"torch_{name}_b{b}_t{th}_ms {1e3 * med:.1f} ms")
        print(f"torch_{name}_b{b}_t{th}_best_ms {1e3 * best:.1f} ms")
        print(f"torch_{name}_b{b}_t{th}_gflops {flops / med / 1e9:.1f} GFLOP/s")
    if not a.quick:
        report_rss(batches, threads)


def report_rss(batches, threads):
    for b in batches:
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--rss-child",
                              str(b), str(threads[-1])],
                             check=True, capture_output=True, text=True).stdout
        print(f"torch_train_rss_b{b} {float(out.strip()):.1f} MiB")


if __name__ == "__main__":
    main()
