// Every table scrolls inside its own box: on a phone a wide table slides sideways instead of
// pushing the whole page wider than the screen (pages and HTMX fragments alike).
(function () {
  function wrapTables(root) {
    root.querySelectorAll('table').forEach(function (table) {
      var parent = table.parentElement;
      if (!parent || parent.classList.contains('scroll')) return;
      var box = document.createElement('div');
      box.className = 'scroll';
      parent.insertBefore(box, table);
      box.appendChild(table);
    });
  }
  // A destructive or irreversible action says what will happen (and to how many) and asks
  // first: any form with data-confirm, on a page or swapped in by HTMX.
  document.addEventListener('submit', function (e) {
    var form = e.target;
    if (form && form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      e.preventDefault();
      e.stopImmediatePropagation();
    }
  }, true);
  // A slider shows its value beside it (data-show names the <output>).
  document.addEventListener('input', function (e) {
    var el = e.target;
    if (el && el.dataset && el.dataset.show) {
      var out = document.getElementById(el.dataset.show);
      if (out) { out.textContent = el.value; }
    }
  });
  // A form with data-preview-img redraws that picture from its fields as they change (the
  // poster editor's live preview), a moment after the last keystroke.
  var previewTimer = null;
  document.addEventListener('input', function (e) {
    var form = e.target && e.target.form;
    if (!form || !form.dataset || !form.dataset.previewImg) { return; }
    window.clearTimeout(previewTimer);
    previewTimer = window.setTimeout(function () {
      var img = document.getElementById(form.dataset.previewImg);
      var params = new URLSearchParams();
      new FormData(form).forEach(function (value, key) {
        if (typeof value === 'string' && key !== 'csrf_token') { params.append(key, value); }
      });
      if (img) { img.src = form.dataset.previewUrl + '?' + params.toString(); }
    }, 300);
  });
  document.addEventListener('DOMContentLoaded', function () {
    wrapTables(document);
    document.body.addEventListener('htmx:afterSwap', function (e) { wrapTables(e.target); });
  });
})();
