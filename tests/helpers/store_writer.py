"""A separate process that writes to an EmbeddingStore, for the durability tests.

    python store_writer.py ROOT FIRST LAST BATCH WIDTH SEED [--compact-every N] [--go FILE] [--forever]

Writes keys FIRST..LAST-1 (shuffled by SEED) in batches; each vector is a deterministic
function of its key (see ``expected_vector``), so a reader can check every row it gets.
Prints "started" once ready, then waits for FILE to exist (--go) so that several
writers start together; --forever rewrites the same keys until killed.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time

import numpy as np

from melagbm.store import EmbeddingStore

ENCODER = "durability-test"


def key_of(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def expected_vector(i: int, width: int) -> np.ndarray:
    return np.random.default_rng(i).normal(size=width).astype(np.float32)


def main(argv: list[str]) -> None:
    root, (first, last, batch, width, seed) = argv[0], map(int, argv[1:6])
    compact_every = int(argv[argv.index("--compact-every") + 1]) if "--compact-every" in argv else 0
    go = argv[argv.index("--go") + 1] if "--go" in argv else None
    store = EmbeddingStore(root)
    order = np.random.default_rng(seed).permutation(np.arange(first, last))
    batches = [
        ([key_of(int(i)) for i in ids], np.stack([expected_vector(int(i), width) for i in ids]))
        for ids in (order[start : start + batch] for start in range(0, len(order), batch))
    ]
    print("started", flush=True)
    while go is not None and not os.path.exists(go):
        time.sleep(0.01)
    while True:
        for n, (keys, vectors) in enumerate(batches):
            store.put_many(ENCODER, keys, vectors)
            if compact_every and (n + 1) % compact_every == 0:
                store.compact()
        if "--forever" not in argv:
            break
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
