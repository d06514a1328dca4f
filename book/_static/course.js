// The course's additions to the book theme's pages.
(function () {
  // The ipywidgets embedder typesets widget labels with MathJax 2's API (MathJax.Hub.Queue); the
  // site runs MathJax 3. Give MathJax 3's global object that one call, mapped to typesetPromise.
  // (MathJax 3 replaces window.MathJax with its own object when it starts, hence the setter.)
  const hub = {
    Queue(job) {
      const element = Array.isArray(job) ? job[2] : undefined;
      const typeset = () => window.MathJax.typesetPromise(element ? [element] : undefined);
      const startup = window.MathJax.startup;
      return startup && startup.promise ? startup.promise.then(typeset) : undefined;
    },
  };
  let mathjax = window.MathJax;
  const withHub = (value) => {
    if (value && value.version && !value.Hub) value.Hub = hub;
    return value;
  };
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    get: () => mathjax,
    set: (value) => { mathjax = withHub(value); },
  });
  withHub(mathjax);

  // Names for screen readers where the theme and the widgets leave none (axe: summary-name,
  // aria-input-field-name): the navigation's icon-only fold buttons, and widget sliders (named
  // after their label).
  function name(root) {
    root.querySelectorAll("summary").forEach((summary) => {
      if (!summary.textContent.trim() && !summary.hasAttribute("aria-label")) {
        summary.setAttribute("aria-label", "Show or hide the pages in this section");
      }
    });
    root.querySelectorAll("[role=slider]:not([aria-label])").forEach((slider) => {
      const widget = slider.closest(".widget-slider, .jupyter-widgets");
      const label = widget && widget.querySelector(".widget-label");
      slider.setAttribute("aria-label", (label && label.textContent.trim()) || "slider");
    });
    root.querySelectorAll(".jupyter-widgets img:not([alt]), img.widget-image:not([alt])").forEach((image) => {
      image.setAttribute("alt", "The widget's figure, as it was last drawn");
    });
  }
  document.addEventListener("DOMContentLoaded", () => {
    name(document);
    new MutationObserver(() => name(document)).observe(document.body, { childList: true, subtree: true });
  });
})();
