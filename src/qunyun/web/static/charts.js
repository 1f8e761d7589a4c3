// Renders every <div class="chart" data-chart='{...}'> with ECharts (vendored, no CDN).
// spec.kind: "series" (default: x categories + bar/line series, stacked when a series has
// "stack"), "heatmap" (weekday × hour), "funnel" or "matrix" (cohort shares).
(function () {
  var WEEKDAYS = { "zh-CN": ["周一", "周二", "周三", "周四", "周五", "周六", "周日"],
                   "en": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] };
  function seriesOption(spec) {
    return {
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 48, right: 48, top: 56, bottom: 30, containLabel: true },
      toolbox: { feature: { saveAsImage: { title: spec.saveTitle || "PNG" } } },
      // every category shows (slanted when crowded), each value axis says what it counts
      xAxis: { type: "category", data: spec.x, axisLabel: { interval: 0, rotate: spec.x && spec.x.length > 7 ? 40 : 0 } },
      yAxis: [{ type: "value", name: (spec.yNames || [])[0] || "" },
              { type: "value", name: (spec.yNames || [])[1] || "", splitLine: { show: false } }],
      series: spec.series
    };
  }
  function heatmapOption(spec) {
    var data = [], max = 0;
    spec.matrix.forEach(function (row, w) {
      row.forEach(function (n, h) { data.push([h, w, n]); if (n > max) { max = n; } });
    });
    var hours = []; for (var h = 0; h < 24; h++) { hours.push(h + ":00"); }
    return {
      tooltip: { position: "top" },
      grid: { left: 50, right: 20, top: 10, bottom: 90 },  // the legend below the hour labels
      toolbox: { feature: { saveAsImage: { title: spec.saveTitle || "PNG" } } },
      xAxis: { type: "category", data: hours, splitArea: { show: true } },
      yAxis: { type: "category", data: WEEKDAYS[spec.lang] || WEEKDAYS.en, splitArea: { show: true } },
      visualMap: { min: 0, max: max || 1, calculable: true, orient: "horizontal", left: "center", bottom: 0,
                   inRange: { color: ["#f2f8f5", "#0e7a5f"] } },
      series: [{ type: "heatmap", data: data, label: { show: false } }]
    };
  }
  function funnelOption(spec) {
    return {
      tooltip: { trigger: "item", formatter: "{b}: {c}" },
      toolbox: { feature: { saveAsImage: { title: spec.saveTitle || "PNG" } } },
      series: [{ type: "funnel", left: "10%", width: "80%", sort: "descending", gap: 2,
                 label: { show: true, position: "inside", formatter: "{b} {c}" }, data: spec.data }]
    };
  }
  // a share matrix (cohort rows × later columns, 0..1; null cells stay empty)
  function matrixOption(spec) {
    var data = [];
    spec.cells.forEach(function (row, y) {
      row.forEach(function (v, x) { if (v !== null && v !== undefined) { data.push([x, y, Math.round(v * 1000) / 10]); } });
    });
    return {
      tooltip: { position: "top", formatter: function (p) { return spec.y[p.value[1]] + " → " + spec.x[p.value[0]] + ": " + p.value[2] + "%"; } },
      grid: { left: 90, right: 20, top: 10, bottom: 60 },
      toolbox: { feature: { saveAsImage: { title: spec.saveTitle || "PNG" } } },
      xAxis: { type: "category", data: spec.x, splitArea: { show: true } },
      yAxis: { type: "category", data: spec.y, inverse: true, splitArea: { show: true } },
      visualMap: { min: 0, max: 100, calculable: true, orient: "horizontal", left: "center", bottom: 0,
                   inRange: { color: ["#f2f8f5", "#0e7a5f"] } },
      series: [{ type: "heatmap", data: data, label: { show: true, formatter: function (p) { return p.value[2] + "%"; } } }]
    };
  }
  var OPTIONS = { heatmap: heatmapOption, funnel: funnelOption, matrix: matrixOption };
  function render(el) {
    var spec = JSON.parse(el.getAttribute("data-chart"));
    var chart = echarts.init(el);
    chart.setOption((OPTIONS[spec.kind] || seriesOption)(spec));
    el.setAttribute("data-rendered", "1");
    window.addEventListener("resize", function () { chart.resize(); });
  }
  function renderAll() { document.querySelectorAll(".chart[data-chart]").forEach(render); }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", renderAll); }
  else { renderAll(); }
})();
