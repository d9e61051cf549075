/* lorasite: small progressive enhancements on top of htmx. The page works without any of this. */
(function () {
  "use strict";
  var form = function () { return document.getElementById("calc"); };
  function changed(el) { el.dispatchEvent(new Event("input", { bubbles: true })); }

  // Mark the entry the page was loaded with as htmx's, so "back" to it restores it too (a reload of
  // its URL: htmx keeps no history snapshots here, the server renders the state from the URL).
  if (document.getElementById("calc") && !(history.state && history.state.htmx)) {
    history.replaceState({ htmx: true }, "", location.href);
  }

  document.addEventListener("click", function (e) {
    var t = e.target.closest ? e.target.closest("button") : null;
    if (!t) return;
    // Quick picks: set the fields here and let htmx recompute (without JS they submit the form).
    if (t.dataset.set && form()) {
      e.preventDefault();
      var input = document.getElementById(t.dataset.set);
      input.value = t.dataset.value;
      changed(input);
    } else if (t.hasAttribute("data-names") && form()) {
      e.preventDefault();
      var names = t.dataset.names.split(" ");
      var boxes = form().querySelectorAll('input[name="target_modules"]');
      boxes.forEach(function (b) { b.checked = names.indexOf(b.value) >= 0; });
      if (boxes.length) changed(boxes[0]);
    } else if (t.hasAttribute("data-copy") || t.hasAttribute("data-copy-url")) {
      var text = t.hasAttribute("data-copy-url") ? location.href : document.querySelector(t.dataset.copy).innerText;
      var done = function () { var old = t.textContent; t.textContent = "Copied"; setTimeout(function () { t.textContent = old; }, 1500); };
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, function () {});
      else { var ta = document.createElement("textarea"); ta.value = text; document.body.appendChild(ta); ta.select(); try { document.execCommand("copy"); done(); } catch (x) {} ta.remove(); }
    } else if (t.id === "config-clear") {
      var area = document.getElementById("hf_config");
      area.value = "";
      changed(area);
    }
  });

  // A pasted config.json is sent compact (shorter URL); the server keeps only the keys that matter.
  document.addEventListener("input", function (e) {
    var t = e.target;
    if (t.id !== "hf_config" || t.value.indexOf("\n") < 0) return;
    try { t.value = JSON.stringify(JSON.parse(t.value)); } catch (x) { /* not JSON yet */ }
  }, true);

  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t.id === "config-file" && t.files && t.files[0]) {
      t.files[0].text().then(function (text) {
        var area = document.getElementById("hf_config");
        try { area.value = JSON.stringify(JSON.parse(text)); } catch (x) { area.value = text; }
        changed(area);
      });
    }
  });

  // Errors arrive out of band only for the fields that have one: clear the old ones first.
  document.addEventListener("htmx:beforeSwap", function (e) {
    if (e.detail.target && e.detail.target.id === "results") {
      document.querySelectorAll("#calc .err").forEach(function (el) { el.textContent = ""; });
    }
  });
  // Keep quick-pick chips (rank, QLoRA) in step with their field.
  function syncChips(field) {
    document.querySelectorAll('[data-set="' + field.id + '"]').forEach(function (c) {
      var on = c.dataset.value === field.value;
      c.classList.toggle("on", on);
      c.setAttribute("aria-pressed", on ? "true" : "false");
    });
  }
  document.addEventListener("input", function (e) { if (e.target.id) syncChips(e.target); });
  document.addEventListener("change", function (e) { if (e.target.id) syncChips(e.target); });

  // A recompute that failed (server error, network) must not leave old results looking current.
  function recomputeFailed(message) {
    var note = document.getElementById("recompute-status");
    var results = document.getElementById("results");
    if (!note || !results) return;
    note.textContent = message + " The results below are for the previous inputs.";
    note.hidden = false;
    results.classList.add("stale");
  }
  document.addEventListener("htmx:responseError", function (e) {
    if (e.detail.target && e.detail.target.id === "results") {
      recomputeFailed("Could not recompute (the server answered " + e.detail.xhr.status + ").");
    }
  });
  document.addEventListener("htmx:sendError", function (e) {
    if (e.detail.target && e.detail.target.id === "results") recomputeFailed("Could not reach the server to recompute.");
  });
  document.addEventListener("htmx:afterSwap", function (e) {
    if (!e.detail.target || e.detail.target.id !== "results") return;
    var note = document.getElementById("recompute-status");
    if (note) { note.hidden = true; note.textContent = ""; }
    e.detail.target.classList.remove("stale");
  });

  // The preset picker's search: narrows the select's options (per family group) without recomputing;
  // Enter picks the first match. Captured at the document so the form's htmx trigger never sees it.
  function matches(text, words) { return words.every(function (w) { return text.indexOf(w) >= 0; }); }
  document.addEventListener("input", function (e) {
    if (e.target.id !== "preset-search") return;
    e.stopPropagation();
    var words = e.target.value.toLowerCase().split(/\s+/).filter(Boolean);
    var select = document.getElementById("preset");
    select.querySelectorAll("optgroup").forEach(function (group) {
      var any = false;
      group.querySelectorAll("option").forEach(function (o) {
        var show = matches((o.textContent + " " + o.value + " " + group.label).toLowerCase(), words);
        o.hidden = !show; any = any || show;
      });
      group.hidden = !any;
    });
  }, true);
  document.addEventListener("keydown", function (e) {
    if (e.target.id !== "preset-search" || e.key !== "Enter") return;
    e.preventDefault();
    var first = document.querySelector("#preset optgroup:not([hidden]) option:not([hidden])");
    var select = document.getElementById("preset");
    if (first && select.value !== first.value) { select.value = first.value; changed(select); }
  }, true);

  // /presets/: filter the table as you type (the server filters the same way on submit); a family pick submits.
  document.addEventListener("input", function (e) {
    var t = e.target;
    if (!t.dataset || !t.dataset.filter) return;
    var words = t.value.toLowerCase().split(/\s+/).filter(Boolean);
    var rows = document.querySelectorAll(t.dataset.filter + " tbody tr[data-search]");
    var shown = 0;
    rows.forEach(function (row) {
      row.hidden = !matches(row.dataset.search || "", words);
      if (!row.hidden) shown++;
    });
    var count = document.getElementById("preset-count");
    if (count) count.textContent = shown + " of " + count.textContent.split(" of ")[1];
  });
  document.addEventListener("change", function (e) {
    if (e.target.hasAttribute && e.target.hasAttribute("data-autosubmit") && e.target.form) e.target.form.requestSubmit();
  });
})();
