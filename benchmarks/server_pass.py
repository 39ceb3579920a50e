"""One server's work on sealed part-1 uploads, whole versus streamed (docs/mpc.md, "Kernel
choices"): per client, CPU ms of opening + hashing a sealed 10^6-coordinate bundle and the fused
pass over it, in batches of 4, either

  whole     decrypt each bundle whole into a reused buffer (a ``SealedReader`` read in one call,
            what ``open_sealed_into`` did before it was removed), then run
            ``checks.norm_pass_batch`` over the packed buffers (the engine before streaming);
  streamed  ``SealedReader`` + ``stream.read_bundle``: the pass reads each chunk right after it
            is decrypted (the engine now), for each chunk size given.

Usage: .venv/bin/python benchmarks/server_pass.py [--bundles 16] [--chunks 16384,32768,65536]
Best of --repeats runs per variant; the variants alternate, so machine noise hits both.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import phalanx.mpc.checks as checks
import phalanx.mpc.stream as stream
from phalanx.mpc.committee_client import commitment_hasher
from phalanx.mpc.messages import ShareBundle, decode_bundle, encode_bundle
from phalanx.mpc.prg import Prg
from phalanx.net.envelope import X25519Envelope

D, BATCH = 1_000_000, 4


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundles", type=int, default=16)
    ap.add_argument("--chunks", default="16384,32768,65536")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    env = X25519Envelope([b"s" * 32, b"t" * 32])
    sealed = []
    for e in range(args.bundles):
        prg = Prg(bytes([e]) * 32)
        b = ShareBundle(e, 1, 1, ("s1", "x"), (195, D),
                        vectors=(prg.field_elements(195), prg.field_elements(D)))
        sealed.append(bytes(env.seal(1, encode_bundle(b), b"ctx%d" % e)))
    rng = np.random.default_rng(0)
    patterns = rng.integers(0, 256, (D, 5), dtype=np.uint8)
    g0 = rng.integers(-1000, 1000, D).astype(np.int32)
    acc = np.zeros(D, np.uint64)
    slots = [bytearray(len(s) + 16) for s in sealed[:BATCH]]

    def whole() -> None:
        for i in range(0, len(sealed), BATCH):
            xs = []
            for k, e in enumerate(range(i, i + BATCH)):
                h = commitment_hasher()
                reader = env.open_stream(1, sealed[e], b"ctx%d" % e, h.update)
                raw = reader.read_into(memoryview(slots[k]), reader.size)
                reader.verify()
                h.digest()
                xs.append(decode_bundle(raw, packed=True).vectors[1])
            checks.norm_pass_batch(xs, patterns, g0, acc, weights=[3] * BATCH)

    def streamed() -> None:
        for i in range(0, len(sealed), BATCH):
            readers, xs = [], []
            for e in range(i, i + BATCH):
                h = commitment_hasher()
                r = env.open_stream(1, sealed[e], b"ctx%d" % e, h.update)
                readers.append(r)
                xs.append(stream.read_bundle(r).vectors[1])
            checks.norm_pass_batch(xs, patterns, g0, acc, weights=[3] * BATCH)
            for r in readers:
                r.verify()

    variants = [("whole", 0)] + [("streamed", int(c)) for c in args.chunks.split(",")]
    best = {v: float("inf") for v in variants}
    for _ in range(args.repeats):
        for name, chunk in variants:
            if chunk:
                stream.CHUNK = checks.CHUNK = chunk  # type: ignore[attr-defined]
            t0 = time.thread_time()
            (whole if name == "whole" else streamed)()
            best[(name, chunk)] = min(best[(name, chunk)],
                                      (time.thread_time() - t0) / len(sealed) * 1e3)
    for (name, chunk), ms in best.items():
        label = name if not chunk else f"{name} chunk={chunk}"
        print(f"{label:24} {ms:6.2f} ms per client (open + hash + pass, d = 10^6)")


if __name__ == "__main__":
    main()
