// Read by require.js when it starts (this file is loaded just before it): the widget embedder's
// modules resolve under _static/vendor/widgets/, where its icon fonts are (book/assets.py).
var require = { baseUrl: document.currentScript.src.replace(/[^/]*$/, "") + "vendor/widgets/" };
