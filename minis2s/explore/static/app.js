// minis2s explorer: draws the JSON of POST /api/explore in SVG (no library, no network
// beyond this server; a static export embeds the data in #explore-data instead).
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const tip = $("tooltip");

  function el(tag, attrs, parent, text) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function h(tag, cls, parent, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function showTip(evt, text) {
    tip.textContent = text;
    tip.hidden = false;
    const x = Math.min(evt.clientX + 12, window.innerWidth - 200);
    tip.style.left = x + "px";
    tip.style.top = (evt.clientY + 12) + "px";
  }
  function hideTip() { tip.hidden = true; }
  function withTip(node, text) {
    node.addEventListener("mouseenter", (e) => showTip(e, text));
    node.addEventListener("mousemove", (e) => showTip(e, text));
    node.addEventListener("mouseleave", hideTip);
  }
  const fmt = (v) => (v === null || v === undefined) ? "-" :
    (Math.abs(v) >= 0.01 && Math.abs(v) < 1000 ? v.toFixed(3) : v.toExponential(2));

  // a heat map: rows x cols, values[r][c]; colour by value / max (or fixed max)
  function heatmap(parent, rows, cols, values, opts) {
    opts = opts || {};
    const cell = 22, left = 8 + 7 * Math.max(3, ...rows.map((r) => r.length));
    const top = 8 + 6 * Math.max(3, ...cols.map((c) => c.length));
    let max = opts.max || 0;
    if (!max) for (const row of values) for (const v of row) max = Math.max(max, v || 0);
    max = max || 1;
    const W = left + cell * cols.length + 4, H = top + cell * rows.length + 4;
    const s = el("svg", {viewBox: `0 0 ${W} ${H}`, width: W, class: "heatmap " +
      (opts.cls || "")}, parent);
    cols.forEach((c, j) => el("text", {x: 0, y: 0, transform:
      `translate(${left + j * cell + cell / 2 + 4},${top - 4}) rotate(-90)`}, s, c));
    rows.forEach((r, i) => {
      el("text", {x: left - 4, y: top + i * cell + cell / 2 + 4, "text-anchor": "end",
        class: "ylab", "data-row": i}, s, r);
      cols.forEach((c, j) => {
        const v = (values[i] || [])[j] || 0;
        const a = Math.max(0, Math.min(1, v / max));
        const rect = el("rect", {x: left + j * cell, y: top + i * cell, width: cell - 1,
          height: cell - 1, class: "cell", "data-row": i,
          fill: `rgba(${opts.rgb || "200,30,30"},${(0.04 + 0.96 * a).toFixed(3)})`}, s);
        withTip(rect, `${r} ← ${c}: ${fmt(v)}`);
      });
    });
    return s;
  }
  function highlightRow(svgs, i, on) {
    for (const s of svgs) for (const c of s.querySelectorAll(`[data-row="${i}"]`))
      c.classList.toggle("hl", on);
  }

  function beamTree(parent, tree) {
    const nodes = tree.nodes, byStep = {};
    for (const n of nodes) (byStep[n.step] = byStep[n.step] || []).push(n);
    const steps = Object.keys(byStep).map(Number);
    const bw = 74, bh = 30, gx = 22, gy = 6;
    const most = Math.max(...steps.map((s) => byStep[s].length));
    const W = steps.length * (bw + gx) + 4, H = most * (bh + gy) + 4;
    const s = el("svg", {viewBox: `0 0 ${W} ${H}`, width: W, class: "beamtree"}, parent);
    const pos = {}, best = new Set();
    for (let id = tree.best; id !== null && id !== undefined; id = nodes[id].parent)
      best.add(id);
    for (const st of steps) byStep[st].forEach((n, i) => {
      pos[n.id] = [st * (bw + gx) + 2, i * (bh + gy) + 2];
    });
    for (const n of nodes) if (n.parent !== null) {
      const [x0, y0] = pos[n.parent], [x1, y1] = pos[n.id];
      el("path", {d: `M${x0 + bw},${y0 + bh / 2} C${x0 + bw + gx / 2},${y0 + bh / 2} ` +
        `${x1 - gx / 2},${y1 + bh / 2} ${x1},${y1 + bh / 2}`,
        class: "edge " + n.status + (best.has(n.id) ? " best" : "")}, s);
    }
    for (const n of nodes) {
      const [x, y] = pos[n.id];
      const g = el("g", {class: "node " + n.status + (best.has(n.id) ? " best" : ""),
        "data-id": n.id}, s);
      el("rect", {x, y, width: bw, height: bh, rx: 4}, g);
      el("text", {x: x + 4, y: y + 12}, g,
        (n.status === "finished" ? "✓ " : "") + n.token);
      el("text", {x: x + 4, y: y + 25, class: "note"}, g,
        n.step ? n.score.toFixed(2) : "");
      withTip(g, n.step ? `${n.token} (step ${n.step}, ${n.status}): log P ` +
        `${n.log_prob.toFixed(3)}, score ${n.score.toFixed(3)}` : "<bos>: the start");
    }
  }

  // lines on a log scale: series = [{name, values, colour, faded}]
  function lineChart(parent, title, series, xlabel) {
    const W = 340, H = 190, L = 46, B = 28, T = 16;
    const all = series.flatMap((x) => x.values).filter((v) => v > 0);
    const s = el("svg", {viewBox: `0 0 ${W} ${H}`, width: W, class: "chart"}, parent);
    el("text", {x: L, y: 11}, s, title);
    if (!all.length) return s;
    const lo = Math.log10(Math.min(...all)), hi = Math.log10(Math.max(...all)) + 1e-9;
    const n = Math.max(...series.map((x) => x.values.length));
    const X = (i) => L + (W - L - 8) * (n > 1 ? i / (n - 1) : 0.5);
    const Y = (v) => T + (H - T - B) * (1 - (Math.log10(v) - lo) / (hi - lo || 1));
    el("line", {x1: L, y1: H - B, x2: W - 8, y2: H - B, class: "axis"}, s);
    el("line", {x1: L, y1: T, x2: L, y2: H - B, class: "axis"}, s);
    el("text", {x: 2, y: T + 8}, s, Math.pow(10, hi).toExponential(0));
    el("text", {x: 2, y: H - B}, s, Math.pow(10, lo).toExponential(0));
    el("text", {x: L, y: H - 6}, s, xlabel);
    for (const ser of series) {
      const pts = ser.values.map((v, i) => v > 0 ? `${X(i)},${Y(v)}` : null)
        .filter((p) => p);
      el("polyline", {points: pts.join(" "), class: "line" + (ser.faded ? " clipped" : ""),
        stroke: ser.colour, "stroke-dasharray": ser.dash || ""}, s);
      ser.values.forEach((v, i) => {
        if (v > 0 && !ser.faded) withTip(el("circle", {cx: X(i), cy: Y(v), r: 3,
          fill: ser.colour}, s), `${ser.name}, step ${i}: ${fmt(v)}`);
      });
    }
    return s;
  }

  const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"];

  function section(parent, title, note) {
    const d = h("div", "view", parent);
    h("h3", "", d, title);
    if (note) h("p", "note", d, note);
    return d;
  }

  function renderModel(parent, r, settings) {
    const box = h("section", "model", parent);
    h("h2", "", box, r.model);
    const tr = r.translation;
    if (tr) {
      const heat = [];
      for (const [key, label] of [["greedy", "greedy"], ["beam", `beam ${r.beam_size}`]]) {
        const p = h("p", "translation " + key, box);
        h("span", "note", p, label + ": ");
        const toks = [...tr[key].tokens, "<eos>"];
        toks.forEach((t, i) => {
          const sp = h("span", "tok", p, t);
          sp.dataset.row = i;
          if (key === "greedy") {
            sp.addEventListener("mouseenter", () => highlightRow(heat, i, true));
            sp.addEventListener("mouseleave", () => highlightRow(heat, i, false));
          }
          p.appendChild(document.createTextNode(" "));
        });
      }
      for (const w of tr.warnings || []) h("p", "note", box, w);
      if (tr.greedy.attention) {
        const v = section(box, "Attention (greedy output × source)",
          "Hover an output token above to highlight its row.");
        heat.push(heatmap(v, [...tr.greedy.tokens, "<eos>"], tr.source_tokens,
          tr.greedy.attention, {max: 1, cls: "attention"}));
      }
      box.querySelectorAll(".translation.greedy .tok").forEach((x) => heat.push(x));
    }
    if (r.beam_tree) {
      const v = section(box, `Beam tree (width ${r.beam_size}, length penalty ` +
        `${r.length_penalty}): ${r.beam_tree.text}`,
        "Each hypothesis with its score log P / L^α; grey: pruned, ✓: finished, red: chosen.");
      beamTree(v, r.beam_tree);
    }
    const g = r.gradients;
    if (g) {
      const v = section(box, "Connectivity ‖∂log p(y_t)/∂e_s‖",
        "Rows: output tokens y_t; columns: source embeddings, then the decoder's inputs.");
      const rows = g.target_tokens;
      const cols = [...g.source_tokens, ...g.decoder_input_tokens.map((t) => "→" + t)];
      const vals = g.source.map((row, t) => [...row, ...g.decoder_inputs[t]]);
      heatmap(v, rows, cols, vals, {cls: "connectivity", rgb: "30,90,200"});
      const f = g.flow;
      const fv = section(box, "Gradient flow ‖∂L/∂h_t‖ for this sentence",
        `loss ${fmt(f.loss)}, gradient norm ${fmt(f.grad_norm)}` + (f.clip ?
          `; clipping at ${f.clip} scales it by ${fmt(f.clip_factor)} (faded)` : ""));
      for (const side of ["encoder", "decoder"]) {
        const series = [];
        f[side].forEach((vals, k) => {
          series.push({name: `${side} layer ${k}`, values: vals, colour: COLOURS[k % 4]});
          if (f.clip_factor < 1) series.push({name: `${side} layer ${k} clipped`,
            values: vals.map((x) => x * f.clip_factor), colour: COLOURS[k % 4],
            faded: true});
        });
        lineChart(fv, `${side} (colour: layer)`, series, "step t");
      }
      const dv = section(box, "Each output step's loss alone: ‖∂L_t'/∂h_t‖ (top layer)",
        "Rows: the loss at output step t'; columns: the state at encoder step s, then " +
        "decoder step t (distance t' − t along each row).");
      const top = g.state.encoder.length - 1;
      const dcols = [...g.source_tokens.map((t) => "enc " + t),
        ...g.decoder_input_tokens.map((t, i) => "dec " + i)];
      const dvals = g.state.encoder[top].map((row, t) =>
        [...row, ...g.state.decoder[top][t]]);
      heatmap(dv, rows, dcols, dvals, {cls: "distance", rgb: "40,140,60"});
    }
    if (settings) {
      const v = section(box, "Settings");
      const t = h("table", "settings", v);
      const m = settings.model, tr2 = settings.training, d = settings.data;
      const rowsS = [["model", `${m.model}, ${m.cell} cell, ${m.num_layers} layers`],
        ["sizes", `embed ${m.embed_size}, hidden ${m.num_hiddens}` +
          (m.bidirectional ? ", bidirectional" : "")],
        ["vocabularies", `${d.src_vocab_size} / ${d.tgt_vocab_size}, num_steps ` +
          d.num_steps],
        ["training", `${tr2.epochs} epochs (preset ${tr2.preset}), loss ${fmt(tr2.loss)}`],
        ["held-out", tr2.valid_loss === null || tr2.valid_loss === undefined ?
          "not recorded" : `validation loss ${fmt(tr2.valid_loss)}`],
        ["parameters", String(settings.parameters)]];
      for (const [k, val] of rowsS) {
        const row = h("tr", "", t);
        h("td", "", row, k);
        h("td", "", row, val);
      }
    }
  }

  let SETTINGS = [];
  function render(data) {
    const out = $("results");
    out.textContent = "";
    const wrap = h("div", "models", out);
    data.results.forEach((r, i) => renderModel(wrap, r, SETTINGS[i]));
  }
  function say(text, isError) {
    const m = $("message");
    m.textContent = text;
    m.className = isError ? "error" : "";
  }

  async function ask(evt) {
    if (evt) evt.preventDefault();
    const sentence = $("sentence").value;
    const body = JSON.stringify({sentence, beam: Number($("beam").value),
      length_penalty: Number($("alpha").value)});
    say("translating…", false);
    try {
      const res = await fetch("/api/explore", {method: "POST", body,
        headers: {"Content-Type": "application/json"}});
      const data = await res.json();
      if (!res.ok) { say(data.error || `error ${res.status}`, true); return; }
      say("", false);
      render(data);
    } catch (e) {
      say("the server did not answer: " + e.message, true);
    }
  }

  const embedded = JSON.parse($("explore-data").textContent);
  if (embedded) {  // a static export: the views were computed when it was written
    SETTINGS = embedded.models;
    const sel = $("examples");
    sel.hidden = false;
    for (const x of ["sentence", "beam", "alpha"]) $(x).disabled = true;
    embedded.sentences.forEach((d, i) => el("option", {value: i}, null) &&
      sel.appendChild(Object.assign(document.createElement("option"),
        {value: i, textContent: d.results[0].sentence})));
    const show = () => {
      const d = embedded.sentences[Number(sel.value)];
      $("sentence").value = d.results[0].sentence;
      render(d);
    };
    sel.addEventListener("change", show);
    $("ask").addEventListener("submit", (e) => { e.preventDefault(); show(); });
    if (embedded.sentences.length) show();
  } else {
    $("ask").addEventListener("submit", ask);
    fetch("/api/models").then((r) => r.json()).then((d) => {
      SETTINGS = d.models;
      $("beam").max = d.limits.max_beam;
    }).catch(() => say("the server did not answer", true));
  }
})();
