// The console's only script of its own: the overview's chart and the drift page's. Each
// second htmx swaps in a fresh #live fragment whose #rates element carries the current rates
// as data attributes; they are appended here to a rolling two-minute uPlot chart. The drift
// chart is drawn once from the samples its page carries (data-samples: [times, series...]).
// No inline script anywhere (the pages' Content-Security-Policy allows scripts from
// /ui/static only).
(function () {
  "use strict";
  var KEEP = 120;
  var COLOURS = {
    created: "#2b6cb0", started: "#6b46c1", succeeded: "#2f855a", failed: "#c53030",
    retried: "#dd6b20", unqueued: "#2b6cb0", unrowed: "#dd6b20", stranded: "#c53030",
  };
  var chart = null;
  // A lone first point would stretch the time axis over years: show the span it will fill.
  function span(seconds) {
    return function (u, min, max) { return min === max ? [min - seconds, max] : [min, max]; };
  }
  var names = [];
  var data = [];

  function start() {
    var box = document.getElementById("rates-chart");
    if (!box || typeof uPlot === "undefined") { return; }
    names = box.dataset.series.split(",");
    data = [[]].concat(names.map(function () { return []; }));
    var series = [{}].concat(names.map(function (name) {
      return { label: name + "/s", stroke: COLOURS[name] || "#555", width: 2 };
    }));
    chart = new uPlot({
      width: Math.max(320, box.clientWidth || 800), height: 220, series: series,
      scales: { x: { time: true, range: span(KEEP) } }, axes: [{}, { label: "tasks/s" }],
    }, data, box);
    add();
  }

  function add() {
    var rates = document.getElementById("rates");
    if (!chart || !rates) { return; }
    var at = parseFloat(rates.dataset.at);
    var xs = data[0];
    if (xs.length && xs[xs.length - 1] >= at) { return; }  // the same snapshot twice
    xs.push(at);
    names.forEach(function (name, i) { data[i + 1].push(parseFloat(rates.dataset[name]) || 0); });
    if (xs.length > KEEP) { data.forEach(function (column) { column.shift(); }); }
    chart.setData(data);
    // What the browser test reads to see the chart move: points drawn, highest created/s.
    var box = document.getElementById("rates-chart");
    box.dataset.points = String(xs.length);
    box.dataset.peak = String(Math.max.apply(null, data[1]));
  }

  function drift() {
    var box = document.getElementById("drift-chart");
    if (!box || typeof uPlot === "undefined") { return; }
    var series = [{}].concat(box.dataset.series.split(",").map(function (name) {
      return { label: name, stroke: COLOURS[name] || "#555", width: 2 };
    }));
    new uPlot({
      width: Math.max(320, box.clientWidth || 800), height: 180, series: series,
      scales: { x: { time: true, range: span(3600) } }, axes: [{}, { label: "tasks" }],
    }, JSON.parse(box.dataset.samples), box);
    box.dataset.drawn = "1";
  }

  document.addEventListener("DOMContentLoaded", start);
  document.addEventListener("DOMContentLoaded", drift);
  document.addEventListener("htmx:afterSettle", add);
  window.addEventListener("resize", function () {
    var box = document.getElementById("rates-chart");
    if (chart && box) { chart.setSize({ width: Math.max(320, box.clientWidth), height: 220 }); }
  });
})();
