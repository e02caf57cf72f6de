// Contact Email: the rich-text editor, recipient suggestions, templates, what Send will do
// (kept up to date as recipients are typed) and Ctrl+Enter to send, on the compose and
// template forms. Without this script the forms still work: the plain-text body is sent,
// addresses are typed, "Use template" fills the form from the server, and what Send will do
// is shown as the page was loaded.
"use strict";

(function () {
  // Links a mail reader can follow; the server's sanitizer drops any other kind anyway.
  const LINK_SCHEMES = /^(https?:|mailto:|tel:)/i;

  // `hidden` alone loses to a stylesheet's display rule (buttons, .field): set both.
  function setShown(element, shown) {
    element.hidden = !shown;
    element.style.display = shown ? "" : "none";
  }

  function escapeHtml(text) {
    const span = document.createElement("span");
    span.textContent = text;
    return span.innerHTML;
  }

  function textToHtml(text) {
    return text
      .replace(/\r\n/g, "\n")
      .trim()
      .split(/\n\s*\n/)
      .filter((paragraph) => paragraph.length > 0)
      .map((paragraph) => "<p>" + escapeHtml(paragraph).replace(/\n/g, "<br>") + "</p>")
      .join("");
  }

  function setUpBody(form) {
    const box = form.querySelector("[data-body-editor]");
    if (!box) return null;
    const modes = box.querySelector("[data-body-format]");
    const textBody = box.querySelector("[data-text-body]");
    const textarea = textBody.querySelector("textarea");
    const richBody = box.querySelector("[data-rich-body]");
    const editor = box.querySelector("[data-editor]");
    const htmlField = box.querySelector("[data-html-field]");

    // Enter makes a paragraph, as in a word processor (Chrome would make a <div>).
    document.execCommand("defaultParagraphSeparator", false, "p");

    function isRich() {
      const checked = modes.querySelector("input:checked");
      return checked !== null && checked.value === "html";
    }

    function show() {
      const rich = isRich();
      setShown(textBody, !rich);
      setShown(richBody, rich);
    }

    function switchTo(mode) {
      if (mode === "html" && !editor.textContent.trim() && textarea.value.trim()) {
        editor.innerHTML = textToHtml(textarea.value);
      } else if (mode === "text" && editor.textContent.trim()) {
        textarea.value = editor.innerText.replace(/\n{3,}/g, "\n\n").trim() + "\n";
      }
      modes.querySelector("input[value='" + mode + "']").checked = true;
      show();
    }

    setShown(modes, true);
    editor.innerHTML = editor.dataset.initialHtml || "";
    modes.addEventListener("change", (event) => switchTo(event.target.value));
    show();

    box.querySelectorAll("[data-command]").forEach((button) => {
      button.addEventListener("mousedown", (event) => event.preventDefault()); // keep the selection
      button.addEventListener("click", () => {
        editor.focus();
        const command = button.dataset.command;
        if (command === "createLink") {
          const url = window.prompt("Link address (https://…, mailto:…)", "https://");
          if (!url || url === "https://") return;
          if (!LINK_SCHEMES.test(url.trim()) && !/^\{\{/.test(url.trim())) {
            window.alert("Use a link starting with https://, http://, mailto: or tel:.");
            return;
          }
          document.execCommand("createLink", false, url.trim());
        } else {
          document.execCommand(command, false, null);
        }
      });
    });

    form.addEventListener("submit", () => {
      htmlField.value = isRich() && editor.textContent.trim() ? editor.innerHTML : "";
    });

    return {
      fill(values) {
        textarea.value = values.text || "";
        if (values.html) {
          editor.innerHTML = values.html;
          modes.querySelector("input[value='html']").checked = true;
        } else {
          editor.innerHTML = values.text_as_html || "";
          modes.querySelector("input[value='text']").checked = true;
        }
        show();
      },
      isEmpty() {
        return !textarea.value.trim() && !editor.textContent.trim();
      },
    };
  }

  function setUpTemplates(form, body) {
    const select = form.querySelector("select[name='template']");
    if (!select || !body || !form.dataset.templateUrl) return;
    const button = form.querySelector("[data-use-template]");
    if (button) setShown(button, false);
    const subject = form.querySelector("input[name='subject']");
    select.addEventListener("change", async () => {
      if (!select.value) return;
      if ((subject.value.trim() || !body.isEmpty()) &&
          !window.confirm("Replace the subject and message with the template?")) {
        return;
      }
      const url = form.dataset.templateUrl.replace(/0\/$/, encodeURIComponent(select.value) + "/");
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) {
        window.alert("The template could not be loaded; it may have been deleted.");
        return;
      }
      const values = await response.json();
      subject.value = values.subject || "";
      body.fill(values);
    });
  }

  // What Send will do ("3 emails … Carol (Cc) will receive 3 copies"), asked of the server
  // as the recipients or the way of sending change: the server reads addresses and contacts
  // exactly as Send will.
  function setUpPlan(form) {
    const url = form.dataset.planUrl;
    if (!url || !form.querySelector("[data-send-plan]")) return () => {};
    let timer = null;
    let asked = 0;
    async function refresh() {
      const number = ++asked;
      const data = new FormData();
      for (const name of ["csrfmiddlewaretoken", "to", "cc", "bcc"]) {
        const field = form.elements.namedItem(name);
        if (field) data.append(name, field.value);
      }
      data.append("delivery", form.dataset.delivery || "together");
      let response;
      try {
        response = await fetch(url, { method: "POST", body: data, credentials: "same-origin" });
      } catch (error) {
        return; // offline for a moment: the summary catches up on the next change
      }
      if (!response.ok || number !== asked) return; // an answer to an older question
      const current = form.querySelector("[data-send-plan]");
      const holder = document.createElement("div");
      holder.innerHTML = await response.text();
      const fresh = holder.querySelector("[data-send-plan]");
      // The same element keeps its content fresh: a live region is announced only if it stays.
      if (current && fresh && number === asked) current.innerHTML = fresh.innerHTML;
    }
    function soon() {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 250);
    }
    for (const name of ["to", "cc", "bcc"]) {
      const field = form.querySelector("textarea[name='" + name + "']");
      if (field) field.addEventListener("input", soon);
    }
    return soon;
  }

  // "One email to all" or "Individually": the preview number only means something for the
  // second (postroom.css hides it by the form's data-delivery).
  function setUpDelivery(form, planChanged) {
    form.querySelectorAll("input[name='delivery']").forEach((radio) => {
      radio.addEventListener("change", () => {
        if (!radio.checked) return;
        form.dataset.delivery = radio.value;
        planChanged();
      });
    });
  }

  // Ctrl+Enter (Cmd+Enter on a Mac) sends, as in mail programs; Send's own checks apply.
  function setUpShortcut(form) {
    const send = form.querySelector("button[name='action'][value='send']");
    if (!send) return;
    form.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
      if (event.target.id === "contact-search") return;
      event.preventDefault();
      form.requestSubmit(send);
    });
  }

  function setUpSuggestions(form, planChanged) {
    const search = form.querySelector("#contact-search");
    const list = form.querySelector("#contact-suggestions");
    if (!search || !list) return;
    // The search box is for finding, not for sending: Enter must not submit the form.
    search.addEventListener("keydown", (event) => {
      if (event.key === "Enter") event.preventDefault();
    });
    list.addEventListener("click", (event) => {
      const button = event.target.closest("[data-add-recipient]");
      if (!button) return;
      const field = form.querySelector("textarea[name='" + button.dataset.addRecipient + "']");
      const current = field.value.replace(/[\s,;]+$/, "");
      field.value = (current ? current + "\n" : "") + button.dataset.address;
      planChanged();
      list.innerHTML = "";
      search.value = "";
      search.focus();
    });
  }

  document.querySelectorAll("form[data-compose]").forEach((form) => {
    const body = setUpBody(form);
    setUpTemplates(form, body);
    const planChanged = setUpPlan(form);
    setUpDelivery(form, planChanged);
    setUpSuggestions(form, planChanged);
    setUpShortcut(form);
    // A page that came back with problems starts at their list (its links lead to each).
    const problems = form.querySelector("#compose-errors");
    if (problems) problems.focus();
  });
})();
