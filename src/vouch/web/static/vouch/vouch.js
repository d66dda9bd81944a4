// Confirmation before destructive actions: <button data-confirm="...">. No inline script (CSP).
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  var message = button && button.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});

// htmx leaves a 400 answer unswapped; a form marked data-swap-errors shows it in place
// (its fragment carries the error next to the field, and the text typed).
document.addEventListener("htmx:beforeSwap", function (event) {
  var elt = event.detail.elt;
  if (event.detail.xhr.status === 400 && elt && elt.closest && elt.closest("[data-swap-errors]")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
