// Portal behaviours (no inline scripts: the CSP forbids them).
(function () {
  function closeDialog() {
    var box = document.getElementById("dialog");
    if (box) box.innerHTML = "";
  }
  document.addEventListener("click", function (event) {
    var closer = event.target.closest("[data-close-dialog]");
    if (closer && document.getElementById("dialog") && document.querySelector("#dialog .modal")) {
      // Inside the page the dialog just closes; reload when it changed something.
      if (closer.hasAttribute("data-reload")) return; // follow the link
      event.preventDefault();
      closeDialog();
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") closeDialog();
  });
  // Dialog forms answer 422 with their errors and 403 with the reason: show them.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status === 422 || status === 403) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  // Focus the first field of a dialog when it opens.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.target.id === "dialog") {
      var first = event.target.querySelector("input:not([type=hidden]):not([readonly]), textarea:not([readonly]), select");
      if (first) first.focus();
    }
  });
  // Licenses tab: the reservation type radios show or hide the quantity table.
  document.addEventListener("change", function (event) {
    if (event.target.name === "reservation_type") {
      var table = document.querySelector("[data-specific-only]");
      if (table) table.hidden = event.target.value !== "SPECIFIC";
    }
  });
})();
