"""The README's real-data path, run as written on the shared data: a transcript for the closing note.

Runs the README block that calls ``load_isic2020`` with the placeholders pointed at the shared
data folder, and prints what each line of it gives (``patient_col_``, ``n_groups_``, the
explanation families); progress bars and fit's summary appear on the way.

    python benchmarks/readme_real_data.py 2>&1 | tee transcript.txt
    python benchmarks/readme_real_data.py --n-samples 80   # smoke run: fit and explain 80 images, not all 2,701
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from _common import add_data_argument  # benchmarks/_common.py

README = Path(__file__).resolve().parents[1] / "README.md"
#: The block's load of the whole ISIC 2020 subset, the one the fit and the explanation use.
FULL_ISIC_LOAD = 'load_isic2020("path/to/isic2020")'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(parser)
    parser.add_argument("--n-samples", type=int, default=None,
                        help="the block's full ISIC 2020 load draws this many images (10 %% melanoma) instead: not "
                             "the README as written, a smoke run")
    args = parser.parse_args()
    [block] = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S) if "load_isic2020(" in b
               and "FusionClassifier()" in b]
    if args.n_samples is not None:
        if FULL_ISIC_LOAD not in block:
            raise SystemExit(f"--n-samples: the README block has no {FULL_ISIC_LOAD} to shrink")
        block = block.replace(FULL_ISIC_LOAD, f'load_isic2020("path/to/isic2020", n_samples={args.n_samples}, '
                                              'positive_fraction=0.1)')
    block = block.replace("path/to/isic2020", str(args.data / "isic2020")).replace(
        "path/to/ham10000", str(args.data / "ham10000"))
    namespace: dict = {"FusionClassifier": __import__("melagbm").FusionClassifier}
    for line in block.strip().splitlines():
        print(f">>> {line}", flush=True)
        started = time.perf_counter()
        code = line.split("#")[0].strip()
        try:
            value = eval(compile(code, "README.md", "eval"), namespace)
        except SyntaxError:
            exec(compile(code, "README.md", "exec"), namespace)
            value = None
        if value is not None:
            print(repr(value))
        if time.perf_counter() - started > 5:
            print(f"[{time.perf_counter() - started:.0f} s]")


if __name__ == "__main__":
    main()
