// Draws every chart of the page from its JSON spec. A chart that fails says so on the page (and in
// data-render-error), so a broken chart is never silently blank.
(function () {
  "use strict";
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
