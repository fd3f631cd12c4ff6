"""The screening service on these cores: single-image latency, sustained load with bad requests mixed in,
micro-batching on and off side by side, memory, and the card of the model it serves.

Fits the default FusionClassifier on the 2,701 SIIM-ISIC 2020 images (or reuses the file from an earlier run),
saves it to ``benchmarks/.cache/isic2020_default.melagbm`` and its card to ``benchmarks/results/isic2020_card.md``;
then for each setting starts ``melagbm serve`` on 127.0.0.1 in its own process and measures:

1. the latency of ``POST /v1/predict`` for one image (one client, one request at a time, distinct images);
2. ``--clients`` concurrent clients for ``--seconds`` (every 10th request a bad one: not an image, a decompression
   bomb, a truncated JPEG, a 50 MB body, wrong types, missing fields, ...): requests/s, p50/p95/p99 latency,
   errors (must be 0), /healthz latency meanwhile, server memory at the start, a quarter in, at the end;
   once with micro-batching (``--max-batch 32``, the default), once without (``--max-batch 1``), and with two
   worker processes (``--workers 2``);
3. the bad-request table: request -> status -> message.

    python benchmarks/service.py                        # about 6 min on 2 cores with a warm store
    python benchmarks/service.py --clients 8 --seconds 20
    python benchmarks/service.py --n-images 80 --model /tmp/tiny.melagbm --results /tmp/service \\
        --settings batching --clients 2 --seconds 3 --latency-requests 2   # smoke run (a model fitted on 80 images)

The page's screenshot with this model:
    MELAGBM_ISIC_MODEL=benchmarks/.cache/isic2020_default.melagbm MELAGBM_SCREENSHOTS=benchmarks/results \\
        python -m pytest tests/test_clinic_page.py
"""

from __future__ import annotations

import argparse
import http.client
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
from _common import add_data_argument  # benchmarks/_common.py

from melagbm import FusionClassifier, load
from melagbm.card import to_markdown
from melagbm.datasets import load_isic2020
from melagbm.serve.load_testing import bad_requests, multipart_request, run_load, serving

HERE = Path(__file__).resolve().parent
MODEL = HERE / ".cache" / "isic2020_default.melagbm"
RESULTS = HERE / "results"
MAX_REQUEST_MB = 32
#: --settings key -> (the setting's row label, its ``melagbm serve`` options).
SETTINGS = {
    "batching": ("micro-batching (--max-batch 32)", ["--max-batch", "32"]),
    "no-batching": ("no batching (--max-batch 1)", ["--max-batch", "1"]),
    "two-workers": ("2 worker processes, micro-batching", ["--max-batch", "32", "--workers", "2"]),
}


def fitted_model(data: Path, refit: bool, path: Path = MODEL, n_images: int | None = None) -> Path:
    """The default model fitted on every ISIC 2020 subset image, or the first ``n_images`` (fitted once into
    ``path``, then reused)."""
    if path.exists() and not refit:
        return path
    X, y, groups = (part.iloc[:n_images] for part in load_isic2020(data / "isic2020"))
    started = time.perf_counter()
    model = FusionClassifier(verbose=0).fit(X, y, groups=groups)
    print(f"fitted the default model on {len(X)} ISIC 2020 images in {time.perf_counter() - started:.0f} s")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def good_requests(data: Path, count: int) -> list:
    """One multipart request per real ISIC 2020 image, with its patient's age, sex and site."""
    root = data / "isic2020"
    metadata = pd.read_csv(root / "subset_metadata.csv").iloc[:count]
    requests = []
    for row in metadata.itertuples():
        fields = {"age": row.age_approx, "sex": row.sex, "site": row.anatom_site_general_challenge}
        requests.append(multipart_request(row.image_name, [(f"{row.image_name}.jpg",
                                                            (root / "train" / f"{row.image_name}.jpg").read_bytes())],
                                          {key: [str(value)] for key, value in fields.items() if not pd.isna(value)}))
    return requests


def single_image_latency(url: str, requests: list) -> dict[str, float]:
    """Milliseconds of one request at a time, each a different image (the first, warming up, not counted)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    took = []
    for request in requests:
        started = time.perf_counter()
        connection.request("POST", request.path, body=request.body, headers={"Content-Type": request.content_type})
        answer = connection.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"{request.name}: HTTP {answer.status}")
        took.append(time.perf_counter() - started)
    connection.close()
    took = np.array(took[1:]) * 1000
    return {"requests": len(took), "p50_ms": float(np.median(took)), "p95_ms": float(np.percentile(took, 95)),
            "mean_ms": float(took.mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(parser)
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default: 32)")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of load per setting (default: 60)")
    parser.add_argument("--latency-requests", type=int, default=60,
                        help="single-image requests for the latency (default: 60)")
    parser.add_argument("--refit", action="store_true", help="fit the model again even if it was saved before")
    parser.add_argument("--model", type=Path, default=MODEL,
                        help="the model file served, fitted there when missing (default: benchmarks/.cache/...)")
    parser.add_argument("--n-images", type=int, default=None,
                        help="fit on the first N ISIC 2020 subset images (default: all 2,701)")
    parser.add_argument("--settings", default=",".join(SETTINGS),
                        help="comma-separated settings served in turn (default: %(default)s)")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="folder of the card and service.txt written (default: benchmarks/results)")
    args = parser.parse_args()

    model_file = fitted_model(args.data, args.refit, args.model, args.n_images)
    card = load(model_file).model_card_
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "isic2020_card.md").write_text(to_markdown(card))
    good = good_requests(args.data, 64)
    jpeg = (args.data / "isic2020" / "train" / f"{good[0].name}.jpg").read_bytes()
    bad = bad_requests(jpeg, MAX_REQUEST_MB << 20)

    lines = [f"# melagbm serve on this machine ({time.strftime('%Y-%m-%d %H:%M')})",
             f"model: {model_file.name}, {card['training_data']['rows']} ISIC 2020 images; "
             f"{args.clients} clients x {args.seconds:.0f} s per setting, every 10th request a bad one", ""]
    reports = {}
    for label, options in (SETTINGS[key] for key in args.settings.split(",")):
        with serving(model_file, "--max-request-mb", str(MAX_REQUEST_MB), *options) as (url, process):
            if not reports:
                latency = single_image_latency(url, good[: args.latency_requests + 1])
                lines += ["## Single-image latency of POST /v1/predict (one client, one image per request)", "",
                          f"{latency['requests']} requests: median {latency['p50_ms']:.0f} ms, "
                          f"p95 {latency['p95_ms']:.0f} ms, mean {latency['mean_ms']:.0f} ms", ""]
                print(lines[-2], flush=True)
            report = run_load(url, good, bad, clients=args.clients, seconds=args.seconds, bad_every=10,
                              pid=process.pid)
        reports[label] = report
        print(label, json.dumps(report.summary()), report.served, flush=True)
        if report.errors:
            print("ERRORS:", report.errors[:10])

    lines += ["## Sustained load", "",
              "| setting | good req/s | p50 ms | p95 ms | p99 ms | errors | bad answered | /healthz p95 ms | "
              "batches / requests | memory start / quarter / end / peak MiB |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for label, report in reports.items():
        s = report.summary()
        lines.append(f"| {label} | {s['requests_per_s']:.1f} | {s['p50_ms']:.0f} | {s['p95_ms']:.0f} | "
                     f"{s['p99_ms']:.0f} | {s['errors']} | {s['bad_requests']} | {s['healthz_p95_ms']:.0f} | "
                     f"{report.served.get('batches')} / {report.served.get('requests')} | "
                     f"{s['memory_start_mb']:.0f} / {s['memory_settled_mb']:.0f} / {s['memory_end_mb']:.0f} / "
                     f"{s['memory_peak_mb']:.0f} |")
    rate = {key: reports[SETTINGS[key][0]].summary()["requests_per_s"] for key in SETTINGS
            if SETTINGS[key][0] in reports}
    lines.append("")
    if {"batching", "no-batching"} <= set(rate):
        lines.append(f"micro-batching / no batching, requests/s: {rate['batching'] / rate['no-batching']:.2f}x")
    if {"batching", "two-workers"} <= set(rate):
        lines.append(f"2 worker processes / 1, both micro-batching, requests/s: "
                     f"{rate['two-workers'] / rate['batching']:.2f}x "
                     "(memory: the parent and both workers; batches and requests: the worker that answered /readyz)")
    lines.append("")
    lines += ["## Bad requests (mixed into the load above, with batching)", "",
              "| request | status | message |", "|---|---|---|"]
    first = next(iter(reports.values()))
    for request in bad:
        entry = first.bad.get(request.name)
        status, message = (entry["status"], entry["message"]) if entry else ("not sent", "")
        lines.append(f"| {request.name} | {status} | {message.replace('|', '/')} |")
    text = "\n".join(lines) + "\n"
    (args.results / "service.txt").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
