// Controls whose aria-label differs from their visible text (the search button's
// "Ctrl+K", the "Show code cell source" toggles) confuse speech-input users, who say
// what they see (axe: label-content-name-mismatch). Let the visible text name them.
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
document.addEventListener("DOMContentLoaded", nameControlsByTheirText);
window.addEventListener("load", nameControlsByTheirText);
