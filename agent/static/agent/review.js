/* The review page (templates/admin/agent/triageproposal/review.html): what Reject will save,
   the copy button of the clarification question, and the keyboard shortcuts. No inline
   script: the Content-Security-Policy allows scripts from this server only. */
(function () {
  "use strict";

  // Says what Reject will save as the reviewer picks the right labels.
  function followRejectLabels() {
    const form = document.getElementById("reject-form");
    const line = document.getElementById("reject-example");
    if (!form || !line) return;
    const chosen = (select) => (select.value ? select.options[select.selectedIndex].text : "");
    form.addEventListener("change", function () {
      const category = chosen(form.elements.correct_category);
      const urgency = chosen(form.elements.correct_urgency).toLowerCase();
      const key = category ? (urgency ? "both" : "category") : (urgency ? "urgency" : "none");
      line.textContent = line.dataset[key]
        .replace("{category}", () => category)
        .replace("{urgency}", () => urgency);
    });
  }

  // Copies the clarification question, for the reviewer's own helpdesk. The clipboard API
  // needs a secure context (HTTPS or localhost); elsewhere the text is selected instead.
  function copyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      const source = document.getElementById(button.dataset.copy);
      const status = document.getElementById("copy-status");
      const say = (text) => { if (status) status.textContent = text; };
      button.addEventListener("click", function () {
        const text = source.textContent;
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(
            () => say("Copied."),
            () => { selectText(source); say("Selected: press Ctrl+C to copy."); }
          );
        } else {
          selectText(source);
          say("Selected: press Ctrl+C to copy.");
        }
      });
    });
  }

  function selectText(element) {
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  // The shortcuts the page documents (#shortcuts). None fires while the reviewer types in a
  // field, or with Ctrl, Alt or Meta held (the browser's own shortcuts stay theirs).
  const KEYS = {
    a: () => click("approve"),
    e: () => focus("#edit-form textarea[name=note]"),
    r: () => focus("#reject-form textarea[name=reason]"),
    c: () => click("claim"),
    j: () => follow("next-proposal"),
    k: () => follow("previous-proposal"),
  };

  function typing(target) {
    return target instanceof HTMLElement
      && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  }

  function click(id) {
    const button = document.getElementById(id);
    if (button) button.click();
  }

  function focus(selector) {
    const field = document.querySelector(selector);
    if (!field) return;
    field.scrollIntoView({ block: "center" });
    field.focus();
  }

  function follow(id) {
    const link = document.getElementById(id);
    if (link) window.location.assign(link.href);
  }

  function shortcuts() {
    document.addEventListener("keydown", function (event) {
      const target = event.target;
      if (typing(target)) {
        if (event.key === "Escape") target.blur();
        if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && target.form) {
          event.preventDefault();
          target.form.requestSubmit();
        }
        return;
      }
      if (event.ctrlKey || event.altKey || event.metaKey || event.repeat) return;
      const action = KEYS[event.key];
      if (!action) return;
      event.preventDefault();
      action();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    followRejectLabels();
    copyButtons();
    shortcuts();
  });
})();
