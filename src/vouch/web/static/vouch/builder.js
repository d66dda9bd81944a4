// The questionnaire builder (references/questionnaires/_builder.html). Everything it does
// also works without this file: htmx posts the form's buttons and swaps the answers in
// place, and without JavaScript the same buttons post the page. This adds three things:
// - it hides the buttons only a page without JavaScript needs ([data-no-js]: "Show the
//   fields for this type", which htmx does as the type changes) and shows the drag handles;
// - it keeps aria-invalid on each field in step with its message slot (<id>-error), which
//   the checks as you type replace;
// - dragging a question by its handle. Written here rather than taken from a library: it
//   is forty lines of the browser's own drag and drop, no library is vendored, and the
//   keyboard has the Move up / Move down buttons (which a drag library would not give).
//   On drop the new order is posted (op=order) and the server draws the list again.
(function () {
  function enhance(root) {
    if (!root || !root.querySelectorAll) {
      return;
    }
    root.querySelectorAll("[data-no-js]").forEach(function (element) {
      element.hidden = true;
    });
    root.querySelectorAll("[data-drag-handle], [data-drag-hint]").forEach(function (element) {
      element.hidden = false;
    });
  }

  function markInvalid() {
    document.querySelectorAll("#builder .field-error[id$='-error']").forEach(function (slot) {
      var field = document.getElementById(slot.id.slice(0, -"-error".length));
      if (!field) {
        return;
      }
      if (slot.textContent.trim()) {
        field.setAttribute("aria-invalid", "true");
      } else {
        field.removeAttribute("aria-invalid");
      }
    });
  }

  enhance(document);
  document.addEventListener("htmx:load", function (event) {
    enhance(event.detail.elt);
  });
  document.addEventListener("htmx:afterSettle", markInvalid);
  document.addEventListener("htmx:oobAfterSwap", markInvalid);

  var dragged = null;

  function questionOf(element) {
    return element && element.closest ? element.closest("[data-question-index]") : null;
  }

  document.addEventListener("dragstart", function (event) {
    var handle = event.target.closest && event.target.closest("[data-drag-handle]");
    if (!handle) {
      return;
    }
    dragged = questionOf(handle);
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", dragged.getAttribute("data-question-index"));
    event.dataTransfer.setDragImage(dragged, 24, 24);
    dragged.classList.add("dragging");
  });

  document.addEventListener("dragover", function (event) {
    var over = questionOf(event.target);
    if (!dragged || !over || over.parentNode !== dragged.parentNode) {
      return;
    }
    event.preventDefault(); // a question is a drop target
    if (over === dragged) {
      return;
    }
    var box = over.getBoundingClientRect();
    var after = event.clientY > box.top + box.height / 2;
    over.parentNode.insertBefore(dragged, after ? over.nextSibling : over);
  });

  document.addEventListener("drop", function (event) {
    if (dragged) {
      event.preventDefault();
    }
  });

  document.addEventListener("dragend", function () {
    if (!dragged) {
      return;
    }
    var moved = dragged;
    dragged = null;
    moved.classList.remove("dragging");
    var form = moved.closest("form");
    var order = Array.prototype.map.call(moved.parentNode.querySelectorAll("[data-question-index]"), function (item) {
      return item.getAttribute("data-question-index");
    });
    var changed = order.some(function (old, position) {
      return old !== String(position);
    });
    if (!changed || !window.htmx) {
      return;
    }
    form.querySelector("input[name=order]").value = order.join(",");
    window.htmx.ajax("POST", form.getAttribute("hx-post"), {
      source: form,
      target: form,
      swap: "outerHTML",
      values: { op: "order", dragged: moved.getAttribute("data-question-index") },
    });
  });
})();
