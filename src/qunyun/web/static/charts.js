// Renders every <div class="chart" data-chart='{...}'> with ECharts (vendored, no CDN).
(function () {
  function render(el) {
    var spec = JSON.parse(el.getAttribute("data-chart"));
    var chart = echarts.init(el);
    chart.setOption({
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 40, right: 40, top: 40, bottom: 30 },
      toolbox: { feature: { saveAsImage: { title: spec.saveTitle || "PNG" } } },
      xAxis: { type: "category", data: spec.x },
      yAxis: [{ type: "value" }, { type: "value", splitLine: { show: false } }],
      series: spec.series
    });
    el.setAttribute("data-rendered", "1");
    window.addEventListener("resize", function () { chart.resize(); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".chart[data-chart]").forEach(render);
  });
})();
