// mesh catalog search: filters the product cards of the home page with the index embedded in the page
// (a JSON <script> element, readable from file:// where fetch() of a local file is blocked).
(function () {
  "use strict";
  var blob = document.getElementById("search-index");
  if (!blob) { return; }
  var index = JSON.parse(blob.textContent);
  var byKey = {};
  index.forEach(function (entry) {
    entry.haystack = [entry.key, entry.title, entry.text, entry.tags.join(" "), entry.columns.join(" ")]
      .join(" ").toLowerCase();
    byKey[entry.key] = entry;
  });
  var query = document.getElementById("q");
  var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-filter]"));
  var cards = Array.prototype.slice.call(document.querySelectorAll("#results .card"));
  var count = document.getElementById("count");
  var empty = document.getElementById("empty");

  function matchesFilter(entry, name, value) {
    if (!value) { return true; }
    var field = entry[name];
    return Array.isArray(field) ? field.indexOf(value) >= 0 : field === value;
  }

  function apply() {
    var tokens = query.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    cards.forEach(function (card) {
      var entry = byKey[card.getAttribute("data-key")];
      var ok = !!entry && tokens.every(function (t) { return entry.haystack.indexOf(t) >= 0; });
      ok = ok && selects.every(function (s) { return matchesFilter(entry, s.getAttribute("data-filter"), s.value); });
      card.hidden = !ok;
      var note = card.querySelector(".matches");
      if (ok && tokens.length) {
        // Say why a product matched when it is by a column or a tag, which the card does not show.
        var columns = entry.columns.filter(function (c) {
          return tokens.some(function (t) { return c.toLowerCase().indexOf(t) >= 0; });
        });
        var tags = entry.tags.filter(function (c) {
          return tokens.some(function (t) { return c.toLowerCase().indexOf(t) >= 0; });
        });
        var parts = [];
        if (columns.length) { parts.push("columns: " + columns.join(", ")); }
        if (tags.length) { parts.push("tags: " + tags.join(", ")); }
        note.textContent = parts.length ? "matches " + parts.join("; ") : "";
        note.hidden = !parts.length;
      } else {
        note.textContent = "";
        note.hidden = true;
      }
      if (ok) { shown += 1; }
    });
    count.textContent = shown + (shown === 1 ? " product" : " products");
    empty.hidden = shown !== 0;
    var params = [];
    if (query.value) { params.push("q=" + encodeURIComponent(query.value)); }
    selects.forEach(function (s) { if (s.value) { params.push(s.getAttribute("data-filter") + "=" + encodeURIComponent(s.value)); } });
    if (window.history && window.history.replaceState) {
      try { window.history.replaceState(null, "", params.length ? "#" + params.join("&") : "#"); } catch (e) { /* file:// in some browsers */ }
    }
  }

  // Restore a search from the address (#q=revenue&domain=sales), so results can be bookmarked and shared.
  (window.location.hash || "").replace(/^#/, "").split("&").forEach(function (pair) {
    var parts = pair.split("=");
    if (parts.length !== 2) { return; }
    var value = decodeURIComponent(parts[1]);
    if (parts[0] === "q") { query.value = value; }
    selects.forEach(function (s) { if (s.getAttribute("data-filter") === parts[0]) { s.value = value; } });
  });
  query.addEventListener("input", apply);
  selects.forEach(function (s) { s.addEventListener("change", apply); });
  apply();
}());
