#!/usr/bin/env python3
"""Reference outputs of the nn layers, computed with PyTorch.

Writes tests/nn/reference_data.h, which tests/nn/test_layers.c compares
against. The tests never run this script; it documents where the numbers
come from. Run it (with PyTorch installed, e.g. Debian's python3-torch) as

    python3 tests/nn/reference.py > tests/nn/reference_data.h

Every input and parameter is filled by fill(numel, seed): small multiples
of 1/16, exact in float32, so that C and Python start from the very same
values. Parameters are filled in the order nd_parameters lists them, with
seeds 1, 2, 3, ...; the input x uses seed 100 and temb seed 200.
"""
import math

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float32)


def fill(shape, seed):
    n = math.prod(shape)
    vals = [((i * 37 + seed * 11) % 23 - 11) / 16.0 for i in range(n)]
    return torch.tensor(vals, dtype=torch.float32).reshape(shape)


def params(spec):
    """spec: list of (name, shape) in nd_parameters order."""
    return {name: fill(shape, k + 1) for k, (name, shape) in enumerate(spec)}


out = []


def c_float(v):
    s = f"{v:.9g}"
    return (s if any(c in s for c in ".en") else s + ".0") + "f"


def emit(name, t):
    flat = t.detach().reshape(-1).tolist()
    out.append(f"/* {name}: shape {list(t.shape)} */")
    out.append(f"static const float {name}[{len(flat)}] = {{")
    for i in range(0, len(flat), 6):
        out.append("    " + ", ".join(c_float(v) for v in flat[i:i + 6]) + ",")
    out.append("};")


def group_norm(x, groups, p, prefix):
    return F.group_norm(x, groups, p[prefix + "weight"], p[prefix + "bias"], eps=1e-6)


# Linear 5 -> 3 on x [2, 4, 5]
p = params([("weight", (3, 5)), ("bias", (3,))])
emit("ref_linear", F.linear(fill((2, 4, 5), 100), p["weight"], p["bias"]))

# Conv2d 3 -> 4, 3x3, on x [2, 3, 6, 5], with several strides and paddings
x = fill((2, 3, 6, 5), 100)
p = params([("weight", (4, 3, 3, 3)), ("bias", (4,))])
for label, stride, pads in [("same", 1, (1, 1, 1, 1)), ("valid", 1, (0, 0, 0, 0)),
                            ("s2_tf_same", 2, (0, 1, 0, 1)), ("s2_pad1", 2, (1, 1, 1, 1)),
                            ("asym", 1, (2, 0, 1, 3))]:
    top, bottom, left, right = pads
    xp = F.pad(x, (left, right, top, bottom))
    emit(f"ref_conv_{label}", F.conv2d(xp, p["weight"], p["bias"], stride=stride))
# 5x3 kernel, stride (1, 2)
p = params([("weight", (2, 3, 5, 3)), ("bias", (2,))])
emit("ref_conv_rect", F.conv2d(F.pad(x, (1, 1, 2, 2)), p["weight"], p["bias"],
                               stride=(1, 2)))

# GroupNorm: 6 channels in 3 groups, x [2, 6, 3, 5]; gamma/beta filled
p = params([("weight", (6,)), ("bias", (6,))])
x = fill((2, 6, 3, 5), 100) * 3 + 0.5
emit("ref_group_norm", F.group_norm(x, 3, p["weight"], p["bias"], eps=1e-5))
emit("ref_group_norm_plain", F.group_norm(x, 2, None, None, eps=1e-5))


def attention(x, p, heads):
    n, c, h, w = x.shape
    d = c // heads
    hn = group_norm(x, 2, p, "norm.").reshape(n, c, h * w)

    def proj(name, t):
        return torch.einsum("oc,ncl->nol", p[name + ".weight"].reshape(c, c), t) + \
            p[name + ".bias"].reshape(1, c, 1)

    q = proj("q", hn).reshape(n, heads, d, h * w)
    k = proj("k", hn).reshape(n, heads, d, h * w)
    v = proj("v", hn).reshape(n, heads, d, h * w)
    wts = torch.softmax(torch.einsum("nhdi,nhdj->nhij", q, k) / math.sqrt(d), dim=-1)
    o = torch.einsum("nhdj,nhij->nhdi", v, wts).reshape(n, c, h * w)
    return x + proj("proj_out", o).reshape(n, c, h, w)


attn_spec = [("norm.weight", (4,)), ("norm.bias", (4,))]
for name in ["q", "k", "v", "proj_out"]:
    attn_spec += [(name + ".weight", (4, 4, 1, 1)), (name + ".bias", (4,))]
p = params(attn_spec)
x = fill((2, 4, 3, 3), 100)
emit("ref_attention", attention(x, p, 1))
emit("ref_attention_2heads", attention(x, p, 2))


def timestep_embedding(t, dim):
    half = dim // 2
    f = torch.exp(torch.arange(half, dtype=torch.float32) * -(math.log(10000) / (half - 1)))
    arg = t.float()[:, None] * f[None, :]
    emb = torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


t = torch.tensor([0.0, 1.0, 17.0, 500.0, 999.0])
emit("ref_temb_16", timestep_embedding(t, 16))
emit("ref_temb_7", timestep_embedding(t, 7))


def resblock(x, temb, p, shortcut):
    h = F.conv2d(F.silu(group_norm(x, 2, p, "norm1.")), p["conv1.weight"],
                 p["conv1.bias"], padding=1)
    h = h + F.linear(F.silu(temb), p["temb_proj.weight"], p["temb_proj.bias"])[:, :, None, None]
    h = F.conv2d(F.silu(group_norm(h, 2, p, "norm2.")), p["conv2.weight"],
                 p["conv2.bias"], padding=1)
    skip = F.conv2d(x, p["nin_shortcut.weight"], p["nin_shortcut.bias"]) if shortcut else x
    return skip + h


def resblock_spec(cin, cout, tdim):
    spec = [("norm1.weight", (cin,)), ("norm1.bias", (cin,)),
            ("conv1.weight", (cout, cin, 3, 3)), ("conv1.bias", (cout,)),
            ("temb_proj.weight", (cout, tdim)), ("temb_proj.bias", (cout,)),
            ("norm2.weight", (cout,)), ("norm2.bias", (cout,)),
            ("conv2.weight", (cout, cout, 3, 3)), ("conv2.bias", (cout,))]
    if cin != cout:
        spec += [("nin_shortcut.weight", (cout, cin, 1, 1)), ("nin_shortcut.bias", (cout,))]
    return spec


x, temb = fill((2, 4, 4, 3), 100), fill((2, 8), 200)
emit("ref_resblock_4_6", resblock(x, temb, params(resblock_spec(4, 6, 8)), True))
emit("ref_resblock_4_4", resblock(x, temb, params(resblock_spec(4, 4, 8)), False))

# Upsample (nearest x2, conv 3x3 same) and Downsample (conv 3x3, stride 2,
# TensorFlow SAME: pad 0 before, 1 after) on x [1, 2, 4, 4]
x = fill((1, 2, 4, 4), 100)
p = params([("conv.weight", (2, 2, 3, 3)), ("conv.bias", (2,))])
emit("ref_upsample", F.conv2d(F.interpolate(x, scale_factor=2.0, mode="nearest"),
                              p["conv.weight"], p["conv.bias"], padding=1))
emit("ref_downsample", F.conv2d(F.pad(x, (0, 1, 0, 1)), p["conv.weight"],
                                p["conv.bias"], stride=2))

print("/* Generated by tests/nn/reference.py with PyTorch " + torch.__version__.split("a")[0] +
      "; do not edit. */")
print("\n".join(out))
