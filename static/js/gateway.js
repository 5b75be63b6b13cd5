// Appliance GUI behaviours (no inline scripts: the CSP forbids them).
document.addEventListener("change", (event) => {
  // The appliance switcher navigates to the chosen appliance.
  const select = event.target.closest("select[data-navigate]");
  if (select && select.value) window.location.assign(select.value);
});
