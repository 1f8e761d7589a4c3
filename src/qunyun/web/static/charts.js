// Renders every <div class="chart" data-chart='{...}'> with ECharts (vendored, no CDN).
// spec.kind: "series" (default: x categories + bar/line series, stacked when a series has
// "stack"), "heatmap" (weekday × hour), "funnel" or "matrix" (cohort shares).
(function () {
  var WEEKDAYS = { "zh-CN": ["周一", "周二", "周三", "周四", "周五", "周六", "周日"],
                   "en": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] };
  function seriesOption(spec) {
    return {
      tooltip: { trigger: "axis" },
      // one scrolling line under the PNG/CSV buttons: on a phone a wrapped legend ran
      // over them
      legend: { type: "scroll", top: 26 },
      grid: { left: 48, right: 48, top: 78, bottom: spec.xName ? 40 : 30, containLabel: true },
      toolbox: { feature: { saveAsImage: { title: spec.saveTitle || "PNG" } } },
      // every category shows (slanted when crowded), each value axis says what it counts
      xAxis: { type: "category", data: spec.x, name: spec.xName || "", nameLocation: "middle", nameGap: 28,
               axisLabel: { interval: 0, rotate: spec.x && spec.x.length > 7 ? 40 : 0 } },
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
  // an invitation tree (who brought whom); a node's value is how many it brought in all
  function treeOption(spec) {
    return {
      tooltip: { trigger: "item", formatter: function (p) { return p.name + (p.value ? " · " + p.value : ""); } },
      toolbox: { feature: { saveAsImage: { title: spec.saveTitle || "PNG" } } },
      series: [{ type: "tree", data: [spec.data], top: 20, bottom: 20, left: 60, right: 120,
                 initialTreeDepth: 2, roam: true, symbolSize: 8,
                 label: { position: "left", verticalAlign: "middle", align: "right" },
                 leaves: { label: { position: "right", align: "left" } } }]
    };
  }
  var OPTIONS = { heatmap: heatmapOption, funnel: funnelOption, matrix: matrixOption, tree: treeOption };
  // Every chart's numbers as a CSV file (the toolbox's second button): the categories in
  // the first column, one column per series. A cell that a spreadsheet would read as a
  // formula (group names come from chats) is written as text.
  function cell(v) {
    var text = v === null || v === undefined ? "" : String(v);
    if (/^[=+\-@\t\r]/.test(text) && !/^-?\d+(\.\d+)?$/.test(text)) { text = "'" + text; }
    return /[",\n\r]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }
  function table(spec) {
    var rows = [];
    if (spec.kind === "heatmap") {
      var hours = []; for (var h = 0; h < 24; h++) { hours.push(h + ":00"); }
      rows.push([""].concat(hours));
      var days = WEEKDAYS[spec.lang] || WEEKDAYS.en;
      spec.matrix.forEach(function (row, w) { rows.push([days[w]].concat(row)); });
    } else if (spec.kind === "funnel") {
      spec.data.forEach(function (d) { rows.push([d.name, d.value]); });
    } else if (spec.kind === "tree") {
      var walk = function (node, parent) {
        (node.children || []).forEach(function (kid) { rows.push([kid.name, parent, kid.value]); walk(kid, kid.name); });
      };
      rows.push(["", "", ""]);
      walk(spec.data, "");
    } else if (spec.kind === "matrix") {
      rows.push([""].concat(spec.x));
      spec.cells.forEach(function (row, y) { rows.push([spec.y[y]].concat(row)); });
    } else {
      rows.push([spec.xName || ""].concat(spec.series.map(function (s) { return s.name; })));
      (spec.x || []).forEach(function (x, i) {
        rows.push([x].concat(spec.series.map(function (s) { return s.data[i]; })));
      });
    }
    return "\ufeff" + rows.map(function (r) { return r.map(cell).join(","); }).join("\r\n") + "\r\n";
  }
  function words() {
    var meta = document.querySelector('meta[name="chart-words"]');
    return meta ? JSON.parse(meta.getAttribute("content")) : {};
  }
  function download(el, spec) {
    var blob = new Blob([table(spec)], { type: "text/csv;charset=utf-8" });
    var link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = (el.id || "chart") + ".csv";
    document.body.appendChild(link);
    link.click();
    setTimeout(function () { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
  }
  function render(el) {
    var spec = JSON.parse(el.getAttribute("data-chart"));
    var chart = echarts.init(el);
    var option = (OPTIONS[spec.kind] || seriesOption)(spec);
    option.toolbox.feature.myCsv = {
      show: true, title: words().csv || "CSV",
      icon: "path://M4 2h10l6 6v14H4z M14 2v6h6 M7 13h10 M7 17h10",
      onclick: function () { download(el, spec); }
    };
    chart.setOption(option);
    el.csv = function () { return table(spec); };  // what the CSV button writes (tests read it)
    el.setAttribute("data-rendered", "1");
    window.addEventListener("resize", function () { chart.resize(); });
  }
  function renderAll() { document.querySelectorAll(".chart[data-chart]").forEach(render); }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", renderAll); }
  else { renderAll(); }
})();
