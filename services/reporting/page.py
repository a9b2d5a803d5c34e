"""The dashboard page, its script and its style: static text the service serves itself."""

from __future__ import annotations

import json
from html import escape

from services.reporting.charts import LABELS, LANGS, Lang, label

CHARTS = ("months", "opds", "procurement_types", "vendor_classes", "content_classes", "funnel")
"""The dashboard's charts, in page order; each is served at /dashboard/charts/<name>.svg."""

# Served with a policy that lets the page load nothing but its own script, style and data.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def html(lang: Lang, refresh_seconds: float) -> str:
    config = {
        "labels": {key: dict(zip(LANGS, pair, strict=True)) for key, pair in LABELS.items()},
        "refresh": refresh_seconds,
        "charts": CHARTS,
        "lang": lang,
    }
    # A JSON block is data, not script; "<" is escaped so nothing in it can close the element.
    data = json.dumps(config).replace("<", "\\u003c")
    charts = "".join(f'<figure class="chart" id="chart-{c}"></figure>' for c in CHARTS)
    return f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(label("title", lang))}</title>
<link rel="stylesheet" href="/dashboard/style.css">
<script type="application/json" id="config">{data}</script>
<script src="/dashboard/app.js" defer></script>
</head>
<body>
<header>
<h1 data-label="title">{escape(label("title", lang))}</h1>
<form id="filters">
<label><span data-label="fiscal_year"></span> <select id="fiscal-year"></select></label>
<label><span data-label="opd"></span> <select id="opd"></select></label>
<button type="button" id="language" data-label="language"></button>
</form>
</header>
<main>
<section id="shares" class="tiles"></section>
<h2 data-label="counts"></h2>
<section id="counts" class="tiles small"></section>
<section id="charts" class="charts">{charts}</section>
<p class="updated"><span data-label="updated"></span> <time id="updated"></time></p>
</main>
</body>
</html>
"""


SCRIPT = r"""
"use strict";
const config = JSON.parse(document.getElementById("config").textContent);
const params = new URLSearchParams(location.search);
const state = {
  lang: params.get("lang") || localStorage.getItem("ekatalog.lang") || config.lang,
  year: params.get("fiscal_year") || "",
  opd: params.get("opd") || "",
};
const t = (key) => (config.labels[key] ? config.labels[key][state.lang] : key);
const locale = () => (state.lang === "id" ? "id-ID" : "en-US");
const percent = (v) => v === null ? "\u2013" : new Intl.NumberFormat(locale(),
  {minimumFractionDigits: 2, maximumFractionDigits: 2}).format(v) + "%";
const count = (v) => new Intl.NumberFormat(locale()).format(v);

function query(extra) {
  const q = new URLSearchParams();
  if (state.year) q.set("fiscal_year", state.year);
  if (state.opd) q.set("opd", state.opd);
  for (const [k, v] of Object.entries(extra || {})) q.set(k, v);
  return q.toString();
}

function element(tag, attrs, text) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function fillSelect(select, values, current, allLabel) {
  const options = allLabel === undefined ? [] : [["", allLabel]];
  for (const v of values) options.push([String(v), String(v)]);
  select.replaceChildren(...options.map(([value, text]) => {
    const option = element("option", {value}, text);
    option.selected = value === current;
    return option;
  }));
}

function renderShares(kpis) {
  const tiles = kpis.shares.map((s) => {
    const status = s.meets_target === null ? "none" : s.meets_target ? "met" : "not-met";
    const tile = element("article", {
      class: "tile " + status, "data-kpi": s.id, "data-value": String(s.value),
    });
    tile.append(element("h3", {}, s.label[state.lang]));
    tile.append(element("p", {class: "value"}, percent(s.value)));
    const target = s.target === null ? t("no_target")
      : t("target") + " " + percent(s.target) + " \u00b7 " + t(s.meets_target ? "met" : "not_met");
    tile.append(element("p", {class: "target"}, target));
    tile.title = s.definition;
    return tile;
  });
  document.getElementById("shares").replaceChildren(...tiles);
  const counts = kpis.counts.map((c) => {
    const tile = element("article", {class: "tile", "data-kpi": c.id, "data-value": c.value});
    tile.append(element("h3", {}, c.label[state.lang]));
    tile.append(element("p", {class: "value"}, count(c.value)));
    return tile;
  });
  document.getElementById("counts").replaceChildren(...counts);
}

async function refresh() {
  const filters = await (await fetch("/kpis/filters?" + query())).json();
  const kpis = await (await fetch("/kpis?" + query())).json();
  state.year = String(kpis.fiscal_year);
  const years = filters.fiscal_years.includes(kpis.fiscal_year)
    ? filters.fiscal_years : [kpis.fiscal_year, ...filters.fiscal_years];
  fillSelect(document.getElementById("fiscal-year"), years, state.year);
  fillSelect(document.getElementById("opd"), filters.opds, state.opd, t("all_opds"));
  renderShares(kpis);
  await Promise.all(config.charts.map(async (name) => {
    const response = await fetch(`/dashboard/charts/${name}.svg?` + query({lang: state.lang}));
    document.getElementById("chart-" + name).innerHTML = await response.text();
  }));
  document.getElementById("updated").textContent = new Date().toLocaleTimeString(locale());
  document.body.dataset.fiscalYear = state.year;
  document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
}

function relabel() {
  document.documentElement.lang = state.lang;
  document.title = t("title");
  for (const el of document.querySelectorAll("[data-label]")) el.textContent = t(el.dataset.label);
}

document.getElementById("language").addEventListener("click", () => {
  state.lang = state.lang === "id" ? "en" : "id";
  localStorage.setItem("ekatalog.lang", state.lang);
  relabel();
  refresh();
});
document.getElementById("fiscal-year").addEventListener("change", (e) => {
  state.year = e.target.value; state.opd = ""; refresh();
});
document.getElementById("opd").addEventListener("change", (e) => {
  state.opd = e.target.value; refresh();
});
relabel();
refresh();
setInterval(() => refresh().catch(() => {}), config.refresh * 1000);
"""

STYLE = """
:root { font-family: system-ui, sans-serif; color: #1d2733; background: #f4f6f8; }
body { margin: 0; }
header { background: #0b5a7a; color: #fff; padding: 0.8rem 1rem; }
header h1 { font-size: 1.3rem; margin: 0 0 0.5rem; }
#filters { display: flex; flex-wrap: wrap; gap: 0.6rem; align-items: center; }
#filters select, #filters button { font-size: 1rem; padding: 0.25rem 0.5rem; }
main { padding: 1rem; max-width: 1280px; margin: 0 auto; }
h2 { font-size: 1.1rem; margin: 1.2rem 0 0.5rem; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(210px, 1fr)); gap: 0.75rem; }
.tiles.small { grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); }
.tile { background: #fff; border-radius: 8px; padding: 0.7rem 0.9rem;
  border-left: 6px solid #9aa5b1; }
.tile.met { border-left-color: #2e8540; }
.tile.not-met { border-left-color: #c0392b; }
.tile h3 { font-size: 0.85rem; font-weight: 600; margin: 0; }
.tile .value { font-size: 1.7rem; font-weight: 700; margin: 0.3rem 0; }
.tile .target { font-size: 0.8rem; margin: 0; color: #52606d; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 0.75rem;
  margin-top: 1rem; }
.chart { background: #fff; border-radius: 8px; padding: 0.6rem; margin: 0; }
.chart svg { width: 100%; height: auto; }
.chart-title { font-weight: 700; font-size: 16px; }
.bar rect { fill: #0b5a7a; }
.bar-label, .bar-value, .chart-empty { font-size: 14px; }
.updated { font-size: 0.8rem; color: #52606d; }
@media (max-width: 480px) { .tile .value { font-size: 1.4rem; } header h1 { font-size: 1.1rem; } }
"""
