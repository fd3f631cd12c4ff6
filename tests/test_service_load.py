"""The screening service as a process under load: concurrent clients, bad requests mixed in, batching,
the event loop, memory. (benchmarks/service.py measures the same at full size: 32 clients for 60 s.)"""

from __future__ import annotations

import base64
import json
import threading
import urllib.request

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
from melagbm.serve.load_testing import bad_requests, json_request, multipart_request, run_load, serving


@pytest.fixture(scope="module")
def isic_lesions(isic_root):
    """16 real ISIC 2020 images with their patients' age, sex and site."""
    metadata = pd.read_csv(isic_root / "subset_metadata.csv").iloc[:16]
    return [{"image": (isic_root / "train" / f"{row.image_name}.jpg").read_bytes(), "age": row.age_approx,
             "sex": row.sex, "site": row.anatom_site_general_challenge} for row in metadata.itertuples()]


def _as_json(lesions: list[dict], patient_id: str | None = None) -> dict:
    return {"lesions": [{"image": base64.b64encode(lesion["image"]).decode(),
                         **{key: None if pd.isna(lesion[key]) else lesion[key] for key in ("age", "sex", "site")},
                         "patient_id": patient_id} for lesion in lesions]}


def _post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(f"{url}/v1/predict", data=json.dumps(payload).encode(),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.loads(answer.read())


def test_concurrent_requests_are_batched_and_answer_as_each_would_alone(isic_model_file, isic_lesions) -> None:
    # every request is one patient "1" with two lesions: batched together, the patients must stay apart
    requests = [_as_json(isic_lesions[2 * i: 2 * i + 2], patient_id="1") for i in range(8)]
    with serving(isic_model_file) as (url, _):
        alone = [_post(url, payload)["lesions"] for payload in requests]
        together: list = [None] * len(requests)
        start = threading.Barrier(len(requests))

        def send(index: int) -> None:
            start.wait()
            together[index] = _post(url, requests[index])["lesions"]

        threads = [threading.Thread(target=send, args=(index,)) for index in range(len(requests))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with urllib.request.urlopen(f"{url}/readyz") as ready:
            served = json.loads(ready.read())["served"]
    # 8 alone + 8 together (the warm-up is nobody's request), the 8 in fewer batches than requests
    assert served["requests"] == 16 and served["batches"] < 16, served
    for single, batched in zip(alone, together):
        np.testing.assert_allclose([r["probability"] for r in batched], [r["probability"] for r in single],
                                   rtol=1e-6)
        for one, other in zip(single, batched):
            assert one["contributions"].keys() == other["contributions"].keys()
            np.testing.assert_allclose(list(other["contributions"].values()), list(one["contributions"].values()),
                                       atol=1e-6)
            assert one["outline"] == other["outline"]


def test_under_load_good_requests_all_succeed_and_each_bad_one_gets_its_4xx(isic_model_file, isic_lesions) -> None:
    good = [json_request(f"json {i}", _as_json([lesion])) for i, lesion in enumerate(isic_lesions[:8])]
    good += [multipart_request(f"multipart {i}", [(f"lesion{i}.jpg", lesion["image"])],
                               {key: [str(lesion[key])] for key in ("age", "sex", "site") if not pd.isna(lesion[key])})
             for i, lesion in enumerate(isic_lesions[8:])]
    bad = bad_requests(isic_lesions[0]["image"], max_request_bytes=8 << 20)
    with serving(isic_model_file, "--max-request-mb", "8") as (url, process):
        report = run_load(url, good, bad, clients=8, seconds=25, bad_every=3, pid=process.pid)
    summary = report.summary()
    assert report.errors == [], report.errors[:5]
    assert summary["good_requests"] >= 20, summary
    assert set(report.bad) == {request.name for request in bad}, report.bad  # each sent, each got its status
    messages = {name: entry["message"] for name, entry in report.bad.items()}
    assert messages["not an image"] == ("lesions.0.image: cannot read the image: not an image file Pillow can open "
                                        "(JPEG, PNG, ...)")
    assert messages["decompression bomb"].startswith("lesions.0.image: refused as a decompression bomb")
    assert messages["truncated JPEG"].startswith("lesions.0.image:") and "truncated" in messages["truncated JPEG"]
    assert "over the limit of 8388608 bytes" in messages["26 MB body"]
    assert messages["wrong types"].startswith("lesions.0.age:")
    assert messages["missing image"] == "lesions.0.image: Field required"
    assert messages["not base64"].startswith("lesions.0.image: not base64")
    assert messages["a path instead of an image"] == "lesions.0.path: Extra inputs are not permitted"
    # the event loop never waits for inference: health answers while every client waits for the model
    assert summary["healthz_p95_ms"] < 250, summary
    # batched, and memory flat: what the service holds after the load is what it held at its start
    assert report.served["batches"] < report.served["requests"], report.served
    assert summary["memory_end_mb"] - summary["memory_settled_mb"] < 100, summary
