// Small behaviours shared by every page. No inline scripts: the CSP forbids them.
document.addEventListener("click", async (event) => {
  // <button data-copy-target="#id">Copy Code</button> copies the text of #id.
  const button = event.target.closest("[data-copy-target]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copyTarget);
  if (!source) return;
  const text = ("value" in source ? source.value : source.textContent).trim();
  try {
    await navigator.clipboard.writeText(text);
    button.dataset.copied = "true";
    button.setAttribute("aria-label", "Copied");
  } catch (err) {
    // Clipboard needs a secure context; select the text so Ctrl-C works.
    if (source.select) source.select();
  }
});
