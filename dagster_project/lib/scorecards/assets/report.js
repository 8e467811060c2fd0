// Draws every chart of the page from its JSON spec. A chart that fails says so on the page (and in
// data-render-error), so a broken chart is never silently blank.
(function () {
  "use strict";
  // The printed width of a chart: A4 (210 mm) less the side margins of @page in report.css.
  var PRINT_WIDTH_MM = 210 - 2 * 12, PRINT_MAX_HEIGHT_MM = 230, PX_PER_MM = 96 / 25.4;
  var charts = document.querySelectorAll(".chart");
  var pending = charts.length;
  document.body.dataset.chartsTotal = String(charts.length);
  function done() {
    pending -= 1;
    if (pending === 0) { document.body.dataset.chartsDone = "true"; }
  }
  if (pending === 0) { document.body.dataset.chartsDone = "true"; }
  charts.forEach(function (div) {
    try {
      var spec = JSON.parse(document.getElementById(div.dataset.spec).textContent);
      Plotly.newPlot(div, spec.data, spec.layout, {displaylogo: false, responsive: true})
        .then(function () { div.dataset.rendered = "true"; done(); })
        .catch(function (err) { fail(div, err); done(); });
    } catch (err) { fail(div, err); done(); }
  });
  function fail(div, err) {
    div.dataset.renderError = String(err);
    div.textContent = "This chart could not be drawn: " + err;
    console.error("chart " + div.id + ": " + err);
  }
  // Plotly draws at the screen's width, which the printed page does not have: before printing, redraw each chart
  // at the page's width (no taller than a page), and as it was afterwards.
  function drawn() {
    return Array.prototype.filter.call(charts, function (div) { return div.dataset.rendered === "true"; });
  }
  window.addEventListener("beforeprint", function () {
    drawn().forEach(function (div) {
      var height = div.layout.height || div.clientHeight;
      div.dataset.screenHeight = String(height);
      Plotly.relayout(div, {width: PRINT_WIDTH_MM * PX_PER_MM, height: Math.min(height, PRINT_MAX_HEIGHT_MM * PX_PER_MM)});
    });
  });
  window.addEventListener("afterprint", function () {
    drawn().forEach(function (div) {
      if (div.dataset.screenHeight) {
        Plotly.relayout(div, {width: null, height: Number(div.dataset.screenHeight)});
        delete div.dataset.screenHeight;
      }
    });
  });
  var filter = document.getElementById("filter");
  if (filter) {
    filter.addEventListener("input", function () {
      var q = filter.value.toLowerCase();
      document.querySelectorAll("#institutions tbody tr").forEach(function (tr) {
        tr.style.display = tr.textContent.toLowerCase().indexOf(q) === -1 ? "none" : "";
      });
    });
  }
})();
