#!/usr/bin/env python3
"""Reference values for tests/tensor/test_rng.c, computed independently of
the C code: Philox-4x32-10 written out in Python integers, then the same
element mapping that tensor/rng.c documents:

  key = (seed & 0xffffffff, seed >> 32)
  counter = (block & 0xffffffff, block >> 32, stream, dist)   dist 0: uniform, 1: normal
  uniform element i: block i // 4, word i % 4, value (w >> 8) * 2**-24
  normal element i:  block i // 4, words (0,1) for i % 4 in {0,1}, (2,3) otherwise;
                     u1 = (w_a + 1) * 2**-32, u2 = w_b * 2**-32,
                     r = sqrt(-2 ln u1), even i: r cos(2 pi u2), odd i: r sin(2 pi u2)

Run: python3 tests/tensor/rng_golden.py
"""
import math
import struct

M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85
MASK = 0xFFFFFFFF


def philox4x32_10(ctr, key):
    c = list(ctr)
    k0, k1 = key
    for r in range(10):
        if r:
            k0, k1 = (k0 + W0) & MASK, (k1 + W1) & MASK
        p0, p1 = M0 * c[0], M1 * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k0, p1 & MASK, (p0 >> 32) ^ c[3] ^ k1, p0 & MASK]
    return c


def words(seed, stream, dist, block):
    return philox4x32_10([block & MASK, block >> 32, stream, dist], [seed & MASK, seed >> 32])


def f32(x):
    return struct.unpack('f', struct.pack('f', x))[0]


def uniform(seed, stream, i):
    return f32((words(seed, stream, 0, i // 4)[i % 4] >> 8) * 2.0**-24)


def normal(seed, stream, i):
    w = words(seed, stream, 1, i // 4)
    a, b = (w[0], w[1]) if i % 4 < 2 else (w[2], w[3])
    u1, u2 = (a + 1) * 2.0**-32, b * 2.0**-32
    r = math.sqrt(-2.0 * math.log(u1))
    t = 2.0 * math.pi * u2
    return f32(r * (math.cos(t) if i % 2 == 0 else math.sin(t)))


if __name__ == '__main__':
    assert philox4x32_10([0, 0, 0, 0], [0, 0]) == [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
    for seed, stream in [(0, 0), (20201216, 3), (0xFFFFFFFFFFFFFFFF, 0xFFFFFFFF)]:
        idx = [0, 1, 2, 3, 4, 5, 1000003, (1 << 40) + 5]
        print(f'seed {seed} stream {stream}')
        print('  uniform', ', '.join(f'{{{i}, {uniform(seed, stream, i)!r}f}}' for i in idx))
        print('  normal ', ', '.join(f'{{{i}, {normal(seed, stream, i)!r}f}}' for i in idx))
