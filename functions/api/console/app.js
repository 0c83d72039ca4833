// embedrec console: plain JS, no build step, no dependencies. Talks to the API on its own origin.
"use strict";

// The console lives at <prefix>/console/, the API at <prefix>/api/... (prefix: an API Gateway stage, or "").
const API_ROOT = location.pathname.replace(/console\/?(index\.html)?$/, "");
const TOKEN_KEY = "embedrec.token";
const VIEWS = ["data", "training", "models", "recommendations", "analytics", "ab-tests", "api-keys"];

const state = { token: sessionStorage.getItem(TOKEN_KEY), who: sessionStorage.getItem("embedrec.who") || "" };

// ---------- helpers ----------

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

/** Build an element: h("td", {class: "num"}, "text", child, ...). */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child instanceof Node ? child : String(child));
    }
  }
  return node;
}

const plural = (n, word) => `${fmt.int(n)} ${word}${n === 1 ? "" : "s"}`;

const fmt = {
  int: (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US")),
  num: (n, digits = 4) => (n === null || n === undefined ? "–" : Number(n).toFixed(digits)),
  pct: (n) => (n === null || n === undefined ? "–" : `${(100 * n).toFixed(2)}%`),
  money: (n) =>
    n === null || n === undefined
      ? "–"
      : Number(n).toLocaleString("en-US", { style: "currency", currency: "USD" }),
  date: (s) => (s ? new Date(s).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" }) : "–"),
};

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/** The API's `detail` as one readable line (a string, or FastAPI's list of validation errors). */
function describeDetail(detail, status) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((e) => `${(e.loc || []).filter((p) => p !== "body").join(".")}: ${e.msg}`)
      .join("; ");
  }
  return `request failed (HTTP ${status})`;
}

/** Call the API; resolve with the JSON body, or throw ApiError carrying the API's detail. */
async function api(method, path, { json, form } = {}) {
  const headers = {};
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  let response;
  try {
    response = await fetch(API_ROOT + path.replace(/^\//, ""), { method, headers, body });
  } catch (err) {
    throw new ApiError(0, `network error: ${err.message}`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text.slice(0, 200) };
  }
  if (!response.ok) {
    const message = describeDetail(data && data.detail, response.status);
    if (response.status === 401 && path !== "/api/v1/auth/login") {
      logout(`Your session ended: ${message}`);
    }
    throw new ApiError(response.status, message);
  }
  return data;
}

/** Show an error in the view's error box (or clear it with null). */
function showError(view, err) {
  const box = $("[data-error]", view);
  if (!box) return;
  if (!err) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  const status = err.status ? `${err.status} · ` : "";
  box.textContent = `${status}${err.message}`;
  box.hidden = false;
}

function toast(message) {
  const node = $("#toast");
  node.textContent = message;
  node.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (node.hidden = true), 6000);
}

/** Run an async action for a view: disable its submit button, show its error on failure. */
async function guarded(view, button, action) {
  showError(view, null);
  if (button) button.disabled = true;
  try {
    await action();
  } catch (err) {
    if (!(err instanceof ApiError)) console.error(err);
    showError(view, err);
  } finally {
    if (button) button.disabled = false;
  }
}

function table(columns, rows, { empty = "Nothing yet.", caption } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h(
    "table",
    {},
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.num ? "num" : null }, c.label)))),
    h(
      "tbody",
      {},
      rows.map((row) =>
        h("tr", {}, columns.map((c) => h("td", { class: c.num ? "num" : null }, c.value(row)))),
      ),
    ),
  );
}

function badge(text, kind = "") {
  return h("span", { class: `badge ${kind}` }, text);
}

// ---------- charts (inline SVG) ----------

const SVG = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(child));
  return node;
}

function niceMax(value) {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 2.5, 5, 10].find((m) => m * magnitude >= value);
  return step * magnitude;
}

/**
 * A line chart. `series`: [{name, className, points: [[x, y], ...], format}]; each series may have its
 * own y scale (`axis: "left" | "right"`). `xLabel(x)` labels the ticks of the x axis.
 */
function lineChart(series, { width = 640, height = 240, xLabel = String, bars = false, xDomain = null } = {}) {
  const hasRight = series.some((ser) => ser.axis === "right");
  const pad = { top: 14, right: hasRight ? 56 : 16, bottom: 28, left: 56 };
  let innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart-svg", preserveAspectRatio: "none" });
  const xs = series.flatMap((ser) => ser.points.map((p) => p[0]));
  if (!xs.length) {
    svg.append(s("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "axis-label" }, "no data yet"));
    return svg;
  }
  const slots = new Set(xs).size;
  const barW = bars ? Math.max(2, (innerW / Math.max(1, slots)) * 0.7) : 0;
  if (bars) {
    // keep the first and last bars inside the plot
    pad.left += barW / 2;
    innerW -= barW;
  }
  const xMin = xDomain ? xDomain[0] : Math.min(...xs);
  const xMax = xDomain ? xDomain[1] : Math.max(...xs);
  const xPos = (x) => pad.left + (xMax === xMin ? innerW / 2 : ((x - xMin) / (xMax - xMin)) * innerW);
  const scales = {};
  for (const ser of series) {
    const axis = ser.axis || "left";
    const ys = ser.points.map((p) => p[1]);
    let lo;
    let hi;
    if (ser.zero === false && ys.length) {
      // Fit the data (a loss curve starting at zero would look flat).
      const spread = Math.max(...ys) - Math.min(...ys) || Math.abs(ys[0]) * 0.1 || 1;
      lo = Math.min(...ys) - spread * 0.15;
      hi = Math.max(...ys) + spread * 0.15;
    } else {
      lo = Math.min(0, ...ys);
      const top = Math.max(...ys);
      hi = top > lo ? lo + 4 * niceMax((top - lo) / 4) : lo + 1; // four even, round grid steps
    }
    const prev = scales[axis];
    scales[axis] = prev ? { lo: Math.min(prev.lo, lo), hi: Math.max(prev.hi, hi), format: prev.format } : { lo, hi, format: ser.format };
  }
  const yPos = (axis, y) => {
    const { lo, hi } = scales[axis];
    return pad.top + innerH - ((y - lo) / (hi - lo || 1)) * innerH;
  };
  // grid and y ticks
  for (let i = 0; i <= 4; i += 1) {
    const y = pad.top + (innerH * i) / 4;
    svg.append(s("line", { x1: pad.left - barW / 2, x2: pad.left + innerW + barW / 2, y1: y, y2: y, class: "grid-line" }));
    for (const [axis, { lo, hi, format }] of Object.entries(scales)) {
      const value = hi - ((hi - lo) * i) / 4;
      const left = axis === "left";
      svg.append(
        s(
          "text",
          { x: left ? pad.left - barW / 2 - 6 : pad.left + innerW + 6, y: y + 4, "text-anchor": left ? "end" : "start", class: "axis-label" },
          (format || String)(value),
        ),
      );
    }
  }
  // x ticks: at most 8 (the data's own x values, or whole numbers across a fixed domain)
  const uniqueXs = [...new Set(xs)].sort((a, b) => a - b);
  const tickXs = xDomain
    ? [...new Set(Array.from({ length: 8 }, (_, i) => Math.round(xMin + ((xMax - xMin) * i) / 7)))]
    : uniqueXs;
  const maxTicks = Math.max(2, Math.floor(innerW / 64));
  const every = Math.max(1, Math.ceil(tickXs.length / maxTicks));
  tickXs.forEach((x, i) => {
    if (i % every !== 0 && i !== tickXs.length - 1) return;
    svg.append(s("text", { x: xPos(x), y: height - 8, "text-anchor": "middle", class: "axis-label" }, xLabel(x)));
  });
  for (const ser of series) {
    const axis = ser.axis || "left";
    const title = s("title", {}, ser.name);
    if (bars) {
      const group = s("g", { class: `series ${ser.className}` }, title);
      for (const [x, y] of ser.points) {
        const top = yPos(axis, y);
        group.append(
          s("rect", { x: xPos(x) - barW / 2, y: top, width: barW, height: Math.max(0, pad.top + innerH - top), rx: 1 },
            s("title", {}, `${xLabel(x)}: ${(ser.format || String)(y)}`)),
        );
      }
      svg.append(group);
      continue;
    }
    const d = ser.points.map(([x, y], i) => `${i ? "L" : "M"}${xPos(x).toFixed(1)},${yPos(axis, y).toFixed(1)}`).join("");
    const group = s("g", { class: `series ${ser.className}` }, title, s("path", { d, fill: "none" }));
    for (const [x, y] of ser.points) {
      group.append(s("circle", { cx: xPos(x), cy: yPos(axis, y), r: 3 }, s("title", {}, `${xLabel(x)}: ${(ser.format || String)(y)}`)));
    }
    svg.append(group);
  }
  return svg;
}

/** Draw a chart at its container's width, so text keeps its size on any screen. */
function drawChart(container, series, options = {}) {
  const width = Math.max(320, Math.round(container.clientWidth || 640));
  container.replaceChildren(lineChart(series, { ...options, width }));
}

// ---------- session and routing ----------

function logout(message) {
  state.token = null;
  state.who = "";
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem("embedrec.who");
  sessionStorage.removeItem("embedrec.job");
  stopPolling();
  if (message) toast(message);
  location.hash = "#login";
  route();
}

function currentView() {
  const name = location.hash.replace(/^#/, "");
  if (!state.token) return "login";
  return VIEWS.includes(name) ? name : "data";
}

const loaders = {};

function route() {
  const name = currentView();
  $$(".view").forEach((view) => (view.hidden = view.id !== `view-${name}`));
  $("#nav").hidden = !state.token;
  $("#session").hidden = !state.token;
  $("#session-who").textContent = state.who;
  $$("#nav a").forEach((a) => {
    if (a.getAttribute("href") === `#${name}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  document.title = `${name === "login" ? "Sign in" : $(`#view-${name} h1`).textContent} · embedrec console`;
  if (loaders[name]) loaders[name]();
}

// ---------- login ----------

function initLogin() {
  const view = $("#view-login");
  const form = $("#login-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(view, $("button[type=submit]", form), async () => {
      const email = form.email.value.trim();
      const result = await api("POST", "/api/v1/auth/login", { json: { email, password: form.password.value } });
      state.token = result.access_token;
      state.who = `${email} · ${result.role}`;
      sessionStorage.setItem(TOKEN_KEY, state.token);
      sessionStorage.setItem("embedrec.who", state.who);
      form.reset();
      location.hash = "#data";
      route();
    });
  });
}

// ---------- data ----------

function renderReport(report) {
  const statusKind = { success: "ok", partial: "warn", failed: "bad" }[report.status] || "";
  const issues = (list, label) =>
    table(
      [
        { label: "Row", value: (r) => r.row, num: true },
        { label: "Field", value: (r) => h("code", {}, r.field) },
        { label: "Message", value: (r) => r.message },
      ],
      list,
      { caption: label, empty: `No ${label.toLowerCase()}.` },
    );
  return h(
    "div",
    { class: "card report", "data-testid": "upload-report" },
    h("div", { class: "job-head" }, h("h2", {}, `Report: ${report.kind}`), badge(report.status, statusKind)),
    h(
      "dl",
      { class: "facts" },
      h("div", {}, h("dt", {}, "Accepted"), h("dd", { "data-field": "accepted" }, fmt.int(report.accepted))),
      h("div", {}, h("dt", {}, "Rejected"), h("dd", { "data-field": "rejected" }, fmt.int(report.rejected))),
      h("div", {}, h("dt", {}, "Duplicates"), h("dd", {}, fmt.int(report.duplicates))),
      h("div", {}, h("dt", {}, "Warnings"), h("dd", {}, fmt.int(report.warnings.length))),
      h("div", {}, h("dt", {}, "Upload"), h("dd", {}, h("code", {}, report.upload_id))),
    ),
    h("div", { class: "table-wrap errors" }, issues(report.validation_errors, "Rejected rows")),
    report.warnings.length ? h("div", { class: "table-wrap" }, issues(report.warnings, "Warnings")) : null,
  );
}

function initData() {
  const view = $("#view-data");
  $$(".upload-form", view).forEach((form) => {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const kind = form.dataset.kind;
      guarded(view, $("button[type=submit]", form), async () => {
        const file = form.file.files[0];
        if (!file) throw new ApiError(0, "choose a CSV file first");
        const body = new FormData();
        body.append("file", file, file.name);
        const report = await api("POST", `/api/v1/${kind}`, { form: body });
        $("#upload-report").replaceChildren(renderReport(report));
      });
    });
  });
}

// ---------- training ----------

const training = { timer: null, jobId: null, history: [], total: 0 };

function stopPolling() {
  clearTimeout(training.timer);
  training.timer = null;
}

function renderTrainingChart() {
  const loss = training.history.filter((p) => p.loss !== undefined).map((p) => [p.epoch, p.loss]);
  const ndcg = training.history.filter((p) => p.ndcg !== undefined).map((p) => [p.epoch, p.ndcg]);
  drawChart(
    $("#training-chart"),
      [
        { name: "training loss", className: "loss", points: loss, axis: "left", zero: false, format: (v) => v.toFixed(3) },
        { name: "val NDCG@10", className: "ndcg", points: ndcg, axis: "right", zero: false, format: (v) => v.toFixed(4) },
      ],
      { xLabel: (x) => `epoch ${x}`, height: 260, xDomain: training.total > 1 ? [1, training.total] : null },
  );
}

function renderJob(job) {
  const kind = { completed: "ok", failed: "bad", running: "info", queued: "" }[job.status] || "";
  $("#job-id").textContent = job.job_id;
  const statusBadge = $("#job-status");
  statusBadge.textContent = job.status;
  statusBadge.className = `badge ${kind}`;
  $("#job-progress").value = job.progress;
  $("#job-percent").textContent = `${job.progress}%`;
  training.total = job.total_epochs || training.total;
  $("#job-epoch").textContent = job.total_epochs ? `${job.current_epoch || 0} / ${job.total_epochs}` : "–";
  $("#job-loss").textContent = fmt.num(job.metrics.train_loss);
  $("#job-ndcg").textContent = fmt.num(job.metrics.val_ndcg_10);
  $("#job-version").textContent = job.model_version
    ? `${job.model_version}${job.finished_at ? (job.deployed ? " (deployed)" : " (not deployed)") : ""}`
    : "–";
  $("#job-decision").textContent = job.error || job.decision || "";
  // The status only carries the latest epoch's metrics: keep one point per epoch here.
  if (job.current_epoch && job.metrics.train_loss !== undefined) {
    const point = { epoch: job.current_epoch, loss: job.metrics.train_loss, ndcg: job.metrics.val_ndcg_10 };
    const last = training.history[training.history.length - 1];
    if (last && last.epoch === point.epoch) training.history[training.history.length - 1] = point;
    else training.history.push(point);
  }
  renderTrainingChart();
}

async function pollJob() {
  const view = $("#view-training");
  try {
    const job = await api("GET", `/api/admin/training/status/${encodeURIComponent(training.jobId)}`);
    renderJob(job);
    if (job.finished_at) {
      stopPolling();
      $("#training-job").dataset.finished = "true";
      return;
    }
  } catch (err) {
    showError(view, err);
    if (err.status && err.status < 500) return stopPolling();
  }
  training.timer = setTimeout(pollJob, 1000);
}

// The API lists the model types (GET /api/admin/training/model-types); a type without a label here
// shows under its own name, so a new model type needs no change to the console.
const MODEL_TYPE_LABELS = {
  auto: "Auto (best of the candidates)",
  lightgcn: "LightGCN",
  two_tower: "Two-tower",
  als: "ALS",
  ease: "EASE",
};

async function loadModelTypes() {
  const select = $("#training-form select[name=model_type]");
  if (select.dataset.loaded) return;
  try {
    const answer = await api("GET", "/api/admin/training/model-types");
    select.replaceChildren(
      ...answer.model_types.map((name) => {
        const option = new Option(MODEL_TYPE_LABELS[name] || name, name);
        option.selected = name === answer.default;
        return option;
      }),
    );
    select.dataset.loaded = "true";
  } catch (err) {
    showError($("#view-training"), err); // the default (auto) stays selectable
  }
}

function initTraining() {
  const view = $("#view-training");
  const form = $("#training-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(view, $("button[type=submit]", form), async () => {
      const config = {};
      for (const name of ["epochs", "embedding_dim", "patience"]) {
        if (form[name].value) config[name] = Number(form[name].value);
      }
      const job = await api("POST", "/api/admin/training/trigger", {
        json: { model_type: form.model_type.value, config },
      });
      stopPolling();
      training.jobId = job.job_id;
      sessionStorage.setItem("embedrec.job", job.job_id); // a reload resumes following it
      training.history = [];
      training.total = 0;
      const panel = $("#training-job");
      panel.hidden = false;
      delete panel.dataset.finished;
      renderJob({ ...job, progress: 0, metrics: {}, current_epoch: 0, total_epochs: config.epochs || null });
      pollJob();
    });
  });
}

// ---------- models ----------

function metricCell(model, key) {
  const value = model.metrics[key];
  const base = model.baseline_metrics[key];
  if (value === undefined) return "–";
  return h("span", {}, fmt.num(value), base !== undefined ? h("span", { class: "muted small" }, ` / ${fmt.num(base)}`) : null);
}

async function loadModels() {
  const view = $("#view-models");
  await guarded(view, null, async () => {
    const data = await api("GET", "/api/v1/models");
    $("#models-table").replaceChildren(
      table(
        [
          {
            label: "Version",
            value: (m) => h("span", {}, h("code", {}, m.version), " ", m.active ? badge("active", "ok") : null),
          },
          { label: "Type", value: (m) => m.model_type || "–" },
          { label: "Status", value: (m) => m.status || "–" },
          { label: "NDCG@10 / baseline", value: (m) => metricCell(m, "ndcg_10"), num: true },
          { label: "Recall@20 / baseline", value: (m) => metricCell(m, "recall_20"), num: true },
          { label: "Created", value: (m) => fmt.date(m.created_at) },
          { label: "Decision", value: (m) => h("span", { class: "small" }, m.decision || "–") },
          {
            label: "Action",
            value: (m) => {
              if (m.active) return "";
              const active = data.models.find((x) => x.active);
              const older = active && (m.created_at || "") < (active.created_at || "");
              const label = older ? "Roll back" : "Activate";
              return h("button", {
                type: "button",
                "aria-label": `${label} ${m.version}`,
                onclick: (event) =>
                  guarded(view, event.currentTarget, async () => {
                    await api("POST", `/api/v1/models/${encodeURIComponent(m.version)}/activate`);
                    toast(`${m.version} is now active`);
                    await loadModels();
                  }),
              }, label);
            },
          },
        ],
        data.models,
        { empty: "No model yet: upload data and start a training run." },
      ),
    );
  });
}

// ---------- recommendations ----------

function initRecommendations() {
  const view = $("#view-recommendations");
  const form = $("#recs-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(view, $("button[type=submit]", form), async () => {
      const body = { user_id: form.user_id.value.trim(), count: Number(form.count.value || 10) };
      const filters = {};
      if (form.category.value.trim()) filters.category = form.category.value.trim();
      if (form.min_price.value) filters.min_price = Number(form.min_price.value);
      if (form.max_price.value) filters.max_price = Number(form.max_price.value);
      if (Object.keys(filters).length) body.filters = filters;
      const result = await api("POST", "/api/v1/recommendations", { json: body });
      const meta = result.metadata;
      $("#recs-result").replaceChildren(
        h(
          "div",
          { class: "card", "data-testid": "recs" },
          h(
            "dl",
            { class: "facts" },
            h("div", {}, h("dt", {}, "Algorithm"), h("dd", {}, meta.algorithm)),
            h("div", {}, h("dt", {}, "Model"), h("dd", {}, meta.model_version || "–")),
            h("div", {}, h("dt", {}, "Latency"), h("dd", {}, `${fmt.num(meta.latency_ms, 1)} ms`)),
            h("div", {}, h("dt", {}, "Cache"), h("dd", {}, meta.cache_hit ? "hit" : "miss")),
            h("div", {}, h("dt", {}, "A/B test"), h("dd", {}, meta.ab_test ? JSON.stringify(meta.ab_test) : "–")),
            h("div", {}, h("dt", {}, "Request id"), h("dd", {}, h("code", {}, meta.recommendation_id))),
          ),
          h(
            "div",
            { class: "table-wrap" },
            table(
              [
                { label: "#", value: (r) => result.recommendations.indexOf(r) + 1, num: true },
                { label: "Item", value: (r) => h("span", {}, h("strong", {}, r.title), h("br"), h("code", { class: "small" }, r.item_id)) },
                { label: "Category", value: (r) => r.category },
                { label: "Price", value: (r) => fmt.money(r.price), num: true },
                { label: "Score", value: (r) => fmt.num(r.score), num: true },
                { label: "Reason", value: (r) => r.reason },
              ],
              result.recommendations,
              { empty: "No items match these filters." },
            ),
          ),
        ),
      );
    });
  });
}

// ---------- analytics ----------

let analyticsRequest = 0;

async function loadAnalytics() {
  const view = $("#view-analytics");
  const days = $("#analytics-days").value;
  const request = ++analyticsRequest;
  await guarded(view, null, async () => {
    const [summary, top] = await Promise.all([
      api("GET", `/api/v1/analytics/summary?days=${days}`),
      api("GET", `/api/v1/analytics/top-products?days=${days}&limit=10`),
    ]);
    if (request !== analyticsRequest) return; // the period changed while this was loading
    $("#view-analytics").dataset.days = days;
    const kpi = (label, value, sub) =>
      h("div", { class: "card kpi" }, h("span", { class: "kpi-label" }, label), h("strong", {}, value), h("span", { class: "muted small" }, sub));
    $("#analytics-kpis").replaceChildren(
      kpi("Items served", fmt.int(summary.recommendations_served), plural(summary.recommendation_requests, "request")),
      kpi("Click-through rate", fmt.pct(summary.click_through_rate), plural(summary.clicks, "click")),
      kpi("Conversion rate", fmt.pct(summary.conversion_rate), plural(summary.conversions, "purchase")),
      kpi("Revenue", fmt.money(summary.revenue), `${summary.start_date} – ${summary.end_date}`),
    );
    const daily = summary.daily;
    const dayX = (d) => Date.parse(`${d.date}T00:00:00Z`) / 86400000;
    const xLabel = (x) => new Date(x * 86400000).toISOString().slice(5, 10);
    const charts = [
      ["Items served", "recommendations_served", "served", (v) => fmt.int(Math.round(v)), true],
      ["Click-through rate", "click_through_rate", "ctr", (v) => `${(100 * v).toFixed(1)}%`, false],
      ["Conversion rate", "conversion_rate", "conv", (v) => `${(100 * v).toFixed(1)}%`, false],
      ["Revenue", "revenue", "revenue", (v) => `$${Math.round(v)}`, true],
    ];
    const holder = $("#analytics-charts");
    holder.replaceChildren(
      ...charts.map(([title]) =>
        h("figure", { class: "card chart-figure" }, h("figcaption", {}, title),
          h("div", { class: "chart", role: "img", "aria-label": `${title} per day` })),
      ),
    );
    $$(".chart", holder).forEach((node, i) => {
      const [title, key, className, format, bars] = charts[i];
      const points = daily.map((d) => [dayX(d), d[key]]);
      drawChart(node, [{ name: title, className, points, format }], { xLabel, bars, height: 200 });
    });
    $("#analytics-top").replaceChildren(
      table(
        [
          { label: "Product", value: (p) => h("span", {}, p.title || "–", " ", h("code", { class: "small" }, p.item_id)) },
          { label: "Recommended", value: (p) => fmt.int(p.recommendation_count), num: true },
          { label: "CTR", value: (p) => fmt.pct(p.click_through_rate), num: true },
          { label: "Conversion", value: (p) => fmt.pct(p.conversion_rate), num: true },
          { label: "Revenue", value: (p) => fmt.money(p.revenue), num: true },
        ],
        top.top_products,
        { empty: "No recommendations served in this period." },
      ),
    );
  });
}

// ---------- A/B tests ----------

async function showAbResults(test) {
  const view = $("#view-ab-tests");
  await guarded(view, null, async () => {
    const result = await api("GET", `/api/admin/ab-tests/${encodeURIComponent(test.id)}/results`);
    const lift = (v) => (v.lift ? `${fmt.pct(v.lift.relative_lift)} (p=${fmt.num(v.lift.p_value, 3)})` : "control");
    $("#ab-results").replaceChildren(
      h(
        "div",
        { class: "card" },
        h("div", { class: "job-head" }, h("h2", {}, `Results: ${test.name}`),
          result.winner ? badge(`winner: ${result.winner}`, "ok") : badge("no winner yet")),
        h("p", { class: "muted" }, `Metric: ${test.metric} · significance level α = ${result.alpha}`),
        h(
          "div",
          { class: "table-wrap" },
          table(
            [
              { label: "Variant", value: (v) => h("span", {}, v.id, " ", h("code", { class: "small" }, v.model_version)) },
              { label: "Traffic", value: (v) => `${v.traffic}%`, num: true },
              { label: "Impressions", value: (v) => fmt.int(v.impressions), num: true },
              { label: "Clicks", value: (v) => fmt.int(v.clicks), num: true },
              { label: "CTR", value: (v) => fmt.pct(v.click_through_rate), num: true },
              { label: "Conversion", value: (v) => fmt.pct(v.conversion_rate), num: true },
              { label: "Revenue", value: (v) => fmt.money(v.revenue), num: true },
              { label: "Lift", value: lift, num: true },
              { label: "Significant", value: (v) => (v.lift ? (v.lift.significant ? badge("yes", "ok") : "no") : "–") },
            ],
            result.variants,
          ),
        ),
      ),
    );
  });
}

async function loadAbTests() {
  const view = $("#view-ab-tests");
  await guarded(view, null, async () => {
    const data = await api("GET", "/api/admin/ab-tests");
    $("#ab-list").replaceChildren(
      table(
        [
          { label: "Name", value: (t) => t.name },
          { label: "Status", value: (t) => badge(t.status, t.status === "running" ? "info" : "") },
          { label: "Metric", value: (t) => t.metric },
          { label: "Variants", value: (t) => t.variants.map((v) => `${v.id} ${v.model_version} (${v.traffic}%)`).join(", ") },
          { label: "Ends", value: (t) => fmt.date(t.stopped_at || t.ends_at) },
          {
            label: "Actions",
            value: (t) =>
              h(
                "span",
                { class: "actions" },
                h("button", { type: "button", onclick: () => showAbResults(t) }, "Results"),
                t.status === "running"
                  ? h("button", {
                      type: "button",
                      class: "danger",
                      onclick: (event) => {
                        if (!confirm(`Stop the test "${t.name}"?`)) return;
                        guarded(view, event.currentTarget, async () => {
                          await api("POST", `/api/admin/ab-tests/${encodeURIComponent(t.id)}/stop`);
                          await loadAbTests();
                        });
                      },
                    }, "Stop")
                  : null,
              ),
          },
        ],
        data.ab_tests,
        { empty: "No A/B tests. Create one through POST /api/admin/ab-tests." },
      ),
    );
  });
}

// ---------- API keys ----------

async function loadKeys() {
  const view = $("#view-api-keys");
  await guarded(view, null, async () => {
    const data = await api("GET", "/api/v1/api-keys");
    $("#keys-table").replaceChildren(
      table(
        [
          { label: "Name", value: (k) => k.name },
          { label: "Key", value: (k) => h("code", {}, `${k.key_prefix}…`) },
          { label: "Permissions", value: (k) => k.permissions.join(", ") },
          { label: "Status", value: (k) => badge(k.status, k.status === "active" ? "ok" : "bad") },
          { label: "Created", value: (k) => fmt.date(k.created_at) },
          {
            label: "Action",
            value: (k) =>
              k.status === "active"
                ? h("button", {
                    type: "button",
                    class: "danger",
                    "aria-label": `Revoke ${k.name}`,
                    onclick: (event) => {
                      if (!confirm(`Revoke the key "${k.name}"? Clients using it stop working at once.`)) return;
                      guarded(view, event.currentTarget, async () => {
                        await api("DELETE", `/api/v1/api-keys/${encodeURIComponent(k.id)}`);
                        toast(`Key "${k.name}" revoked`);
                        await loadKeys();
                      });
                    },
                  }, "Revoke")
                : fmt.date(k.revoked_at),
          },
        ],
        data.api_keys,
        { empty: "No API keys yet." },
      ),
    );
  });
}

function initKeys() {
  const view = $("#view-api-keys");
  const form = $("#key-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(view, $("button[type=submit]", form), async () => {
      const permissions = ["read", "write"].filter((p) => form[p].checked);
      const key = await api("POST", "/api/v1/api-keys", { json: { name: form.name.value.trim(), permissions } });
      $("#key-value").value = key.key;
      $("#key-created").hidden = false;
      form.reset();
      await loadKeys();
    });
  });
  $("#key-copy").addEventListener("click", async () => {
    const input = $("#key-value");
    try {
      await navigator.clipboard.writeText(input.value);
    } catch {
      input.select();
      document.execCommand("copy");
    }
    $("#key-copy").textContent = "Copied";
    setTimeout(() => ($("#key-copy").textContent = "Copy"), 2000);
  });
}

// ---------- start ----------

function init() {
  initLogin();
  initData();
  initTraining();
  initRecommendations();
  initKeys();
  loaders.training = loadModelTypes;
  loaders.models = loadModels;
  loaders.analytics = loadAnalytics;
  loaders["ab-tests"] = loadAbTests;
  loaders["api-keys"] = () => {
    $("#key-created").hidden = true; // a new key is shown once, not again on the next visit
    return loadKeys();
  };
  $("#analytics-days").addEventListener("change", loadAnalytics);
  $("#logout").addEventListener("click", () => logout("Signed out."));
  const lastJob = sessionStorage.getItem("embedrec.job");
  if (state.token && lastJob) {
    training.jobId = lastJob;
    $("#training-job").hidden = false;
    pollJob();
  }
  window.addEventListener("hashchange", route);
  route();
}

init();
