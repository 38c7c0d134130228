// Progressive enhancement: show how each pasted line is read (POST /preview, the /match result) as the
// clinician types. The form works without it; the result page always shows the same reading.
(function () {
  "use strict";
  var area = document.getElementById("medication_text");
  var box = document.getElementById("preview");
  var form = document.getElementById("check-form");
  if (!area || !box || !form || !window.fetch) { return; }
  var token = form.querySelector("input[name=csrf_token]").value;
  var timer = null, seq = 0;

  function cell(row, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) { td.className = cls; }
    row.appendChild(td);
  }

  function render(results) {
    box.textContent = "";
    if (!results.length) { return; }
    var table = document.createElement("table");
    table.className = "reading";
    table.id = "preview-table";
    var caption = document.createElement("caption");
    caption.textContent = "How each line is read (before the check)";
    table.appendChild(caption);
    results.forEach(function (r) {
      var row = document.createElement("tr");
      row.className = "status-" + r.status;
      row.setAttribute("data-status", r.status);
      cell(row, r.input);
      if (r.status === "matched") {
        cell(row, r.match.generic + (r.match.ingredients.length > 1 ? " (" + r.match.ingredients.join(" + ") + ")" : ""));
        cell(row, r.match.via + (r.match.via === "fuzzy" ? ", score " + r.match.score : ""));
      } else {
        var options = r.candidates.map(function (c) { return c.generic; }).join(", ");
        cell(row, r.status.toUpperCase() + (options ? ": could be " + options : ""), "unread");
        cell(row, "not checked");
      }
      cell(row, r.classes.join(", ") || "—");
      table.appendChild(row);
    });
    box.appendChild(table);
  }

  function refresh() {
    var mine = ++seq;
    var body = new URLSearchParams();
    body.set("medication_text", area.value);
    fetch("/preview", {method: "POST", body: body, credentials: "same-origin",
                       headers: {"X-CSRFToken": token}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data && mine === seq) { render(data.results); } })
      .catch(function () { /* the check itself still shows the reading */ });
  }

  area.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(refresh, 300); });
  if (area.value.trim()) { refresh(); }

  // Only the chosen regimen's protocols are offered (the server refuses a mismatch anyway).
  var regimen = document.getElementById("regimen"), protocol = document.getElementById("protocol");
  function filterProtocols() {
    Array.prototype.forEach.call(protocol.options, function (o) {
      var other = o.value && o.getAttribute("data-regimen") !== regimen.value;
      o.hidden = other; o.disabled = other;
      if (other && o.selected) { protocol.value = ""; }
    });
  }
  if (regimen && protocol) { regimen.addEventListener("change", filterProtocols); filterProtocols(); }
}());
