#!/usr/bin/env python3
"""Writes vectors.h: DEFLATE and gzip streams made by zlib (Python's zlib
and gzip modules), for the inflate tests to decode. Run from this folder:

    /usr/bin/python3 make_vectors.py > vectors.h

The tests never need Python; this script is kept as the record of where
the bytes come from. mixed() must stay in step with mixed_data() in
test_inflate.c, which makes the same 200,000 bytes."""
import gzip
import struct
import zlib

TEXT = (b"Diffusion models learn to undo noise. A forward process adds a little "
        b"Gaussian noise at every step, and a network learns the reverse chain, "
        b"one step at a time, from pure noise back to an image. "
        b"abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabc "
        b"The forward process adds noise; the reverse process removes noise.\n") * 7

WORDS = [b"noise", b"diffusion", b"the", b"model", b"learns", b"to", b"remove",
         b"step", b"by", b"a", b"of", b"image", b"sample", b"and", b"reverse",
         b"chain", b"gaussian", b"beta", b"schedule", b"x"]


def mixed(n=200000):
    """Words, runs, random bytes and copies of earlier bytes (near and far),
    from a xorshift32 generator."""
    state = [2463534242]

    def rnd():
        x = state[0]
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        state[0] = x
        return x

    out = bytearray()
    while len(out) < n:
        kind = rnd() % 4
        if kind == 0:
            for _ in range(5 + rnd() % 20):
                out += WORDS[rnd() % len(WORDS)] + b" "
        elif kind == 1:
            b = rnd() & 255
            out += bytes([b]) * (3 + rnd() % 300)
        elif kind == 2:
            for _ in range(1 + rnd() % 64):
                out.append(rnd() & 255)
        elif out:
            d = 1 + rnd() % min(len(out), 32768)
            length = 3 + rnd() % 300
            for _ in range(length):
                out.append(out[-d])
    return bytes(out[:n])


def raw(data, level=6, strategy=zlib.Z_DEFAULT_STRATEGY):
    c = zlib.compressobj(level, zlib.DEFLATED, -15, 9, strategy)
    return c.compress(data) + c.flush()


def first_block_type(z):
    """BTYPE of the first block: bits 1-2 of the first byte."""
    return (z[0] >> 1) & 3


def gzip_all_flags(data):
    """A member with FTEXT, FHCRC, FEXTRA, FNAME and FCOMMENT set."""
    flags = 1 | 2 | 4 | 8 | 16
    head = bytes([0x1F, 0x8B, 8, flags]) + struct.pack("<I", 1700000000) + bytes([2, 3])
    extra = b"AB" + struct.pack("<H", 4) + b"\x01\x02\x03\x04"
    head += struct.pack("<H", len(extra)) + extra
    head += b"samples.txt\0" + b"made for the tests\0"
    head += struct.pack("<H", zlib.crc32(head) & 0xFFFF)
    return head + raw(data) + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def c_bytes(name, b):
    lines = [f"static const unsigned char {name}[{max(len(b), 1)}] = {{"]
    for i in range(0, len(b), 16):
        lines.append("    " + ", ".join(f"0x{x:02x}" for x in b[i:i + 16]) + ",")
    lines.append("};")
    return "\n".join(lines)


def main():
    vectors = []  # (name, compressed, plain or None, description)
    short = TEXT[:300]
    mix = mixed()
    vectors.append(("empty", raw(b""), b"", "an empty input, default level"))
    vectors.append(("one_byte", raw(b"Z"), b"Z", "one byte, default level"))
    vectors.append(("stored", raw(short, 0), short, "level 0: a stored block"))
    vectors.append(("fixed", raw(TEXT, 9, zlib.Z_FIXED), TEXT, "fixed Huffman, Z_FIXED"))
    vectors.append(("dynamic", raw(TEXT, 9), TEXT, "dynamic Huffman, level 9"))
    vectors.append(("long_run", raw(b"x" * 100000, 9), None,
                    "100,000 x: matches of 258 at distance 1"))
    vectors.append(("rle", raw(TEXT, 6, zlib.Z_RLE), TEXT, "Z_RLE: distance-1 matches"))
    vectors.append(("mixed", raw(mix, 6), None, "200,000 bytes of mixed_data(), level 6"))
    for name, z, plain, _ in vectors:
        if plain is not None:
            assert zlib.decompress(z, -15) == plain

    gz_plain = gzip.compress(TEXT, mtime=0)
    gz_flags = gzip_all_flags(short)
    gz_two = gzip.compress(b"first member\n", mtime=0) + gzip.compress(b"second\n", mtime=0)
    gz_empty = gzip.compress(b"", mtime=0)
    assert gzip.decompress(gz_flags) == short
    assert gzip.decompress(gz_two) == b"first member\nsecond\n"

    print("/* Made by make_vectors.py with zlib " + zlib.ZLIB_VERSION +
          "; do not edit. */")
    print("#include <stddef.h>\n#include <stdint.h>\n")
    print(c_bytes("text_plain", TEXT))
    print(f"#define TEXT_SIZE {len(TEXT)}")
    print(f"#define MIXED_SIZE {len(mix)}")
    print(f"#define MIXED_CRC 0x{zlib.crc32(mix):08x}u")
    for name, z, plain, desc in vectors:
        print(f"/* {desc}: {len(z)} bytes, first block type {first_block_type(z)} */")
        print(c_bytes("z_" + name, z))
    print("static const struct deflate_vector {\n    const char *name;\n"
          "    const unsigned char *z;\n    size_t zn;\n    size_t size;\n"
          "    uint32_t crc;\n} deflate_vectors[] = {")
    sizes = {"long_run": 100000, "mixed": len(mix)}
    crcs = {"long_run": zlib.crc32(b"x" * 100000), "mixed": zlib.crc32(mix)}
    for name, z, plain, _ in vectors:
        size = len(plain) if plain is not None else sizes[name]
        crc = zlib.crc32(plain) if plain is not None else crcs[name]
        print(f'    {{"{name}", z_{name}, {len(z)}, {size}, 0x{crc:08x}u}},')
    print("};")
    print(c_bytes("gz_plain", gz_plain))
    print(c_bytes("gz_flags", gz_flags))
    print(c_bytes("gz_two", gz_two))
    print(c_bytes("gz_empty", gz_empty))


if __name__ == "__main__":
    main()
