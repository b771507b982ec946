/* report.html's script (harness/report/templates/report.js, inlined by harness.report.html).

The page opens on its first screen (verdict, needs attention, overview, recommendation), server-rendered.
Everything bulky is packed (gzip, then base64) in script elements of type application/octet-stream and
unpacked only when needed, with the browser's own DecompressionStream (no network):
  - #qb-rows: the cells table's rows, drawn a page at a time, filtered by model, scheme, device, verdict;
  - .qb-cells: each cell's details (server-rendered, escaped HTML), inserted when the cell is opened;
  - #quantbench-charts: the chart specs, and #qb-plotly: plotly itself, loaded with the first chart
    scrolled into view (IntersectionObserver).
No string from a record is ever put into the page as markup here: rows are drawn with textContent.
<body data-ready="done"> when the first screen is drawn (tests and tools wait for it). Charts:
data-charts-rendered counts those drawn; window.quantbench.drawAll() draws every one (then
data-charts="done", or "error" with data-charts-error). */
(function () {
  "use strict";
  var body = document.body;
  var PAGE = 100;
  var SYMBOLS = {pass: "✓ pass", baseline: "float", fail: "✗ FAIL", regressed: "▲ slower", failed: "! failed", na: "– n/a"};
  var unpacked = {};

  function unpack(element) {  // the text packed in one element, once
    var key = element.id || element.getAttribute("data-first");
    if (!window.DecompressionStream) {
      return Promise.reject(new Error("this browser cannot unpack the page (no DecompressionStream): the cells table, " +
        "details and charts need a current browser; every cell is also in summary.md and results.jsonl"));
    }
    if (!unpacked[key]) {
      var bytes = Uint8Array.from(atob(element.textContent.trim()), function (c) { return c.charCodeAt(0); });
      var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      unpacked[key] = new Response(stream).text();
    }
    return unpacked[key];
  }

  function failed(error) {
    document.getElementById("results-status").textContent = String(error);
    body.setAttribute("data-charts-error", String(error));
    body.setAttribute("data-charts", "error");
    console.error(error);
  }

  // Cells: a cell's details are inserted (in index order) the first time it is opened.
  function chunkOf(index) {
    var chunks = document.querySelectorAll("script.qb-cells");
    for (var i = 0; i < chunks.length; i++) {
      var first = Number(chunks[i].getAttribute("data-first"));
      if (index >= first && index < first + Number(chunks[i].getAttribute("data-count"))) { return chunks[i]; }
    }
    return null;
  }

  function insertChunk(chunk, html) {
    if (chunk.getAttribute("data-inserted")) { return; }
    chunk.setAttribute("data-inserted", "1");
    var template = document.createElement("template");
    template.innerHTML = html;  // rendered and escaped by the server's template, as the rest of the page
    var container = document.getElementById("cells");
    var first = Number(chunk.getAttribute("data-first"));
    var after = Array.prototype.find.call(container.children, function (el) {
      return Number(el.getAttribute("data-first")) > first; });
    var holder = document.createElement("div");
    holder.setAttribute("data-first", String(first));
    holder.appendChild(template.content);
    container.insertBefore(holder, after || null);
    holder.querySelectorAll(".chart").forEach(watch);
  }

  function openCell(index, scroll) {
    var chunk = chunkOf(index);
    if (!chunk) { return Promise.resolve(null); }
    return unpack(chunk).then(function (html) {
      insertChunk(chunk, html);
      var target = document.getElementById("cell-" + index);
      if (target) {
        target.open = true;
        if (scroll) { target.scrollIntoView(); }
      }
      return target;
    });
  }

  function openTarget() {
    var match = /^#cell-(\d+)$/.exec(location.hash);
    if (match) { openCell(Number(match[1]), true).catch(failed); }
  }
  window.addEventListener("hashchange", openTarget);
  document.addEventListener("click", function (event) {  // again, when the hash already names the cell
    var link = event.target.closest ? event.target.closest('a[href^="#cell-"]') : null;
    if (link) { openCell(Number(link.getAttribute("href").slice(6)), true).catch(failed); }
  });

  // The cells table: rows [index, model, scheme, device, family, state, metric, delta, size ×, latency ×,
  // thermal, checks, failing checks], a page at a time, filtered.
  var rows = [], shown = [], page = 0;
  var form = document.getElementById("cells-filter");

  function cellText(tag, text, className) {
    var element = document.createElement(tag);
    element.textContent = text;
    if (className) { element.className = className; }
    return element;
  }

  function tableRow(r) {
    var tr = document.createElement("tr");
    var name = cellText("td", "", "fam fam-" + r[4]);
    var link = cellText("a", r[1] + "/" + r[2] + "@" + r[3]);
    link.href = "#cell-" + r[0];
    name.appendChild(link);
    tr.appendChild(name);
    [r[6], r[7], r[8]].forEach(function (text) { tr.appendChild(cellText("td", text, "num")); });
    var latency = cellText("td", r[9], "num");
    if (r[10]) { latency.appendChild(document.createTextNode(" ")); latency.appendChild(cellText("span", "(" + r[10] + ")", "fail")); }
    tr.appendChild(latency);
    var checks = cellText("td", r[11]);
    if (r[12]) { checks.appendChild(document.createTextNode(" ")); checks.appendChild(cellText("span", "✗ " + r[12], "fail")); }
    tr.appendChild(checks);
    var verdict = document.createElement("td");
    verdict.appendChild(cellText("span", SYMBOLS[r[5]] || r[5], "state s-" + r[5]));
    tr.appendChild(verdict);
    return tr;
  }

  function filtered() {
    var want = {model: form.model.value.toLowerCase(), scheme: form.scheme.value.toLowerCase(),
                device: form.device.value.toLowerCase(), state: form.state.value};
    return rows.filter(function (r) {
      return r[1].toLowerCase().indexOf(want.model) >= 0 && r[2].toLowerCase().indexOf(want.scheme) >= 0 &&
        r[3].toLowerCase().indexOf(want.device) >= 0 && (!want.state || r[5] === want.state);
    });
  }

  function drawTable() {
    var pages = Math.max(1, Math.ceil(shown.length / PAGE));
    page = Math.min(Math.max(page, 0), pages - 1);
    var tbody = document.querySelector("#results tbody");
    var fragment = document.createDocumentFragment();
    shown.slice(page * PAGE, (page + 1) * PAGE).forEach(function (r) { fragment.appendChild(tableRow(r)); });
    tbody.replaceChildren(fragment);
    var first = shown.length ? page * PAGE + 1 : 0;
    document.getElementById("results-status").textContent = "cells " + first + "–" +
      Math.min(shown.length, (page + 1) * PAGE) + " of " + shown.length +
      (shown.length < rows.length ? " matching the filter (" + rows.length + " in all)" : "") +
      "; page " + (page + 1) + " of " + pages;
    body.setAttribute("data-results-page", String(page + 1));
  }

  form.addEventListener("input", function () { shown = filtered(); page = 0; drawTable(); });
  document.getElementById("results-pager").addEventListener("click", function (event) {
    var step = event.target.getAttribute && event.target.getAttribute("data-step");
    if (step) { page += Number(step); drawTable(); }
  });

  // Charts: each drawn when it scrolls into view; plotly and the specs are unpacked with the first one.
  var specs = null, plotly = null, drawn = 0, queue = Promise.resolve();
  var config = {displaylogo: false, responsive: true, showLink: false, showSendToCloud: false, showEditInChartStudio: false};

  function chartSpecs() {
    if (!specs) {
      specs = unpack(document.getElementById("quantbench-charts")).then(function (text) {
        var byId = {};
        JSON.parse(text).forEach(function (spec) { byId[spec.id] = spec; });
        return byId;
      });
    }
    return specs;
  }

  function loadPlotly() {
    if (!plotly) {
      plotly = unpack(document.getElementById("qb-plotly")).then(function (source) {
        var script = document.createElement("script");
        script.textContent = source;
        document.head.appendChild(script);
      });
    }
    return plotly;
  }

  function draw(id) {  // one chart, after the ones asked for before it (a failed one does not stop the rest)
    var next = queue.then(function () {
      var element = document.getElementById(id);
      if (!element || element.getAttribute("data-drawn")) { return null; }
      element.setAttribute("data-drawn", "pending");
      return Promise.all([chartSpecs(), loadPlotly()]).then(function (loaded) {
        var spec = loaded[0][id];
        return window.Plotly.newPlot(element, spec.data, spec.layout, config);
      }).then(function () {
        element.setAttribute("data-drawn", "done");
        drawn += 1;
        body.setAttribute("data-charts-rendered", String(drawn));
      });
    });
    queue = next.catch(function () { return null; });
    return next;
  }

  var observer = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (entry.isIntersecting) { observer.unobserve(entry.target); draw(entry.target.id).catch(failed); }
    });
  }, {rootMargin: "300px"}) : null;

  function watch(element) {
    if (observer) { observer.observe(element); } else { draw(element.id).catch(failed); }
  }

  function drawAll() {  // every chart, the cells' numerics charts included (their cells are opened)
    return chartSpecs().then(function (byId) {
      var ids = Object.keys(byId);
      return Promise.all(ids.map(function (id) {
        var cell = byId[id].cell;
        return cell === undefined ? null : openCell(cell, false);
      })).then(function () { return Promise.all(ids.map(draw)); }).then(function () {
        body.setAttribute("data-charts", "done");
        return ids.length;
      });
    }).catch(function (error) { failed(error); throw error; });
  }

  window.quantbench = {drawAll: drawAll, openCell: openCell};
  document.querySelectorAll(".chart").forEach(watch);
  openTarget();
  unpack(document.getElementById("qb-rows")).then(function (text) {
    rows = JSON.parse(text);
    shown = filtered();
    drawTable();
  }).catch(failed);
  requestAnimationFrame(function () { setTimeout(function () {  // the first screen is drawn
    var paint = performance.getEntriesByName("first-contentful-paint")[0];
    var nav = performance.getEntriesByType("navigation")[0];
    body.setAttribute("data-first-paint-ms", paint ? paint.startTime.toFixed(0) : "");
    body.setAttribute("data-dom-ready-ms", nav ? nav.domContentLoadedEventEnd.toFixed(0) : "");
    body.setAttribute("data-ready", "done");
  }, 0); });
})();
