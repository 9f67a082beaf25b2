// Render the formulas of the page with KaTeX (served from the site: assets/katex/, no CDN).
// pymdownx.arithmatex (generic mode) leaves $...$ as <span class="arithmatex">\(...\)</span> and
// $$...$$ as <div class="arithmatex">\[...\]</div>; auto-render turns them into .katex elements.
// A formula KaTeX cannot parse is reported on the console (./lab site --check fails on it).
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".arithmatex").forEach(function (el) {
    renderMathInElement(el, {
      delimiters: [
        { left: "\\(", right: "\\)", display: false },
        { left: "\\[", right: "\\]", display: true },
      ],
      throwOnError: true,
    });
  });
});
