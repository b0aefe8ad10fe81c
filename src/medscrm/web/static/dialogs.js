/* medscrm console: dialogs. A button with data-open-dialog="ID" opens <dialog id="ID">; a button with
   data-close-dialog closes the dialog it is in. Loaded on every page (base.html). */
(function () {
  "use strict";
  document.addEventListener("click", function (evt) {
    var t = evt.target;
    if (!t || !t.closest) return;
    var open = t.closest("[data-open-dialog]");
    if (open) {
      var d = document.getElementById(open.getAttribute("data-open-dialog"));
      if (d && d.showModal && !d.open) { evt.preventDefault(); d.showModal(); }
      return;
    }
    var close = t.closest("[data-close-dialog]");
    if (close) {
      var dlg = close.closest("dialog");
      if (dlg) { evt.preventDefault(); dlg.close(); }
    }
  });
})();
