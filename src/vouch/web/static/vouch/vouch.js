// Confirmation before destructive actions: <button data-confirm="...">. No inline script (CSP).
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  var message = button && button.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});

// The main navigation is a <details> disclosure, drawn open so that it works without
// JavaScript; on a phone-sized screen it starts closed behind its Menu button, and it is open
// whenever the screen is wide (where vouch.css hides the button).
(function () {
  var menu = document.querySelector("details[data-menu]");
  if (!menu || !window.matchMedia) {
    return;
  }
  var narrow = window.matchMedia("(max-width: 640px)");
  function fit() {
    menu.open = !narrow.matches;
  }
  fit();
  narrow.addEventListener("change", fit);
})();

// After a failed submit the page starts at its error summary (autofocus in the markup; this
// for browsers that honour autofocus on form controls only), so the keyboard and screen
// readers begin where the problems are listed.
(function () {
  var summary = document.querySelector(".error-summary[autofocus]");
  if (summary && document.activeElement !== summary) {
    summary.focus();
  }
})();

// Referee answers (<form data-autosave>): saved as they go, ~800 ms after the last change,
// by a POST the view answers with 204 (or 400 with {"errors": {question id: message}}).
// The progress line (data-progress) follows what is filled in. Without JS the Save button works.
(function () {
  var form = document.querySelector("form[data-autosave]");
  if (!form || !window.fetch || !window.FormData) {
    return;
  }
  var status = document.getElementById(form.getAttribute("data-autosave-status"));
  var progress = document.getElementById(form.getAttribute("data-progress"));
  var timer = null;
  var busy = false;
  var again = false;

  function say(text, state) {
    if (status) {
      status.textContent = text;
      status.setAttribute("data-state", state || "");
    }
  }

  function countAnswered() {
    var answered = 0;
    var requiredLeft = 0;
    form.querySelectorAll("[data-question]").forEach(function (item) {
      var text = item.querySelector("textarea");
      if (text ? text.value.trim() !== "" : item.querySelector("input:checked")) {
        answered += 1;
      } else if (item.hasAttribute("data-required")) {
        requiredLeft += 1;
      }
    });
    if (progress) {
      var count = progress.querySelector("[data-answered]");
      if (count) {
        count.textContent = String(answered);
      }
      var left = progress.querySelector("[data-required-left]");
      if (left) {
        left.textContent = String(requiredLeft);
        left.parentNode.hidden = requiredLeft === 0;
      }
      var bar = progress.parentNode.querySelector("progress");
      if (bar) {
        bar.value = answered;
      }
    }
  }

  function showErrors(errors) {
    form.querySelectorAll("[data-error-for]").forEach(function (slot) {
      var message = errors[slot.getAttribute("data-error-for")] || "";
      slot.textContent = message;
      slot.closest("[data-question]").classList.toggle("has-error", message !== "");
    });
  }

  function save() {
    timer = null;
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    var data = new FormData(form);
    data.set("action", "save");
    say("Saving…", "saving");
    // The attribute, not form.action: the form's buttons are named "action", and
    // form.action would then be the button, not the address.
    fetch(form.getAttribute("action") || window.location.pathname, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-Vouch-Autosave": "1", "X-CSRFToken": data.get("csrfmiddlewaretoken") || "" },
    })
      .then(function (response) {
        if (response.status === 204) {
          showErrors({});
          var now = new Date();
          say("Saved at " + now.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) + ".", "saved");
          return;
        }
        return response.json().then(function (body) {
          if (response.status === 400 && body.errors) {
            showErrors(body.errors);
            say("Some answers need a look (marked below); the others are saved.", "error");
          } else if (response.status === 409) {
            say(body.error || "This reference is closed.", "error");
            window.location.reload();
          } else {
            say("Not saved: " + (body.error || "please use the Save button."), "error");
          }
        });
      })
      .catch(function () {
        say("Not saved: check your connection. Your answers are still on this page.", "error");
      })
      .then(function () {
        busy = false;
        if (again) {
          again = false;
          schedule();
        }
      });
  }

  function schedule() {
    countAnswered();
    say("Unsaved changes…", "pending");
    window.clearTimeout(timer);
    timer = window.setTimeout(save, 800);
  }

  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);
  form.addEventListener("submit", function (event) {
    // The page is being sent anyway: no autosave racing it. If the submit is called
    // off (the confirmation above declined), the pending save still happens.
    var pending = timer !== null;
    window.clearTimeout(timer);
    timer = null;
    window.setTimeout(function () {
      if (event.defaultPrevented && pending) {
        save();
      }
    }, 0);
  });
})();

// htmx leaves a 400 or 422 answer unswapped; a form marked data-swap-errors shows it in
// place (its fragment carries the error next to the field, and the text typed).
document.addEventListener("htmx:beforeSwap", function (event) {
  var elt = event.detail.elt;
  var status = event.detail.xhr.status;
  if ((status === 400 || status === 422) && elt && elt.closest && elt.closest("[data-swap-errors]")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

// Copy buttons: <button type="button" data-copy="id of the element whose text is copied">
// (a new API key's secret, shown once).
document.addEventListener("click", function (event) {
  var button = event.target.closest && event.target.closest("button[data-copy]");
  if (!button || !navigator.clipboard) {
    return;
  }
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (source) {
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      button.textContent = "Copied";
    });
  }
});

// A search refused as busy (429: a company runs a few searches at once) would leave the
// earlier results on screen as if they answered what is typed now. The form (marked
// data-busy-status with the id of its status line) says so, above the results and to
// screen readers, and asks again once Retry-After has passed (at most 10 s).
document.addEventListener("htmx:responseError", function (event) {
  var xhr = event.detail.xhr;
  var elt = event.detail.elt;
  var form = elt && elt.closest ? elt.closest("form[data-busy-status]") : null;
  if (xhr.status !== 429 || !form) {
    return;
  }
  var text = "Vouch is busy: your search will be tried again in a moment.";
  var status = document.getElementById(form.getAttribute("data-busy-status"));
  if (status) {
    status.textContent = text;
  }
  var results = document.querySelector(form.getAttribute("hx-target"));
  if (results) {
    var note = results.querySelector(".search-busy") || document.createElement("p");
    note.className = "message search-busy";
    note.textContent = text;
    results.insertBefore(note, results.firstChild);
  }
  var seconds = Math.min(parseInt(xhr.getResponseHeader("Retry-After"), 10) || 1, 10);
  setTimeout(function () {
    htmx.trigger(form, "submit");
  }, seconds * 1000);
});
