// The review page's one behaviour: a row's "Correct" button posts /v1/feedback with the
// chosen route and shows the server's answer (or its error) in the row.
"use strict";

function describe(expected) {
  return expected.target ? expected.action + " → " + expected.target : expected.action;
}

async function correct(row, button) {
  const select = row.querySelector("select");
  const out = row.querySelector("output.result");
  const expected = JSON.parse(select.value);
  button.disabled = true;
  out.className = "result";
  out.textContent = "sending…";
  try {
    const res = await fetch("/v1/feedback", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: row.dataset.decision, expected: expected }),
    });
    const body = await res.json().catch(() => null);
    if (res.ok) {
      const learned = body && body.learned ? "; learned" : "";
      const id = body && body.id ? " (" + body.id + ")" : "";
      out.className = "result ok";
      out.textContent = "corrected to " + describe(expected) + learned + id;
    } else {
      const message = body && body.error && body.error.message ? body.error.message : res.statusText;
      out.className = "result err";
      out.textContent = "error " + res.status + ": " + message;
    }
  } catch (e) {
    out.className = "result err";
    out.textContent = "error: " + e;
  } finally {
    button.disabled = false;
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button.correct");
  if (button) {
    correct(button.closest("tr.decision"), button);
  }
});
