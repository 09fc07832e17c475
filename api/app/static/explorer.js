// Metric explorer: the page state lives in the URL; each state is one POST /v1/query (plus one
// for the previous period when comparing), drawn with uPlot and listed in a table. What is
// plotted is exposed as `window.northstarChart` and the chart's `data-series` attribute, so
// tests compare it with the API's answer.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("explorer-config").textContent);
  const $ = (id) => document.getElementById(id);
  const el = {
    grain: $("grain"), range: $("range"), start: $("start"), end: $("end"), slice: $("slice"),
    metric2: $("metric2"), compare: $("compare"), status: $("chart-status"), chart: $("chart"),
    filterDim: $("filter-dim"), filterValues: $("filter-values"), filterAdd: $("filter-add"),
    filterList: $("filter-list"), table: $("result-table"),
  };
  const HEADERS = { "Content-Type": "application/json", "X-Requested-With": "northstar" };
  const MAX_SLICES = 8;
  const DAY = 86400000;
  let plot = null;
  let generation = 0;

  // -- state <-> URL ------------------------------------------------------------------------
  function readState() {
    const p = new URLSearchParams(location.search);
    const grain = p.get("grain");
    return {
      grain: grain === "total" || config.grains.includes(grain) ? grain : (config.grains.includes("day") ? "day" : config.grains[0]),
      range: p.get("range") || "90d",
      start: p.get("start") || "",
      end: p.get("end") || "",
      slice: config.slices.includes(p.get("slice")) ? p.get("slice") : "",
      metric2: p.get("metric2") || "",
      compare: p.get("compare") === "1",
      filters: p.getAll("f").map((f) => [f.slice(0, f.indexOf("=")), f.slice(f.indexOf("=") + 1)])
        .filter(([d]) => config.slices.includes(d)),
      alert: p.get("alert") || "",
    };
  }

  function writeState(state) {
    const p = new URLSearchParams();
    p.set("grain", state.grain);
    p.set("range", state.range);
    if (state.range === "custom") { if (state.start) p.set("start", state.start); if (state.end) p.set("end", state.end); }
    if (state.slice) p.set("slice", state.slice);
    if (state.metric2) p.set("metric2", state.metric2);
    if (state.compare) p.set("compare", "1");
    for (const [d, v] of state.filters) p.append("f", `${d}=${v}`);
    if (state.alert) p.set("alert", state.alert);
    const url = `${location.pathname}?${p}`;
    if (url !== location.pathname + location.search) history.pushState(null, "", url);
  }

  // -- dates (UTC, YYYY-MM-DD) --------------------------------------------------------------
  const parseDay = (s) => new Date(`${s.slice(0, 10)}T00:00:00Z`);
  const fmtDay = (d) => d.toISOString().slice(0, 10);
  const addDays = (d, n) => new Date(d.getTime() + n * DAY);

  function bounds(state) {
    if (state.range === "custom") return { start: state.start || null, end: state.end || null };
    if (state.range === "all" || !config.newest) return { start: null, end: null };
    const end = addDays(parseDay(config.newest), 1);
    if (state.range === "quarter") {
      const last = parseDay(config.newest);
      const q = new Date(Date.UTC(last.getUTCFullYear(), Math.floor(last.getUTCMonth() / 3) * 3, 1));
      return { start: fmtDay(q), end: fmtDay(end) };
    }
    const days = { "7d": 7, "28d": 28, "90d": 90 }[state.range] || 90;
    return { start: fmtDay(addDays(end, -days)), end: fmtDay(end) };
  }

  function bucketStart(d, grain) {
    const y = d.getUTCFullYear(), m = d.getUTCMonth();
    if (grain === "week") return addDays(d, -((d.getUTCDay() + 6) % 7));
    if (grain === "month") return new Date(Date.UTC(y, m, 1));
    if (grain === "quarter") return new Date(Date.UTC(y, Math.floor(m / 3) * 3, 1));
    if (grain === "year") return new Date(Date.UTC(y, 0, 1));
    return d;
  }

  function nextBucket(d, grain) {
    const y = d.getUTCFullYear(), m = d.getUTCMonth();
    if (grain === "week") return addDays(d, 7);
    if (grain === "month") return new Date(Date.UTC(y, m + 1, 1));
    if (grain === "quarter") return new Date(Date.UTC(y, m + 3, 1));
    if (grain === "year") return new Date(Date.UTC(y + 1, 0, 1));
    return addDays(d, 1);
  }

  // Every bucket of the range, so a bucket with no rows is a gap in the line, not a missing x.
  function buckets(grain, start, end, seen) {
    const days = seen.map(parseDay).sort((a, b) => a - b);
    const first = start ? bucketStart(parseDay(start), grain) : days[0];
    const stop = end ? parseDay(end) : (days.length ? addDays(days[days.length - 1], 1) : null);
    const out = [];
    if (!first || !stop) return out;
    for (let d = first; d < stop && out.length < 5000; d = nextBucket(d, grain)) out.push(fmtDay(d));
    return out;
  }

  // -- the request --------------------------------------------------------------------------
  function request(state, range) {
    const time = state.grain === "total" ? null : `metric_time__${state.grain}`;
    const metrics = [config.metric];
    if (state.metric2 && !state.slice) metrics.push(state.metric2);
    const byDim = new Map();
    for (const [d, v] of state.filters) byDim.set(d, [...(byDim.get(d) || []), v]);
    const body = { metrics, group_by: [time, state.slice || null].filter(Boolean) };
    if (byDim.size) body.where = [...byDim].map(([field, values]) => ({ field, op: "in", values }));
    if (range.start) body.start = range.start;
    if (range.end) body.end = range.end;
    body.order_by = time ? [time] : (state.slice ? [`-${config.metric}`] : []);
    if (!body.order_by.length) delete body.order_by;
    return body;
  }

  async function fetchAll(body) {
    let offset = 0, columns = null, rows = [], meta = null;
    for (;;) {
      const response = await fetch("/v1/query", { method: "POST", headers: HEADERS, credentials: "same-origin",
        body: JSON.stringify(offset ? { ...body, offset } : body) });
      const payload = await response.json();
      if (!response.ok) throw new Error(payload.error ? payload.error.message : `HTTP ${response.status}`);
      columns = payload.columns; rows = rows.concat(payload.rows); meta = payload.meta;
      if (payload.meta.next_offset == null) return { columns, rows, meta };
      offset = payload.meta.next_offset;
    }
  }

  // -- copy as ------------------------------------------------------------------------------
  const shellQuote = (s) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`);
  const sqlString = (v) => (typeof v === "number" ? String(v) : `'${String(v).replace(/'/g, "''")}'`);

  function copyAs(body) {
    $("copy-json").textContent = `POST /v1/query\nContent-Type: application/json\n\n${JSON.stringify(body, null, 2)}`;
    const cli = ["northstar", "query", "--metrics", body.metrics.join(",")];
    if (body.group_by.length) cli.push("--group-by", body.group_by.join(","));
    for (const w of body.where || []) {
      cli.push("--where", `{{ Dimension('${w.field}') }} in (${w.values.map(sqlString).join(", ")})`);
    }
    if (body.start) cli.push("--start", body.start);
    if (body.end) cli.push("--end", body.end);
    if (body.order_by) cli.push("--order-by", body.order_by.join(","));
    $("copy-cli").textContent = cli.map(shellQuote).join(" ");
    const where = (body.where || []).map((w) => `${w.field} IN (${w.values.map(sqlString).join(", ")})`);
    if (body.start) where.push(`metric_time__day >= '${body.start}'`);
    if (body.end) where.push(`metric_time__day < '${body.end}'`);
    const order = (body.order_by || []).map((o) => (o.startsWith("-") ? `${o.slice(1)} DESC` : o));
    $("copy-sql").textContent = `SELECT ${[...body.group_by, ...body.metrics].join(", ")}\nFROM semantic.metrics`
      + (where.length ? `\nWHERE ${where.join("\n  AND ")}` : "") + (order.length ? `\nORDER BY ${order.join(", ")}` : "");
  }

  document.querySelectorAll("[data-copy]").forEach((button) => button.addEventListener("click", async () => {
    const text = $(button.dataset.copy).textContent;
    try { await navigator.clipboard.writeText(text); button.textContent = "Copied"; }
    catch (e) { window.getSelection().selectAllChildren($(button.dataset.copy)); button.textContent = "Selected: press Ctrl+C"; }
    setTimeout(() => { button.textContent = "Copy"; }, 2000);
  }));

  // -- downloads: the same request, as CSV or Parquet ------------------------------------------
  async function download(format) {
    const body = window.northstarChart && window.northstarChart.request;
    if (!body) return;
    const response = await fetch(`/v1/query?format=${format}`, { method: "POST", headers: HEADERS,
      credentials: "same-origin", body: JSON.stringify(body) });
    if (!response.ok) { el.status.textContent = `Download failed: HTTP ${response.status}`; return; }
    const url = URL.createObjectURL(await response.blob());
    const a = document.createElement("a");
    a.href = url; a.download = `${config.metric}.${format}`;
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
  $("download-csv").addEventListener("click", () => download("csv"));
  $("download-parquet").addEventListener("click", () => download("parquet"));

  // -- table --------------------------------------------------------------------------------
  function fmt(v) {
    if (v === null || v === undefined) return null;
    if (typeof v === "number") return Number.isInteger(v) ? v.toLocaleString("en-US") : v.toLocaleString("en-US", { maximumFractionDigits: 4 });
    return String(v);
  }

  function renderTable(columns, rows) {
    const head = el.table.tHead, tbody = el.table.tBodies[0];
    head.replaceChildren(); tbody.replaceChildren();
    const tr = head.insertRow();
    for (const c of columns) {
      const th = document.createElement("th"); th.scope = "col"; th.textContent = c.name;
      if (["integer", "float", "double", "decimal", "number", "bigint"].includes(c.type)) th.className = "num";
      tr.appendChild(th);
    }
    for (const row of rows) {
      const r = tbody.insertRow();
      row.forEach((v, i) => {
        const td = r.insertCell();
        const text = fmt(v);
        if (text === null) { td.textContent = "—"; td.className = "null"; td.title = "no value"; td.setAttribute("aria-label", "no value"); }
        else { td.textContent = text; if (typeof v === "number") td.className = "num"; }
      });
    }
  }

  // -- chart --------------------------------------------------------------------------------
  function color(i) { return getComputedStyle(document.documentElement).getPropertyValue(`--series-${(i % 8) + 1}`).trim(); }
  function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  function seriesFromRows(state, result, previous, alerts) {
    const names = result.columns.map((c) => c.name);
    const timeAt = state.grain === "total" ? -1 : 0;
    const sliceAt = state.slice ? names.indexOf(state.slice) : -1;
    const metricAt = names.indexOf(config.metric);
    const metric2At = state.metric2 ? names.indexOf(state.metric2) : -1;
    const key = (v) => (v === null ? "(no value)" : String(v));
    if (timeAt < 0) {
      // No time: one bar per slice value (or one bar for the whole range).
      const x = result.rows.map((r) => (sliceAt >= 0 ? key(r[sliceAt]) : config.label));
      const series = [{ label: config.label, metric: config.metric, values: result.rows.map((r) => r[metricAt]) }];
      return { kind: "bar", x, series };
    }
    const range = bounds(state);
    const x = buckets(state.grain, range.start, range.end, result.rows.map((r) => r[0]));
    const index = new Map(x.map((d, i) => [d, i]));
    const column = (rows, at, keep) => {
      const values = x.map(() => null);
      for (const r of rows) if (keep(r) && index.has(String(r[0]).slice(0, 10))) values[index.get(String(r[0]).slice(0, 10))] = r[at];
      return values;
    };
    let series;
    if (sliceAt >= 0) {
      const totals = new Map();
      for (const r of result.rows) totals.set(key(r[sliceAt]), (totals.get(key(r[sliceAt])) || 0) + (Number(r[metricAt]) || 0));
      const top = [...totals].sort((a, b) => b[1] - a[1]).slice(0, MAX_SLICES).map(([k]) => k);
      series = top.map((value) => ({ label: value, metric: config.metric, slice: value,
        values: column(result.rows, metricAt, (r) => key(r[sliceAt]) === value) }));
      series.hidden = totals.size - top.length;
    } else {
      series = [{ label: config.label, metric: config.metric, values: column(result.rows, metricAt, () => true) }];
      if (metric2At >= 0) {
        const label2 = (config.metrics.find((m) => m.name === state.metric2) || {}).label || state.metric2;
        series.push({ label: label2, metric: state.metric2, axis: 2, values: column(result.rows, metric2At, () => true) });
      }
      if (previous) {
        // The previous period, bucket by bucket: its i-th bucket under this period's i-th.
        const prevNames = previous.columns.map((c) => c.name);
        const prevRange = previousRange(range);
        const px = buckets(state.grain, prevRange.start, prevRange.end, previous.rows.map((r) => r[0]));
        const byDay = new Map(previous.rows.map((r) => [String(r[0]).slice(0, 10), r[prevNames.indexOf(config.metric)]]));
        series.push({ label: `${config.label} (previous period)`, metric: config.metric, previous: true,
          values: x.map((_, i) => (i < px.length && byDay.has(px[i]) ? byDay.get(px[i]) : null)) });
      }
      if (alerts && alerts.length) {
        const at = new Map(alerts.map((a) => [a.date.slice(0, 10), a]));
        series.push({ label: "expected (low)", band: "low", values: x.map((d) => (at.has(d) ? at.get(d).lower_bound : null)) });
        series.push({ label: "expected (high)", band: "high", values: x.map((d) => (at.has(d) ? at.get(d).upper_bound : null)) });
      }
    }
    return { kind: "line", x, series };
  }

  function previousRange(range) {
    const start = parseDay(range.start), end = parseDay(range.end);
    const length = Math.round((end - start) / DAY);
    return { start: fmtDay(addDays(start, -length)), end: range.start };
  }

  function draw(shape) {
    if (plot) { plot.destroy(); plot = null; }
    el.chart.replaceChildren();
    const width = Math.max(el.chart.parentElement.clientWidth - 16, 300);
    const axisStroke = cssVar("--muted"), grid = { stroke: cssVar("--line"), width: 1 };
    const hasRight = shape.series.some((s) => s.axis === 2);
    const opts = {
      width, height: 340, legend: { live: true },
      scales: { x: shape.kind === "bar" ? { time: false, range: [-0.5, shape.x.length - 0.5] } : { time: true } },
      axes: [
        shape.kind === "bar"
          ? { stroke: axisStroke, grid, splits: () => shape.x.map((_, i) => i), values: (u, splits) => splits.map((i) => shape.x[i] ?? "") }
          : { stroke: axisStroke, grid },
        { stroke: axisStroke, grid, size: 70 },
      ],
      series: [{ label: shape.kind === "bar" ? (readState().slice || "") : "period",
        value: shape.kind === "bar" ? (u, i) => (i == null ? "" : shape.x[i]) : (u, v) => (v == null ? "" : fmtDay(new Date(v * 1000))) }],
      bands: [],
    };
    if (shape.kind !== "bar") opts.tzDate = (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC");
    if (hasRight) { opts.scales.y2 = { auto: true }; opts.axes.push({ scale: "y2", side: 1, stroke: axisStroke, grid: { show: false }, size: 70 }); }
    shape.series.forEach((s, i) => {
      const stroke = s.band ? cssVar("--muted") : color(i);
      const spec = { label: s.label, stroke, width: s.band ? 1 : 2, spanGaps: false,
        value: (u, v) => (v == null ? "no value" : fmt(v)) };
      if (s.axis === 2) spec.scale = "y2";
      if (s.previous) spec.dash = [6, 4];
      if (s.band) { spec.dash = [2, 3]; spec.points = { show: true, size: 6 }; }
      if (shape.kind === "bar") { spec.paths = uPlot.paths.bars({ size: [0.6, 80] }); spec.fill = color(i); spec.points = { show: false }; }
      opts.series.push(spec);
    });
    const high = shape.series.findIndex((s) => s.band === "high"), low = shape.series.findIndex((s) => s.band === "low");
    if (high >= 0 && low >= 0) {
      opts.bands.push({ series: [high + 1, low + 1], fill: cssVar("--band") });
      // An alert's expected band exists on its day only: drawn as a shaded bar from low to high.
      opts.hooks = { draw: [(u) => {
        const ctx = u.ctx;
        ctx.save();
        ctx.fillStyle = cssVar("--band"); ctx.strokeStyle = cssVar("--muted"); ctx.lineWidth = 1;
        u.data[0].forEach((x, i) => {
          const lo = u.data[low + 1][i], hi = u.data[high + 1][i];
          if (lo == null || hi == null) return;
          const left = u.valToPos(x, "x", true) - 7, top = u.valToPos(hi, "y", true), bottom = u.valToPos(lo, "y", true);
          ctx.fillRect(left, top, 14, bottom - top);
          ctx.strokeRect(left, top, 14, bottom - top);
        });
        ctx.restore();
      }] };
    }
    const xs = shape.kind === "bar" ? shape.x.map((_, i) => i) : shape.x.map((d) => parseDay(d).getTime() / 1000);
    plot = new uPlot(opts, [xs, ...shape.series.map((s) => s.values)], el.chart);
  }

  async function alertsFor(range) {
    const p = new URLSearchParams({ metric: config.metric });
    if (range.start) p.set("since", range.start);
    if (range.end) p.set("until", range.end);
    const response = await fetch(`/v1/alerts?${p}`, { headers: HEADERS, credentials: "same-origin" });
    return response.ok ? (await response.json()).alerts : [];
  }

  async function load() {
    const state = readState();
    const mine = ++generation;
    syncControls(state);
    const range = bounds(state);
    const body = request(state, range);
    copyAs(body);
    el.status.textContent = "Loading…";
    el.chart.setAttribute("aria-busy", "true");
    try {
      const comparing = state.compare && !state.slice && state.grain !== "total" && range.start && range.end;
      const [result, previous, alerts] = await Promise.all([
        fetchAll(body),
        comparing ? fetchAll({ ...request(state, previousRange(range)), metrics: [config.metric] }) : null,
        state.alert && state.grain === "day" ? alertsFor(range) : null,
      ]);
      if (mine !== generation) return;
      const shape = seriesFromRows(state, result, previous, alerts);
      window.northstarChart = { request: body, columns: result.columns, rows: result.rows, meta: result.meta,
        kind: shape.kind, x: shape.x, series: shape.series };
      el.chart.dataset.series = JSON.stringify({ kind: shape.kind, x: shape.x, series: shape.series });
      el.chart.dataset.state = location.search;
      draw(shape);
      renderTable(result.columns, result.rows);
      const notes = [`${result.rows.length} rows`, `build ${result.meta.build_id}`,
        result.meta.cached ? "cached" : `${Math.round(result.meta.elapsed_ms)} ms`,
        `data to ${String(result.meta.newest_metric_time || "—").slice(0, 10)}`];
      if (result.meta.tests_passed === false) notes.push("dbt tests FAILING on these models");
      if (shape.series.hidden) notes.push(`top ${MAX_SLICES} slices drawn, ${shape.series.hidden} more in the table`);
      if (state.metric2 && state.slice) notes.push("second metric is off while slicing");
      if (state.compare && !comparing) notes.push("the previous period needs a time grain, no slice and a bounded range");
      if (!result.rows.length) notes.unshift("No rows for this choice");
      el.status.textContent = notes.join(" · ");
    } catch (error) {
      if (mine !== generation) return;
      window.northstarChart = { request: body, error: String(error.message || error) };
      if (plot) { plot.destroy(); plot = null; }
      el.chart.replaceChildren();
      el.status.textContent = `The query was refused: ${error.message || error}`;
    } finally {
      if (mine === generation) { el.chart.setAttribute("aria-busy", "false"); el.chart.dataset.ready = String(generation); }
    }
  }

  // -- controls -----------------------------------------------------------------------------
  function syncControls(state) {
    el.grain.value = state.grain;
    el.range.value = state.range;
    const range = bounds(state);
    el.start.value = range.start || ""; el.end.value = range.end || "";
    el.slice.value = state.slice;
    el.metric2.value = state.metric2;
    el.metric2.disabled = Boolean(state.slice);
    el.compare.checked = state.compare;
    el.filterList.replaceChildren();
    for (const [d, v] of state.filters) {
      const li = document.createElement("li");
      li.textContent = `${d} = ${v}`;
      const remove = document.createElement("button");
      remove.type = "button"; remove.textContent = "×"; remove.setAttribute("aria-label", `Remove filter ${d} = ${v}`);
      remove.addEventListener("click", () => change((s) => { s.filters = s.filters.filter(([a, b]) => a !== d || b !== v); }));
      li.appendChild(remove);
      el.filterList.appendChild(li);
    }
  }

  function change(mutate) {
    const state = readState();
    mutate(state);
    writeState(state);
    load();
  }

  el.grain.addEventListener("change", () => change((s) => { s.grain = el.grain.value; }));
  el.range.addEventListener("change", () => change((s) => {
    s.range = el.range.value;
    if (s.range === "custom") { s.start = el.start.value; s.end = el.end.value; }
  }));
  for (const input of [el.start, el.end]) {
    input.addEventListener("change", () => change((s) => { s.range = "custom"; s.start = el.start.value; s.end = el.end.value; }));
  }
  el.slice.addEventListener("change", () => change((s) => { s.slice = el.slice.value; }));
  el.metric2.addEventListener("change", () => change((s) => { s.metric2 = el.metric2.value; }));
  el.compare.addEventListener("change", () => change((s) => { s.compare = el.compare.checked; }));
  $("controls").addEventListener("submit", (e) => e.preventDefault());

  el.filterDim.addEventListener("change", async () => {
    const dim = el.filterDim.value;
    el.filterValues.replaceChildren(); el.filterValues.disabled = true; el.filterAdd.disabled = true;
    if (!dim) return;
    try {
      const values = await fetchAll({ metrics: [config.metric], group_by: [dim], order_by: [dim], limit: 500 });
      for (const [v] of values.rows) {
        if (v === null) continue;
        const option = document.createElement("option"); option.value = option.textContent = String(v);
        el.filterValues.appendChild(option);
      }
      el.filterValues.disabled = false; el.filterAdd.disabled = false;
      el.filterValues.dataset.dimension = dim;
    } catch (error) { el.status.textContent = `Cannot list ${dim}: ${error.message}`; }
  });
  el.filterAdd.addEventListener("click", () => {
    const dim = el.filterValues.dataset.dimension;
    const chosen = Array.from(el.filterValues.selectedOptions).map((o) => o.value);
    if (!dim || !chosen.length) return;
    change((s) => { for (const v of chosen) if (!s.filters.some(([a, b]) => a === dim && b === v)) s.filters.push([dim, v]); });
  });

  window.addEventListener("popstate", load);
  let resizeTimer = null;
  window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => plot && plot.setSize({ width: Math.max(el.chart.parentElement.clientWidth - 16, 300), height: 340 }), 150); });
  load();
})();
