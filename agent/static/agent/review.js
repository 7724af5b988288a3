// The review page (templates/admin/agent/triageproposal/review.html): says beside the Reject
// button what Reject will save as the evaluation example, as the reviewer picks the right
// labels. A static file, not an inline script: the Content-Security-Policy runs none.
(function () {
  const form = document.getElementById("reject-form");
  const line = document.getElementById("reject-example");
  if (!form || !line) {
    return;
  }
  const chosen = (select) => (select.value ? select.options[select.selectedIndex].text : "");
  form.addEventListener("change", function () {
    const category = chosen(form.elements.correct_category);
    const urgency = chosen(form.elements.correct_urgency).toLowerCase();
    const key = category ? (urgency ? "both" : "category") : (urgency ? "urgency" : "none");
    line.textContent = line.dataset[key]
      .replace("{category}", () => category)
      .replace("{urgency}", () => urgency);
  });
})();
