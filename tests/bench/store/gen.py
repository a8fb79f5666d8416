#!/usr/bin/env python3
"""Deterministic workload generator for tests/bench/bench-store.sh.

Every byte depends only on the sub-command, its arguments and a fixed seed, so two runs (and every tool in one
run) see identical data. Binary content is "semi-compressible": random bytes interleaved with low-entropy runs, so
that compression neither wins everything (text) nor nothing (pure noise).

  gen.py tree DIR --scale full|small         workload 1: mixed tree (~1 GiB full, ~64 MiB small)
  gen.py w3-init FILE --size BYTES           workload 3: the binary that is edited
  gen.py w3-edit FILE --step I               workload 3: edit I (3 small overwrites, 100-byte insertion, append)
  gen.py w4-append FILE --step I             workload 4: append 64 KiB of log lines
  gen.py w6-init FILE                        workload 6: a 20 MiB file, half incompressible (random), half text
  gen.py w6-edit FILE --step I               workload 6: edit I (scattered small overwrites, one mid-file
                                             insertion, an append)
  gen.py w5-step FULL DELTA --step I --files N --per-step K
                                             workload 5: step 0 creates N files, step I rewrites K of them;
                                             DELTA gets only this step's files (an overlay upper layer's view)
"""
import argparse
import os
import random

SEED = 0x5EED_D1FF
MiB = 1 << 20
LOW_ENTROPY = bytes(48 + (i & 15) for i in range(256))  # maps any byte to one of 16 symbols


def rng_for(*parts):
    return random.Random(hash_parts(SEED, *parts))


def hash_parts(*parts):
    # Python's hash() is salted per process; build a stable integer instead.
    h = 1469598103934665603
    for p in parts:
        for b in str(p).encode():
            h = ((h ^ b) * 1099511628211) & ((1 << 64) - 1)
    return h


def semi_compressible(rng, n):
    out = []
    left = n
    while left > 0:
        piece = min(left, 16 * 1024)
        raw = rng.randbytes(piece)
        cut = int(piece * rng.uniform(0.3, 0.7))
        out.append(raw[:cut] + raw[cut:].translate(LOW_ENTROPY))
        left -= piece
    return b"".join(out)


SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sta", "vor", "pel", "qui", "zan", "tor", "ex", "ion", "bar", "fu"]


def word_list(rng, n=4000):
    return ["".join(rng.choices(SYLLABLES, k=rng.randint(1, 4))) for _ in range(n)]


def text(rng, words, n):
    parts, size = [], 0
    while size < n:
        line = " ".join(rng.choices(words, k=rng.randint(3, 12))) + "\n"
        parts.append(line)
        size += len(line)
    return "".join(parts).encode()[:n]


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def cmd_tree(a):
    full = a.scale == "full"
    div = 1 if full else 16
    rng = rng_for("tree")
    words = word_list(rng)
    total = 0
    # Many small text files in a nested source-like layout (sizes log-uniform 100 B .. 64 KiB).
    for i in range(7700 // div):
        size = int(2 ** rng.uniform(6.6, 16))
        path = os.path.join(a.dir, "src", f"mod{i % 40:02d}", f"pkg{(i // 40) % 12:02d}", f"file{i:05d}.txt")
        data = text(rng, words, size)
        write(path, data)
        total += len(data)
    for i in range(4):  # empty files exist in real trees
        write(os.path.join(a.dir, "src", f"empty{i}"), b"")
    # Two large files (a database image, a tarball...).
    large = (160 if full else 10) * MiB
    for i in range(2):
        write(os.path.join(a.dir, "data", f"large{i}.bin"), semi_compressible(rng, large))
        total += large
    # 1-10 MiB binaries until the tree reaches its target size.
    target = (1024 if full else 64) * MiB
    i = 0
    while total < target:
        size = min(rng.randint(1 * MiB, 10 * MiB), max(target - total, 1 * MiB))
        write(os.path.join(a.dir, "bin", f"d{i % 8}", f"blob{i:03d}.so"), semi_compressible(rng, size))
        total += size
        i += 1


def cmd_w3_init(a):
    write(a.file, semi_compressible(rng_for("w3"), a.size))


def cmd_w3_edit(a):
    rng = rng_for("w3-edit", a.step)
    with open(a.file, "r+b") as f:
        data = bytearray(f.read())
        for _ in range(3):  # small in-place overwrites
            n = rng.randint(8, 64)
            off = rng.randrange(0, len(data) - n)
            data[off:off + n] = rng.randbytes(n)
        mid = rng.randrange(len(data) // 4, 3 * len(data) // 4)  # 100-byte insertion mid-file
        data[mid:mid] = rng.randbytes(100)
        data += semi_compressible(rng, 1024)  # an append
        f.seek(0)
        f.write(data)


def cmd_w4_append(a):
    rng = rng_for("w4", a.step)
    words = word_list(rng_for("w4-words"), 500)
    lines, size = [], 0
    while True:
        line = f"2026-11-23T10:{a.step // 60:02d}:{a.step % 60:02d}.{size:06d}Z INFO " + " ".join(
            rng.choices(words, k=rng.randint(4, 14))) + "\n"
        if size + len(line) > 64 * 1024:
            lines.append("x" * (64 * 1024 - size))  # pad to exactly 64 KiB per version
            break
        lines.append(line)
        size += len(line)
    with open(a.file, "ab") as f:
        f.write("".join(lines).encode())


def cmd_w6_init(a):
    # 256 KiB stripes alternating random bytes (incompressible) and text: half of the file cannot be compressed,
    # so what an edit costs is decided by how the changed chunks are stored, not by compression of the whole.
    rng = rng_for("w6")
    words = word_list(rng)
    stripe = 256 * 1024
    parts = [rng.randbytes(stripe) if i % 2 == 0 else text(rng, words, stripe) for i in range(20 * MiB // stripe)]
    write(a.file, b"".join(parts))


def cmd_w6_edit(a):
    rng = rng_for("w6-edit", a.step)
    words = word_list(rng_for("w6-words"), 500)
    with open(a.file, "r+b") as f:
        data = bytearray(f.read())
        for _ in range(rng.randint(8, 16)):  # scattered small in-place overwrites (a record, a counter, a page header)
            n = rng.randint(4, 256)
            off = rng.randrange(0, len(data) - n)
            data[off:off + n] = rng.randbytes(n) if rng.random() < 0.5 else text(rng, words, n)
        mid = rng.randrange(len(data) // 3, 2 * len(data) // 3)  # one mid-file insertion
        data[mid:mid] = text(rng, words, rng.randint(200, 4096))
        data += rng.randbytes(rng.randint(512, 8192))  # an append
        f.seek(0)
        f.write(data)


def cmd_w5_step(a):
    rng = rng_for("w5", a.step)
    words = word_list(rng_for("w5-words"), 1000)
    names = range(a.files) if a.step == 0 else rng.sample(range(a.files), a.per_step)
    for n in names:
        rel = os.path.join(f"dir{n % 10}", f"f{n:04d}.txt")
        data = text(rng, words, rng.randint(1024, 8192))
        write(os.path.join(a.full, rel), data)
        write(os.path.join(a.delta, rel), data)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("tree"); s.add_argument("dir"); s.add_argument("--scale", default="full")
    s = sub.add_parser("w3-init"); s.add_argument("file"); s.add_argument("--size", type=int, default=20 * MiB)
    s = sub.add_parser("w3-edit"); s.add_argument("file"); s.add_argument("--step", type=int, required=True)
    s = sub.add_parser("w4-append"); s.add_argument("file"); s.add_argument("--step", type=int, required=True)
    s = sub.add_parser("w6-init"); s.add_argument("file")
    s = sub.add_parser("w6-edit"); s.add_argument("file"); s.add_argument("--step", type=int, required=True)
    s = sub.add_parser("w5-step"); s.add_argument("full"); s.add_argument("delta")
    s.add_argument("--step", type=int, required=True); s.add_argument("--files", type=int, default=1000)
    s.add_argument("--per-step", type=int, default=100)
    a = p.parse_args()
    {"tree": cmd_tree, "w3-init": cmd_w3_init, "w3-edit": cmd_w3_edit, "w4-append": cmd_w4_append,
     "w5-step": cmd_w5_step, "w6-init": cmd_w6_init, "w6-edit": cmd_w6_edit}[a.cmd](a)


if __name__ == "__main__":
    main()
