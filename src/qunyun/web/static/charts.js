// Renders every <div class="chart" data-chart='{...}'> with ECharts (vendored, no CDN).
// spec.kind: "series" (default: x categories + bar/line series) or "heatmap".
(function () {
  var WEEKDAYS = { "zh-CN": ["周一", "周二", "周三", "周四", "周五", "周六", "周日"],
                   "en": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] };
  function seriesOption(spec) {
    return {
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 40, right: 40, top: 40, bottom: 30 },
      toolbox: { feature: { saveAsImage: { title: spec.saveTitle || "PNG" } } },
      xAxis: { type: "category", data: spec.x },
      yAxis: [{ type: "value" }, { type: "value", splitLine: { show: false } }],
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
      grid: { left: 50, right: 20, top: 10, bottom: 60 },
      toolbox: { feature: { saveAsImage: { title: spec.saveTitle || "PNG" } } },
      xAxis: { type: "category", data: hours, splitArea: { show: true } },
      yAxis: { type: "category", data: WEEKDAYS[spec.lang] || WEEKDAYS.en, splitArea: { show: true } },
      visualMap: { min: 0, max: max || 1, calculable: true, orient: "horizontal", left: "center", bottom: 0,
                   inRange: { color: ["#f2f8f5", "#0e7a5f"] } },
      series: [{ type: "heatmap", data: data, label: { show: false } }]
    };
  }
  function render(el) {
    var spec = JSON.parse(el.getAttribute("data-chart"));
    var chart = echarts.init(el);
    chart.setOption(spec.kind === "heatmap" ? heatmapOption(spec) : seriesOption(spec));
    el.setAttribute("data-rendered", "1");
    window.addEventListener("resize", function () { chart.resize(); });
  }
  function renderAll() { document.querySelectorAll(".chart[data-chart]").forEach(render); }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", renderAll); }
  else { renderAll(); }
})();
