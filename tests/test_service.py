"""The screening service on a real saved model and real dermoscopy images: answers, bad requests, limits, auth."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import urllib.request

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient

import melagbm
from melagbm import FusionClassifier
from melagbm.serve import ServiceSettings, create_app


@pytest.fixture(scope="module")
def model_file(ham_sample, tmp_path_factory):
    X, y, groups = ham_sample
    model = FusionClassifier(backbone="tf_efficientnet_lite0", n_seeds=1, verbose=0).fit(X, y, groups=groups)
    path = tmp_path_factory.mktemp("service") / "model.melagbm"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def client(model_file):
    with TestClient(create_app(ServiceSettings(model=model_file, max_lesions=4, max_request_bytes=1 << 20))) as c:
        yield c


@pytest.fixture(scope="module")
def lesions(ham_sample):
    X = ham_sample[0].iloc[:2]
    return [{"image": base64.b64encode(open(path, "rb").read()).decode(), "age": age, "sex": sex, "site": site}
            for path, age, sex, site in zip(X["image"], X["age"].fillna(50), X["sex"], X["site"])], X


def test_health_and_readiness_name_the_model(client, model_file) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert ready.json()["model_id"] == hashlib.sha256(model_file.read_bytes()).hexdigest()[:16]
    assert ready.json()["served"] == {"batches": 0, "requests": 0, "lesions": 0}  # the warm-up is nobody's request


def test_the_answer_says_how_sex_and_site_were_read(client, lesions) -> None:
    body, _ = lesions
    sent = [{**body[0], "sex": "M", "site": "back"}, {**body[1], "sex": "female", "site": "moon"},
            {"image": body[0]["image"]}, {"image": body[0]["image"], "sex": "n/a"}]
    answer = client.post("/v1/predict", json={"lesions": sent})
    assert answer.status_code == 200, answer.text
    read = [lesion["read_as"] for lesion in answer.json()["lesions"]]
    assert read[0] == {"sex": "male (sent 'M')", "site": "torso (sent 'back')"}  # HAM10000's back is ISIC's torso
    assert read[1] == {"sex": "female", "site": "unknown (sent 'moon': not a value this model knows)"}
    assert read[2] == {"sex": "unknown (not sent)", "site": "unknown (not sent)"}
    assert read[3]["sex"] == "unknown (sent 'n/a': read as missing)"


def test_predict_answers_as_the_model_does(client, lesions, model_file) -> None:
    body, X = lesions
    answer = client.post("/v1/predict", json={"lesions": body})
    assert answer.status_code == 200, answer.text
    results = answer.json()["lesions"]
    model = melagbm.load(model_file)
    frame = X.assign(age=X["age"].fillna(50), lesion_id=[f"request-0-lesion-{i}" for i in range(len(X))])
    expected = model.predict_proba(frame)[:, 1]
    np.testing.assert_allclose([r["probability"] for r in results], expected, atol=1e-6)
    explanation = model.explain(frame, grouped=True)
    for index, result in enumerate(results):
        assert result["refer"] == (result["probability"] >= model.threshold_)
        assert list(result["contributions"]) == list(explanation.feature_names)
        np.testing.assert_allclose(list(result["contributions"].values()), explanation.values[index], atol=1e-6)
        outline = result["outline"]
        assert (outline["width"], outline["height"]) == (200, 150) and len(outline["polygon"]) >= 3
        xs, ys = np.array(outline["polygon"]).T
        assert xs.min() >= 0 and xs.max() < 200 and ys.min() >= 0 and ys.max() < 150
        assert result["model_id"] == client.get("/readyz").json()["model_id"]


def test_multipart_uploads_answer_like_json(client, lesions) -> None:
    body, X = lesions
    files = [("image", (f"lesion{i}.jpg", open(path, "rb").read(), "image/jpeg")) for i, path in enumerate(X["image"])]
    data = {"age": [str(lesion["age"]) for lesion in body], "sex": [lesion["sex"] for lesion in body],
            "site": [lesion["site"] for lesion in body]}
    answer = client.post("/v1/predict", files=files, data=data)
    assert answer.status_code == 200, answer.text
    as_json = client.post("/v1/predict", json={"lesions": body}).json()["lesions"]
    np.testing.assert_allclose([r["probability"] for r in answer.json()["lesions"]],
                               [r["probability"] for r in as_json], atol=1e-9)


@pytest.mark.parametrize("change, status, where, says", [
    (lambda b: [{**b[0], "image": "not base64!"}], 422, ["body", "lesions", 0, "image"], "base64"),
    (lambda b: [b[0], {**b[1], "image": base64.b64encode(b"no image here").decode()}], 422,
     ["body", "lesions", 1, "image"], "cannot"),
    (lambda b: [{**b[0], "age": -3}], 422, ["body", "lesions", 0, "age"], "greater than or equal"),
    (lambda b: [{**b[0], "path": "/etc/passwd"}], 422, ["body", "lesions", 0, "path"], "Extra inputs"),
    (lambda b: [b[0]] * 5, 422, ["body", "lesions"], "at most 4 lesions"),
    (lambda b: [], 422, ["body", "lesions"], "at least 1"),
])
def test_a_bad_request_gets_a_4xx_naming_the_field_and_the_service_keeps_serving(
        client, lesions, change, status, where, says) -> None:
    body, _ = lesions
    answer = client.post("/v1/predict", json={"lesions": change(body)})
    assert answer.status_code == status
    detail = answer.json()["detail"][0]
    assert detail["loc"] == where and says.lower() in detail["msg"].lower()
    assert client.post("/v1/predict", json={"lesions": body[:1]}).status_code == 200


def test_limits_and_content_types(client, lesions) -> None:
    body, X = lesions
    huge = {"lesions": [{**body[0], "image": base64.b64encode(bytes(2 << 20)).decode()}]}
    assert client.post("/v1/predict", json=huge).status_code == 413
    assert client.post("/v1/predict", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
    files = [("image", ("a.jpg", open(X["image"].iloc[0], "rb").read(), "image/jpeg"))]
    mismatched = client.post("/v1/predict", files=files, data={"age": ["40", "50"]})
    assert mismatched.status_code == 422 and mismatched.json()["detail"][0]["loc"] == ["body", "age"]
    assert "access-control-allow-origin" not in client.get("/healthz", headers={"origin": "https://x.org"}).headers


def test_the_model_card_is_served(client, model_file) -> None:
    served = client.get("/v1/model").json()
    assert served["card"] == json.loads(json.dumps(melagbm.load(model_file).model_card_))


def test_bearer_token_and_cors_when_configured(model_file, lesions, tmp_path) -> None:
    body, _ = lesions
    (tmp_path / "token").write_text("s3cret\n")
    settings = ServiceSettings(model=model_file, token_file=tmp_path / "token", cors_origins=["https://clinic.example"])
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200  # probes need no token
        assert client.get("/v1/model").status_code == 401
        assert client.get("/v1/model", headers={"authorization": "Bearer wrong"}).status_code == 401
        good = {"authorization": "Bearer s3cret"}
        assert client.post("/v1/predict", json={"lesions": body[:1]}, headers=good).status_code == 200
        preflight = client.options("/v1/predict", headers={"origin": "https://clinic.example",
                                                           "access-control-request-method": "POST"})
        assert preflight.headers["access-control-allow-origin"] == "https://clinic.example"


def test_melagbm_serve_runs_the_service_as_documented(model_file, lesions) -> None:
    from melagbm.serve.load_testing import serving

    with serving(model_file) as (url, _):
        request = urllib.request.Request(f"{url}/v1/predict", data=json.dumps({"lesions": lesions[0][:1]}).encode(),
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            assert 0.0 <= json.loads(answer.read())["lesions"][0]["probability"] <= 1.0


def test_a_model_the_service_cannot_screen_with_is_refused(isic_root, tmp_path) -> None:
    from melagbm.datasets import load_isic2020

    X, y, groups = load_isic2020(isic_root)
    FusionClassifier(image_col=None, n_seeds=1, verbose=0).fit(X.drop(columns="image"), y, groups=groups) \
        .save(tmp_path / "metadata.melagbm")
    with pytest.raises(ValueError, match="needs a two-class model fitted on images"):
        create_app(ServiceSettings(model=tmp_path / "metadata.melagbm"))


def test_frames_hold_the_decoded_pixels_and_scope_ids_to_their_request(model_file) -> None:
    from melagbm.serve.screening import Screening

    screening = Screening(melagbm.load(model_file), model_file)
    pixels = np.zeros((8, 8, 3), np.uint8)
    frame = screening.frame([[{"image": pixels, "age": 30.0, "sex": "female", "site": None}],
                             [{"image": pixels}, {"image": pixels}]])
    assert frame.loc[0, "image"] is pixels and pd.isna(frame.loc[0, "site"]) and pd.isna(frame.loc[1, "age"])
    assert list(frame["lesion_id"]) == ["request-0-lesion-0", "request-1-lesion-0", "request-1-lesion-1"]


def test_fhir_format_is_a_valid_r4_bundle_of_risk_assessments(client, lesions, model_file) -> None:
    pytest.importorskip("fhir.resources")
    from fhir.resources.R4B.bundle import Bundle

    body, _ = lesions
    payload = {"lesions": [{**body[0], "patient_id": "p-17"}, {**body[1], "patient_id": "  "}]}
    plain = client.post("/v1/predict", json=payload).json()["lesions"]
    answer = client.post("/v1/predict?format=fhir", json=payload)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate(answer.json())  # raises on anything FHIR does not allow
    assert bundle.type == "collection" and len(bundle.entry) == 2
    sensitivity = melagbm.load(model_file).model_card_["operating_point"]["estimate"]["sensitivity"]
    for entry, result in zip(bundle.entry, plain):
        assessment = entry.resource
        assert assessment.get_resource_type() == "RiskAssessment" and assessment.status == "final"
        [prediction] = assessment.prediction
        assert prediction.outcome.coding[0].system == "http://snomed.info/sct"
        # R4 expresses probabilityDecimal as a percentage (invariant ras-2: <= 100)
        assert float(prediction.probabilityDecimal) == pytest.approx(100 * result["probability"], abs=1e-4)
        assert prediction.qualitativeRisk is None  # its codes are likelihoods: a referral is not "high likelihood"
        assert prediction.rationale.startswith("refer:" if result["refer"] else "no referral:")
        assert (f"on patients that did not choose the threshold the model referred {100 * sensitivity['value']:.0f} % "
                f"(95 % CI {100 * sensitivity['ci_low']:.0f}-{100 * sensitivity['ci_high']:.0f} %) of melanomas"
                in prediction.rationale)
        assert (assessment.mitigation is not None) == result["refer"]
    assert bundle.entry[0].resource.subject.identifier.value == "p-17"
    assert bundle.entry[1].resource.subject.identifier is None  # a blank id is no id
    wrong = client.post("/v1/predict?format=xml", json=payload)
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["query", "format"]


def test_the_clinic_page_and_its_files_are_served_from_the_package_alone(client) -> None:
    import re

    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sorted(assets) == ["/page/clinic.css", "/page/clinic.js", "/page/icon.svg"]
    assert all(client.get(asset).status_code == 200 for asset in assets)
    for text in [page.text, *(client.get(asset).text for asset in assets)]:
        fetched = text.replace("http://www.w3.org/2000/svg", "")  # SVG's namespace name, never fetched
        assert "http://" not in fetched and "https://" not in fetched and "//cdn" not in fetched
    assert client.get("/page/../app.py").status_code == 404
    for path in ("/", "/page/index.html", "/page/clinic.js"):  # however the page is addressed
        headers = client.get(path).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
    assert client.get("/healthz").headers["x-frame-options"] == "DENY"
    fields = client.get("/v1/model").json()["fields"]
    assert "male" in fields["sex"] and "unknown" not in fields["sex"] and len(fields["site"]) >= 5


def test_the_pixel_limits_refuse_before_decoding_and_the_budget_lets_requests_wait(model_file, lesions) -> None:
    body, _ = lesions
    settings = ServiceSettings(model=model_file, max_image_pixels=20_000, pixels_in_flight=1)
    with TestClient(create_app(settings)) as small:
        refused = small.post("/v1/predict", json={"lesions": body[:1]})
        assert refused.status_code == 422
        detail = refused.json()["detail"][0]
        assert detail["loc"] == ["body", "lesions", 0, "image"] and "200 x 150 pixels exceeds" in detail["msg"]
    with TestClient(create_app(ServiceSettings(model=model_file, pixels_in_flight=1))) as tight:
        assert tight.post("/v1/predict", json={"lesions": body}).status_code == 200  # larger than the budget: alone


def test_blank_values_are_unknown_and_unknown_form_fields_are_refused(client, lesions) -> None:
    body, X = lesions
    omitted = client.post("/v1/predict", json={"lesions": [{"image": body[0]["image"]}]}).json()["lesions"][0]
    blank = {"image": body[0]["image"], "age": "", "sex": " ", "site": "", "patient_id": ""}
    assert client.post("/v1/predict", json={"lesions": [blank]}).json()["lesions"][0]["probability"] == \
        pytest.approx(omitted["probability"], abs=1e-12)
    files = [("image", ("a.jpg", open(X["image"].iloc[0], "rb").read(), "image/jpeg"))]
    typo = client.post("/v1/predict", files=files, data={"Age": "61"})
    assert typo.status_code == 422
    assert typo.json()["detail"][0] == {"loc": ["body", "Age"],
                                        "msg": "unknown field 'Age': the form takes image, age, sex, site, patient_id"}
    wrong = client.post("/v1/predict", files=files, data={"age": "old"})
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "lesions", 0, "age"]
    nan = client.post("/v1/predict", json={"lesions": [{**body[0], "age": "nan"}]})
    assert nan.status_code == 422 and nan.json()["detail"][0]["loc"] == ["body", "lesions", 0, "age"]


def test_the_budget_serves_requests_in_arrival_order() -> None:
    import asyncio

    from melagbm.serve.batching import Budget

    async def scenario() -> list[str]:
        budget, events = Budget(100), []
        await budget.acquire(60)

        async def wants(name: str, amount: int) -> None:
            await budget.acquire(amount)
            events.append(name)

        large = asyncio.create_task(wants("large", 100))  # first in line, needs everything
        await asyncio.sleep(0.01)
        small = asyncio.create_task(wants("small", 10))  # would fit now, but must not overtake
        await asyncio.sleep(0.05)
        events.append("first releases")
        await budget.release(60)
        await large
        events.append("large releases")
        await budget.release(100)
        await small
        return events

    assert asyncio.run(scenario()) == ["first releases", "large", "large releases", "small"]


def test_the_batcher_keeps_arrival_order_when_a_request_does_not_fit() -> None:
    import asyncio

    from melagbm.serve.batching import MicroBatcher

    batches = []
    gate = threading.Event()

    def run(requests: list) -> list:
        gate.wait(5)  # the first batch holds the thread until every request is queued
        batches.append([len(lesions) for lesions in requests])
        return [len(lesions) for lesions in requests]

    async def scenario() -> list:
        batcher = MicroBatcher(run, max_lesions=32)
        sizes = [1, 10, 16, 16, 16, 2]
        tasks = []
        for size in sizes:
            tasks.append(asyncio.create_task(batcher.submit([None] * size)))
            await asyncio.sleep(0.01)
        gate.set()
        answers = await asyncio.gather(*tasks)
        batcher.close()
        with pytest.raises(RuntimeError, match="shutting down"):
            await batcher.submit([None])
        return answers

    assert asyncio.run(scenario()) == [1, 10, 16, 16, 16, 2]
    assert batches == [[1], [10, 16], [16, 16], [2]]  # in order: the 16 that did not fit leads the next batch


def test_the_pixel_budget_holds_requests_until_pixels_are_given_back() -> None:
    import asyncio

    from melagbm.serve.batching import Budget

    async def scenario() -> list[str]:
        budget, events = Budget(100), []
        await budget.acquire(60)

        async def second() -> None:
            await budget.acquire(60)
            events.append("second holds")

        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.05)
        events.append("first releases")
        await budget.release(60)
        await waiting
        return events

    assert asyncio.run(scenario()) == ["first releases", "second holds"]


def test_a_lesion_alone_is_answered_without_patient_context(isic_model_file, isic_root) -> None:
    """A patient-context model: two lesions of one patient keep their context, a third sent alone is scored by the
    lone-lesion model, at its threshold, and every answer (JSON and FHIR) says the context was not available."""
    metadata = pd.read_csv(isic_root / "subset_metadata.csv").iloc[:3]
    body = [{"image": base64.b64encode((isic_root / "train" / f"{row.image_name}.jpg").read_bytes()).decode(),
             "age": None if pd.isna(row.age_approx) else row.age_approx, "patient_id": patient}
            for row, patient in zip(metadata.itertuples(), ["p1", "p1", None])]
    model = melagbm.load(isic_model_file)
    with TestClient(create_app(ServiceSettings(model=isic_model_file, max_lesions=4))) as client:
        results = client.post("/v1/predict", json={"lesions": body}).json()["lesions"]
        fhir = client.post("/v1/predict?format=fhir", json={"lesions": body}).json()
    assert [result["alone"] for result in results] == [False, False, True]
    assert [result["not_available"] for result in results][:2] == [{}, {}]
    assert results[2]["not_available"]["patient context"].startswith("not available (one lesion)")
    assert "patient context" in results[0]["contributions"] and "patient context" not in results[2]["contributions"]
    assert results[2]["threshold"] == pytest.approx(model.lone_lesion_model_.threshold_)
    assert results[0]["threshold"] == pytest.approx(model.threshold_) != model.lone_lesion_model_.threshold_
    frame = pd.DataFrame({"image": [isic_root / "train" / f"{name}.jpg" for name in metadata["image_name"]],
                          "age": metadata["age_approx"], "sex": np.nan, "site": np.nan,
                          "patient_id": ["p1", "p1", "alone"]})
    np.testing.assert_allclose([result["probability"] for result in results], model.predict_proba(frame)[:, 1],
                               atol=1e-6)
    lone = model.model_card_["lone_lesions"]["operating_point"]["estimate"]["sensitivity"]
    rationale = fhir["entry"][2]["resource"]["prediction"][0]["rationale"]
    assert "for a lesion scored alone" in rationale and f"referred {100 * lone['value']:.0f} %" in rationale
    assert "patient context: not available (one lesion)" in fhir["entry"][2]["resource"]["note"][0]["text"]
    assert "not available" not in fhir["entry"][0]["resource"]["note"][0]["text"]
