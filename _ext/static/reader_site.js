// Controls whose aria-label differs from their visible text (the search button's
// "Ctrl+K", the "Show code cell source" toggles, the colour-mode button once its icons
// carry titles) confuse speech-input users, who say what they see (axe:
// label-content-name-mismatch). Let the visible text name them, also after the theme's
// scripts change the controls.
function nameControlsByTheirText() {
  document
    .querySelectorAll("button[aria-label], summary[aria-label]")
    .forEach((control) => {
      const text = control.textContent.replace(/\s+/g, " ").trim();
      if (text && text !== control.getAttribute("aria-label")) {
        control.removeAttribute("aria-label");
      }
    });
}

document.addEventListener("DOMContentLoaded", () => {
  nameControlsByTheirText();
  new MutationObserver(nameControlsByTheirText).observe(document.body, {
    attributes: true,
    attributeFilter: ["aria-label"],
    childList: true,
    subtree: true,
  });
});
