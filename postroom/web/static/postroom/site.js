// Small behaviours of every page. Each only adds to a page that works without it.
"use strict";

// Styles that need scripts (the folded phone menu) apply from the first paint.
document.documentElement.classList.add("js");

document.addEventListener("DOMContentLoaded", () => {
  const phone = window.matchMedia("(max-width: 640px)").matches;

  // The phone menu: one "Menu" button instead of three lines of links.
  const toggle = document.querySelector(".menu-toggle");
  const nav = document.getElementById("main-nav");
  if (toggle && nav) {
    toggle.addEventListener("click", () => {
      const isOpen = toggle.getAttribute("aria-expanded") === "true";
      toggle.setAttribute("aria-expanded", String(!isOpen));
      nav.classList.toggle("open", !isOpen);
    });
  }

  // Copy buttons beside a one-time password, an API key or a signing secret.
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const source = document.querySelector(button.dataset.copy);
      if (!source) return;
      const text = source.textContent.trim();
      try {
        await navigator.clipboard.writeText(text);
      } catch {
        // No clipboard API (an old browser, a page not served from a secure origin).
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        document.execCommand("copy");
      }
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = "Copy"; }, 2000);
    });
  });

  // On a phone, search filters fold behind "Filters" (open while one is set), so the list
  // they filter is on the first screen.
  if (phone) {
    document.querySelectorAll("form[role=search]").forEach((form) => {
      const fields = form.querySelectorAll("input:not([type=hidden]):not([type=submit]), select");
      const isFiltering = Array.from(fields).some((field) => field.value !== "");
      const details = document.createElement("details");
      details.className = "filters-box";
      details.open = isFiltering;
      const summary = document.createElement("summary");
      summary.textContent = isFiltering ? "Filters (set)" : "Filters";
      form.replaceWith(details);
      details.append(summary, form);
    });
  }
});
