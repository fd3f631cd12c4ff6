"""The README's real-data path, run as written on the shared data: a transcript for the closing note.

Runs the README block that calls ``load_isic2020`` with the placeholders pointed at the shared
data folder, and prints what each line of it gives (``patient_col_``, ``n_groups_``, the
explanation families); progress bars and fit's summary appear on the way.

    python benchmarks/readme_real_data.py 2>&1 | tee transcript.txt
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from _common import add_data_argument  # benchmarks/_common.py

README = Path(__file__).resolve().parents[1] / "README.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(parser)
    args = parser.parse_args()
    [block] = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S) if "load_isic2020(" in b
               and "FusionClassifier()" in b]
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
