// The theme's navigation folds sections with an icon-only <summary>: give each a name that screen
// readers announce (axe: summary-name).
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("summary").forEach((summary) => {
    if (!summary.textContent.trim() && !summary.hasAttribute("aria-label")) {
      summary.setAttribute("aria-label", "Show or hide the pages in this section");
    }
  });
});
