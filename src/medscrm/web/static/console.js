/* medscrm console: ECharts charts (options come from the server) and forms that ask for confirmation
   (data-confirm). The segment rule builder is segment_builder.js. */
(function () {
  "use strict";

  // --- charts: every element with data-chart holds a complete ECharts option -------------------------
  function initCharts(root) {
    if (!window.echarts) return;
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.ready) return;
      el.dataset.ready = "1";
      var chart = echarts.init(el, null, { renderer: "canvas" });
      var opt = JSON.parse(el.dataset.chart);
      opt.animation = false;
      chart.setOption(opt);
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }

  // --- forms that ask first: data-confirm holds the question (in the page's language) -------------------
  document.addEventListener("submit", function (evt) {
    var q = evt.target.dataset && evt.target.dataset.confirm;
    if (q && !window.confirm(q)) evt.preventDefault();
  }, true);

  document.addEventListener("DOMContentLoaded", function () {
    initCharts(document);
  });
  document.addEventListener("htmx:afterSettle", function (evt) { initCharts(evt.detail.target); });
})();
