#!/usr/bin/env python3
"""A PyTorch reference for the whole DDPM UNet, at the "tiny" configuration.

Writes tests/ddpm/reference_data.h, which tests/ddpm/test_golden.c compares
against. The tests never run this script; it documents where the numbers
come from and regenerates them (PyTorch installed, e.g. python3-torch):

    python3 tests/ddpm/reference.py > tests/ddpm/reference_data.h

The network is written here from DDPM.md's description (the paper's section
3.4 and appendix B, with the parameter names of the PyTorch port of the
official checkpoints), without reference to nanodiff's code:

  temb  = dense_1(swish(dense_0(sinusoid(t))))
  h = conv_in(x); skips = [h]
  down: per level, blocks (each followed by attention where listed), then
        a stride-2 conv padded (0 before, 1 after) but at the last level;
        every block output and every downsample output is a skip
  mid:  block, attention, block
  up:   per level from the last, num_res_blocks + 1 blocks on
        concat([h, skips.pop()]), attention where listed, then nearest x2
        and a conv but at level 0
  out = conv_out(swish(norm_out(h)))

Everything runs in float64, so the recorded values are the exact answer
for these (float32-exact) parameters and inputs, up to float64 rounding;
the C side's float32 arithmetic is then the only difference the test sees.

Inputs and parameters come from one closed formula, unit(k, e): an integer
hash of (k, e) mapped to an odd multiple of 2^-24 in (-1, 1). Such values
are exact in float32, never zero, and need no random generator, so the C
test rebuilds the very same bits. Parameter k (in the order the port's
state_dict lists them, which nanodiff's nd_parameters follows), element e:
  weights (conv, dense)  unit(k, e) * sqrt(3 / fan_in), rounded to float32
  GroupNorm weights      1 + unit(k, e) / 8, rounded to float32
  biases (and GN's)      unit(k, e) / 8
No layer starts at zero (unlike the DDPM initialisation), so every
parameter gets a gradient that means something. The input is
x[e] = 2 unit(1000, e) with t = [3, 917], and the loss is
L = sum(out * W), W[e] = unit(2000, e).

Recorded: the parameters' names and shapes in order (the test checks
nanodiff's against them before it compares anything), the output (all
values) and dL/dp for every element of every parameter.
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DT = torch.float64

# The "tiny" configuration of nd_unet_config_named.
CONFIG = dict(in_channels=1, out_channels=1, resolution=8, ch=8, ch_mult=(1, 2),
              num_res_blocks=1, attn_resolutions=(4,), groups=4)
T_STEPS = [3.0, 917.0]
BATCH = len(T_STEPS)
NUM_PARAMETERS = 44969  # what nanodiff counts for this configuration

M32 = 0xFFFFFFFF


def unit(k, e):
    """Odd multiple of 2^-24 in (-1, 1) from a 32-bit integer hash."""
    h = (((e + 1) * 2654435761) & M32) ^ (((k + 1) * 2246822519) & M32)
    h ^= h >> 15
    h = (h * 2654435761) & M32
    h ^= h >> 13
    return float(2 * (h >> 8) + 1 - (1 << 24)) / float(1 << 24)


def f32(v):
    return float(np.float32(v))


def param_value(k, e, name, shape):
    if len(shape) >= 2:
        fan_in = math.prod(shape[1:])
        return f32(unit(k, e) * math.sqrt(3.0 / fan_in))
    if name.endswith("weight"):  # GroupNorm's scale
        return f32(1.0 + unit(k, e) / 8)
    return f32(unit(k, e) / 8)


def formula_tensor(k, shape, scale):
    n = math.prod(shape)
    return torch.tensor([scale * unit(k, e) for e in range(n)], dtype=DT).reshape(shape)


# ---- the network --------------------------------------------------------


def swish(x):
    return x * torch.sigmoid(x)


def group_norm(groups, channels):
    return nn.GroupNorm(groups, channels, eps=1e-6)


def conv3(cin, cout, stride=1, padding=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=padding)


def conv1(cin, cout):
    return nn.Conv2d(cin, cout, 1)


class ResnetBlock(nn.Module):
    def __init__(self, cin, cout, temb_ch, groups, dropout=0.0):
        super().__init__()
        self.dropout = dropout
        self.norm1 = group_norm(groups, cin)
        self.conv1 = conv3(cin, cout)
        self.temb_proj = nn.Linear(temb_ch, cout)
        self.norm2 = group_norm(groups, cout)
        self.conv2 = conv3(cout, cout)
        self.nin_shortcut = conv1(cin, cout) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(swish(self.norm1(x)))
        h = h + self.temb_proj(swish(temb))[:, :, None, None]
        h = self.conv2(F.dropout(swish(self.norm2(h)), self.dropout, self.training))
        skip = self.nin_shortcut(x) if self.nin_shortcut is not None else x
        return skip + h


class AttnBlock(nn.Module):
    def __init__(self, c, groups):
        super().__init__()
        self.norm = group_norm(groups, c)
        self.q, self.k, self.v, self.proj_out = conv1(c, c), conv1(c, c), conv1(c, c), conv1(c, c)

    def forward(self, x):
        n, c, hh, ww = x.shape
        h = self.norm(x)
        q = self.q(h).reshape(n, c, hh * ww)
        k = self.k(h).reshape(n, c, hh * ww)
        v = self.v(h).reshape(n, c, hh * ww)
        # w[n, i, j]: query position i against key position j, normalised
        # over the keys j
        w = torch.softmax(torch.einsum("nci,ncj->nij", q, k) / math.sqrt(c), dim=2)
        o = torch.einsum("ncj,nij->nci", v, w).reshape(n, c, hh, ww)
        return x + self.proj_out(o)


class Downsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = conv3(c, c, stride=2, padding=0)

    def forward(self, x):
        # TensorFlow's "SAME" for stride 2 on an even size: 0 before, 1 after
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = conv3(c, c)

    def forward(self, x):
        return self.conv(x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3))


class TembDense(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.dense = nn.ModuleList([nn.Linear(ch, 4 * ch), nn.Linear(4 * ch, 4 * ch)])


class Level(nn.Module):
    pass


class Mid(nn.Module):
    pass


def timestep_embedding(t, dim):
    """sin and cos of t f_k, f_k = exp(-k ln(10000) / (half - 1)). The
    frequencies and the products t f_k are rounded to float32, as the
    reference implementation computes them (and as nanodiff does); the
    sines and cosines themselves are taken in float64."""
    half = dim // 2
    step = np.float32(math.log(10000.0) / (half - 1))
    emb = torch.zeros(len(t), dim, dtype=DT)
    for n, tn in enumerate(t):
        for k in range(half):
            f = np.float32(math.exp(float(np.float32(-np.float32(k) * step))))
            arg = float(np.float32(np.float32(tn) * f))
            emb[n, k] = math.sin(arg)
            emb[n, half + k] = math.cos(arg)
    return emb


class UNet(nn.Module):
    def __init__(self, c):
        super().__init__()
        ch, g, levels = c["ch"], c["groups"], len(c["ch_mult"])
        p = c.get("dropout", 0.0)
        self.c = c
        self.temb = TembDense(ch)
        self.conv_in = conv3(c["in_channels"], ch)
        skip_ch, cur, res = [ch], ch, c["resolution"]
        self.down = nn.ModuleList()
        for lvl in range(levels):
            node = Level()
            node.block, node.attn = nn.ModuleList(), nn.ModuleList()
            out = ch * c["ch_mult"][lvl]
            for _ in range(c["num_res_blocks"]):
                node.block.append(ResnetBlock(cur, out, 4 * ch, g, p))
                cur = out
                if res in c["attn_resolutions"]:
                    node.attn.append(AttnBlock(cur, g))
                skip_ch.append(cur)
            if lvl != levels - 1:
                node.downsample = Downsample(cur)
                skip_ch.append(cur)
                res //= 2
            self.down.append(node)
        self.mid = Mid()
        self.mid.block_1 = ResnetBlock(cur, cur, 4 * ch, g, p)
        self.mid.attn_1 = AttnBlock(cur, g)
        self.mid.block_2 = ResnetBlock(cur, cur, 4 * ch, g, p)
        ups = [None] * levels
        for lvl in reversed(range(levels)):
            node = Level()
            node.block, node.attn = nn.ModuleList(), nn.ModuleList()
            out = ch * c["ch_mult"][lvl]
            for _ in range(c["num_res_blocks"] + 1):
                node.block.append(ResnetBlock(cur + skip_ch.pop(), out, 4 * ch, g, p))
                cur = out
                if res in c["attn_resolutions"]:
                    node.attn.append(AttnBlock(cur, g))
            if lvl != 0:
                node.upsample = Upsample(cur)
                res *= 2
            ups[lvl] = node
        # indexed by level, so up.0 is the full resolution, as in the port
        self.up = nn.ModuleList(ups)
        self.norm_out = group_norm(g, cur)
        self.conv_out = conv3(cur, c["out_channels"])

    def forward(self, x, t):
        c, levels = self.c, len(self.c["ch_mult"])
        temb = timestep_embedding(t, c["ch"])
        temb = self.temb.dense[1](swish(self.temb.dense[0](temb)))
        hs = [self.conv_in(x)]
        h = hs[-1]
        for lvl in range(levels):
            node = self.down[lvl]
            for j in range(c["num_res_blocks"]):
                h = node.block[j](h, temb)
                if len(node.attn):
                    h = node.attn[j](h)
                hs.append(h)
            if lvl != levels - 1:
                h = node.downsample(h)
                hs.append(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h, temb)), temb)
        for lvl in reversed(range(levels)):
            node = self.up[lvl]
            for j in range(c["num_res_blocks"] + 1):
                h = node.block[j](torch.cat([h, hs.pop()], dim=1), temb)
                if len(node.attn):
                    h = node.attn[j](h)
            if lvl != 0:
                h = node.upsample(h)
        assert not hs
        return self.conv_out(swish(self.norm_out(h)))


def main():
    # ---- the run ------------------------------------------------------------

    model = UNet(CONFIG).to(DT)
    params = list(model.named_parameters())
    assert sum(p.numel() for _, p in params) == NUM_PARAMETERS
    with torch.no_grad():
        for k, (name, p) in enumerate(params):
            shape = tuple(p.shape)
            vals = [param_value(k, e, name, shape) for e in range(p.numel())]
            p.copy_(torch.tensor(vals, dtype=DT).reshape(shape))

    res = CONFIG["resolution"]
    x = formula_tensor(1000, (BATCH, CONFIG["in_channels"], res, res), 2.0)
    W = formula_tensor(2000, (BATCH, CONFIG["out_channels"], res, res), 1.0)
    out = model(x, T_STEPS)
    loss = (out * W).sum()
    loss.backward()


    # ---- the header ---------------------------------------------------------

    def lit(v):
        # 9 significant digits: 1e-9 relative, far below the test's tolerance;
        # the arrays are double, so no float32 rounding is added here
        s = f"{v:.9g}"
        return s if any(ch in s for ch in ".en") else s + ".0"


    def emit_array(lines, name, values, per_line=8):
        lines.append(f"static const double {name}[{len(values)}] = {{")
        for i in range(0, len(values), per_line):
            lines.append("    " + ",".join(lit(v) for v in values[i:i + per_line]) + ",")
        lines.append("};")


    lines = ["/* Generated by tests/ddpm/reference.py with PyTorch " +
             torch.__version__.split("a")[0] + "; do not edit. */",
             "#ifndef NANODIFF_TESTS_DDPM_REFERENCE_DATA_H",
             "#define NANODIFF_TESTS_DDPM_REFERENCE_DATA_H",
             "",
             "#include <stdint.h>",
             "",
             "/* The tiny UNet's parameters in state_dict order: name and shape. */",
             "typedef struct ref_param {",
             "    const char *name;",
             "    int ndim;",
             "    int64_t shape[4];",
             "} ref_param;",
             f"#define REF_NUM_PARAMS {len(params)}",
             f"#define REF_NUM_ELEMENTS {NUM_PARAMETERS}",
             "static const ref_param ref_params[REF_NUM_PARAMS] = {"]
    for name, p in params:
        dims = list(p.shape) + [0] * (4 - p.dim())
        lines.append(f'    {{"{name}", {p.dim()}, {{{", ".join(str(d) for d in dims)}}}}},')
    lines.append("};")
    lines.append("")
    lines.append("/* sum of every parameter value, in float64 and in order: the fill agrees */")
    lines.append(f"static const double ref_param_sum = {sum(p.sum().item() for _, p in params)!r};")
    lines.append(f"static const double ref_param_abs_sum = "
                 f"{sum(p.abs().sum().item() for _, p in params)!r};")
    lines.append("")
    lines.append(f"/* out [{', '.join(str(d) for d in out.shape)}] for t = "
                 f"[{', '.join(str(int(t)) for t in T_STEPS)}] */")
    emit_array(lines, "ref_out", out.detach().reshape(-1).tolist())
    lines.append("")
    lines.append("/* dL/dp, every parameter flattened and concatenated in ref_params order */")
    emit_array(lines, "ref_grad", torch.cat([p.grad.reshape(-1) for _, p in params]).tolist())
    lines.append("")
    lines.append("#endif")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
