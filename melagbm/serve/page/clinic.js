// The clinic page: send one photo with the patient's age, sex and site to POST /v1/predict, and show the answer
// in words. Everything shown comes from the service: the card (GET /v1/model) or the answer; no number without
// what it means.
"use strict";

const state = { card: null, fields: {}, token: "", photo: null, photoUrl: null, busy: false };
const $ = (id) => document.getElementById(id);
const percent = (x, digits = 0) => (x == null ? "unknown" : `${(100 * x).toFixed(digits)} %`);
const range = (m) => (m && m.ci_low != null && m.ci_high != null ?
  ` (95 % CI ${percent(m.ci_low)} to ${percent(m.ci_high)})` : "");

function say(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function authorization() {
  return state.token ? { Authorization: `Bearer ${state.token}` } : {};
}

function metric(name) {
  const performance = state.card && state.card.performance;
  return performance && performance.metrics ? performance.metrics[name] : null;
}

// The operating point in words: what the threshold did on patients that did not choose it (the card's
// cross-fitted estimate); a card of melagbm 0.1 read its figures off the predictions that chose it, and says so.
// A lesion scored alone is judged by the figures of the model that scores lesions alone.
function operatingPointWords(threshold, alone = false) {
  const lone = alone && state.card && state.card.lone_lesions;
  const point = (lone ? lone.operating_point : state.card && state.card.operating_point) || {};
  const estimate = point.estimate;
  if (estimate) {
    return `at this threshold (a probability of ${percent(threshold, 1)}), on patients that did not choose it, ` +
      `the model referred ${percent(estimate.sensitivity.value)} of melanomas${range(estimate.sensitivity)}, ` +
      `cleared ${percent(estimate.specificity.value)} of other lesions${range(estimate.specificity)} and ` +
      `referred ${percent(estimate.referral_rate.value)} of all lesions${range(estimate.referral_rate)}`;
  }
  const caught = metric("sensitivity");
  if (!caught || caught.value == null) {
    return `the threshold is a probability of ${percent(threshold, 1)}; what it does on new patients was not estimated`;
  }
  return `the threshold is a probability of ${percent(threshold, 1)}; this model's card read what it catches off ` +
    "the predictions that chose it, which promises more than new patients get: refit it for an honest estimate";
}

function addFact(term, description) {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.textContent = description;
  $("facts").append(dt, dd);
}

function showCard(body) {
  const card = body.card || {};
  state.card = card;
  state.fields = body.fields || {};
  $("intended-use").textContent = card.intended_use ||
    "This model was saved without a model card: what it was trained on and how well it does are unknown.";
  const warnings = card.warnings || [];
  $("warnings").hidden = warnings.length === 0;
  $("warnings").textContent = warnings.join(" ");
  $("facts").replaceChildren();
  const data = card.training_data || {};
  if (data.rows != null) {
    const who = data.patients != null ? ` from ${data.patients} patients` : "";
    const where = data.datasets && data.datasets.length ? ` (${data.datasets.join(", ")})` : "";
    addFact("Trained on", `${data.rows} images${who}, ${data.melanomas} of them melanomas${where}`);
  }
  const auc = metric("roc_auc");
  if (auc && auc.value != null) {
    const interval = auc.ci_low != null && auc.ci_high != null ?
      ` (95 % CI ${auc.ci_low.toFixed(3)} to ${auc.ci_high.toFixed(3)})` : "";
    addFact("ROC AUC out of fold", `${auc.value.toFixed(3)}${interval}: the chance that a melanoma scores above ` +
      "another lesion");
  }
  const point = card.operating_point || {};
  if (point.threshold != null) {
    const confidence = point.sensitivity_confidence != null ?
      ` of new patients' melanomas with ${percent(point.sensitivity_confidence)} confidence` : " of melanomas out of fold";
    const target = point.target_sensitivity != null ?
      `, chosen to catch ${percent(point.target_sensitivity)}${confidence}` : "";
    addFact("Referral threshold", `refer at a melanoma probability of ${percent(point.threshold, 1)} or more${target}`);
    addFact("At that threshold", operatingPointWords(point.threshold));
  }
  const lone = card.lone_lesions;
  if (lone && lone.operating_point) {
    const loneAuc = lone.performance && lone.performance.metrics ? lone.performance.metrics.roc_auc : null;
    const aucWords = loneAuc && loneAuc.value != null ? `; ROC AUC out of fold ${loneAuc.value.toFixed(3)}` +
      (loneAuc.ci_low != null ? ` (95 % CI ${loneAuc.ci_low.toFixed(3)} to ${loneAuc.ci_high.toFixed(3)})` : "") : "";
    addFact("A lesion screened alone", `this page sends one lesion at a time, so it has no other lesion of its ` +
      `patient to be compared with: it is scored by ${lone.scored_by}${aucWords}; ` +
      operatingPointWords(lone.operating_point.threshold, true));
  }
  (card.encoders || []).forEach((encoder) => addFact("Image encoder",
    `${encoder.backbone} (${encoder.source}; licence ${encoder.license}${encoder.non_commercial ? ", NON-COMMERCIAL use only" : ""})`));
  addFact("Model", `${body.model_id}, fitted ${card.created || "at an unknown time"} with melagbm ${body.melagbm || "unknown"}`);
  $("limits").replaceChildren(...(card.limits || ["No limits were recorded: the model has no card."]).map((text) => {
    const item = document.createElement("li");
    item.textContent = text;
    return item;
  }));
  for (const field of ["sex", "site"]) {
    $(field).replaceChildren($(field).options[0]);
    for (const value of state.fields[field] || []) {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = value;
      $(field).append(option);
    }
  }
}

async function loadModel() {
  const answer = await fetch("/v1/model", { headers: authorization() });
  if (answer.status === 401) {
    $("token-box").hidden = false;
    say(state.token ? "The service refused this access token: check it with your operator." :
      "This service asks for an access token: enter the one your operator gave you.", !!state.token);
    const waiting = "Shown once the access token is given: the service answers nothing, not even what " +
      "model it runs, without one.";
    state.card = null;  // nothing of a card read with an earlier token stays on the page
    $("warnings").hidden = true;
    $("warnings").textContent = "";
    for (const field of ["sex", "site"]) $(field).replaceChildren($(field).options[0]);
    updateButton();
    $("intended-use").textContent = waiting;
    $("facts").replaceChildren();
    const item = document.createElement("li");
    item.textContent = waiting;
    $("limits").replaceChildren(item);
    $("about-waiting").hidden = false;
    return;
  }
  $("about-waiting").hidden = true;
  if (!answer.ok) {
    say(`The model's card could not be read (HTTP ${answer.status}).`, true);
    return;
  }
  showCard(await answer.json());
  $("token-box").hidden = !state.token;
  say("Take or choose a photo of the lesion.");
  updateButton();
}

function updateButton() {
  $("submit").disabled = state.busy || !(state.photo && state.card);
  $("camera").disabled = state.busy;
  $("photo").disabled = state.busy;
}

function choosePhoto(event) {
  const file = event.target.files && event.target.files[0];
  if (!file) return;
  state.photo = file;
  if (state.photoUrl) URL.revokeObjectURL(state.photoUrl);
  state.photoUrl = URL.createObjectURL(file);
  $("photo-name").textContent = `Photo: ${file.name} (${Math.round(file.size / 1024)} kB)`;
  $("result").hidden = true;
  updateButton();
}

function drawOutline(outline) {
  const svg = $("outline");
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${outline.width} ${outline.height}`);
  if (outline.polygon.length < 3) {
    $("outline-words").textContent = "No lesion outline was found in this photo: the lesion measurements " +
      "(size, shape, colour) could not be taken; check that the photo shows the lesion in focus.";
    return;
  }
  const polygon = document.createElementNS("http://www.w3.org/2000/svg", "polygon");
  polygon.setAttribute("points", outline.polygon.map(([x, y]) => `${x},${y}`).join(" "));
  svg.append(polygon);
  $("outline-words").textContent = "Green: the lesion's edge as the model found it; its size, shape and colour " +
    "were measured inside this line. If the line misses the lesion, the lesion measurements are wrong.";
}

// One row of the chart: the family's name, its bar (a track, empty where the family was not available) and words.
function chartRow(family, track, said) {
  const row = document.createElement("div");
  row.className = "bar-row";
  row.setAttribute("role", "listitem");
  const name = document.createElement("span");
  name.textContent = family;
  const words = document.createElement("span");
  words.className = "bar-words";
  words.textContent = said;
  row.append(name, track, words);
  row.dataset.family = family;
  return row;
}

function drawChart(contributions, baseValue, notAvailable = {}) {
  const entries = Object.entries(contributions).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
  const largest = Math.max(...entries.map(([, value]) => Math.abs(value)), 1e-9);
  const bars = entries.map(([family, value]) => {
    const track = document.createElement("div");
    track.className = "bar-track";
    const bar = document.createElement("div");
    bar.className = `bar ${value >= 0 ? "raise" : "lower"}`;
    bar.style.width = `${(50 * Math.abs(value)) / largest}%`;
    track.append(bar);
    const row = chartRow(family, track, Math.abs(value) < 0.005 ? "made no difference to the melanoma score" :
      `${value >= 0 ? "raised" : "lowered"} the melanoma score by ${Math.abs(value).toFixed(2)} log-odds`);
    row.dataset.value = String(value);
    return row;
  });
  const missing = Object.entries(notAvailable).map(([family, why]) => {
    const row = chartRow(family, document.createElement("div"), why);
    row.dataset.notAvailable = why;
    return row;
  });
  $("chart").replaceChildren(...bars, ...missing);
  $("chart-words").textContent = "Each bar is how much one kind of information moved the model's score before " +
    `calibration (SHAP values, in log-odds, from a starting point of ${baseValue.toFixed(2)}): to the right, red, ` +
    "towards melanoma; to the left, blue, away from it. The probability above is that score calibrated. They " +
    "explain this score; they are not a diagnosis.";
}

function showResult(lesion, photoUrl) {
  const refer = lesion.refer;
  $("decision").textContent = refer ? "Refer" : "No referral";
  $("decision").className = refer ? "refer" : "clear";
  $("decision-words").textContent = `${refer ? "Refer" : "No referral"}: ` +
    `${operatingPointWords(lesion.threshold, lesion.alone)}.` +
    (refer ? " A dermatologist should assess this lesion." :
      " Below the threshold; a lesion that changes, bleeds or worries the patient still needs a clinician.");
  $("probability-words").textContent = `Melanoma probability: ${percent(lesion.probability, 1)}, the model's ` +
    `calibrated estimate for this photo and these details (referral from ${percent(lesion.threshold, 1)}).`;
  $("preview").src = photoUrl;
  drawOutline(lesion.outline);
  drawChart(lesion.contributions, lesion.base_value, lesion.not_available);
  $("model-id").textContent = `Model ${lesion.model_id}, fitted ${lesion.fitted || "at an unknown time"}.`;
  $("result").hidden = false;
}

async function screen(event) {
  event.preventDefault();
  if (!state.photo || state.busy) return;
  const sent = { file: state.photo, url: state.photoUrl };  // the answer belongs to this photo
  const form = new FormData();
  form.append("image", sent.file, sent.file.name || "lesion.jpg");
  for (const field of ["age", "sex", "site"]) {
    const value = $(field).value.trim();
    if (value) form.append(field, value);
  }
  state.busy = true;
  updateButton();
  say("Screening...");
  try {
    const answer = await fetch("/v1/predict", { method: "POST", body: form, headers: authorization() });
    const body = await answer.json().catch(() => ({}));
    if (!answer.ok) {
      const detail = Array.isArray(body.detail) ? body.detail.map((d) => `${d.loc.slice(1).join(".")}: ${d.msg}`).join("; ")
        : body.detail || `HTTP ${answer.status}`;
      say(`Not screened: ${detail}`, true);
      return;
    }
    showResult(body.lesions[0], sent.url);
    say("Done.");
  } catch (error) {
    say(`The service could not be reached: ${error}`, true);
  } finally {
    state.busy = false;
    updateButton();
  }
}

window.addEventListener("DOMContentLoaded", () => {
  $("camera").addEventListener("change", choosePhoto);
  $("photo").addEventListener("change", choosePhoto);
  $("screen").addEventListener("submit", screen);
  $("token").addEventListener("change", () => {
    state.token = $("token").value.trim();
    loadModel().catch((error) => say(`The service could not be reached: ${error}`, true));
  });
  loadModel().catch((error) => say(`The service could not be reached: ${error}`, true));
});
