// The sandbox inbox: each card drawn by Microsoft's renderer (window.AdaptiveCards) with
// the host config of the client it came to; a click is posted to /_sandbox/act, which
// signs it as the Bot Framework does and sends it to the service. See inbox.py.
"use strict";

(function () {
  const settings = JSON.parse(document.getElementById("inbox-settings").textContent);
  const status = document.getElementById("inbox-status");
  const lists = {
    teams: document.getElementById("teams-items"),
    outlook: document.getElementById("mail-items"),
  };
  const POLL_MS = 2000;
  const shown = new Map(); // item key -> {version, element}
  let busy = 0; // clicks in flight: no redraw under the user's feet meanwhile

  if (!window.AdaptiveCards) {
    status.textContent = "Microsoft's Adaptive Cards renderer did not load.";
    status.setAttribute("role", "alert");
    return;
  }
  const AC = window.AdaptiveCards;
  const hostConfigs = {};
  for (const [channel, json] of Object.entries(settings.hostConfigs)) {
    hostConfigs[channel] = new AC.HostConfig(json);
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function when(iso) {
    const date = new Date(iso);
    return isNaN(date) ? String(iso || "") : date.toLocaleString("en-GB");
  }

  // --- clicks ----------------------------------------------------------------------

  function clicked(action) {
    // Action.Execute carries its verb; the Action.Submit fallback carries it in its data.
    if (action instanceof AC.ExecuteAction) {
      return { verb: action.verb, data: action.data || {} };
    }
    if (action instanceof AC.SubmitAction) {
      const data = action.data || {};
      return { verb: data.verb, data: data };
    }
    return null;
  }

  function reply(body) {
    // What the bot answered, in words for the item's status line.
    if (!body || typeof body !== "object") return "";
    if (body.type === "application/vnd.microsoft.activity.message") return String(body.value);
    if (body.type === "application/vnd.microsoft.error") {
      const value = body.value || {};
      return "The service refused: " + (value.message || value.code || "an error");
    }
    return "";
  }

  async function execute(item, action, note, slot) {
    if (action instanceof AC.OpenUrlAction) {
      window.open(action.url, "_blank", "noopener");
      return;
    }
    const click = clicked(action);
    if (!click || !click.verb) return;
    // One click at a time per card, as Teams does while an invoke is in flight.
    const buttons = Array.from(slot.querySelectorAll("button:not([disabled])"));
    for (const button of buttons) button.disabled = true;
    busy += 1;
    note.textContent = "Sending…";
    note.removeAttribute("role");
    try {
      const answer = await fetch(settings.act, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ user: settings.user, verb: click.verb, data: click.data, ...item.target }),
      });
      const result = await answer.json();
      if (!answer.ok) {
        note.textContent = "The click was not sent: " + JSON.stringify(result.error || result);
        note.setAttribute("role", "alert");
      } else if (result.status !== 200) {
        note.textContent = "The service answered HTTP " + result.status + ". " + reply(result.body);
        note.setAttribute("role", "alert");
      } else {
        note.textContent = result.card_replaced ? "" : reply(result.body);
      }
    } catch (error) {
      note.textContent = "The click was not sent: " + error;
      note.setAttribute("role", "alert");
    } finally {
      busy -= 1;
    }
    await refresh();
    for (const button of buttons) button.disabled = false; // the card was kept, not redrawn
  }

  // --- drawing ---------------------------------------------------------------------

  function drawCard(item, slot, note) {
    const card = new AC.AdaptiveCard();
    card.hostConfig = hostConfigs[item.channel];
    card.onExecuteAction = (action) => execute(item, action, note, slot);
    try {
      card.parse(item.card);
      slot.replaceChildren(card.render());
    } catch (error) {
      slot.replaceChildren(el("p", { role: "alert" }, "The renderer could not draw this card: " + error));
    }
  }

  function draw(item) {
    const article = el("article", { class: "item " + item.channel, "data-key": item.key });
    const meta = el("p", { class: "meta" });
    if (item.channel === "outlook") {
      article.setAttribute("aria-label", item.subject || "Mail");
      meta.textContent = "From " + item.from + " · " + when(item.sent);
      article.append(el("h3", {}, item.subject), meta);
    } else {
      article.setAttribute("aria-label", "Message from " + settings.bot + ", " + when(item.sent));
      meta.textContent = settings.bot + " · " + when(item.sent) +
        (item.updated && item.updated !== item.sent ? " · updated " + when(item.updated) : "");
      article.append(meta);
      if (!item.card && item.text) article.append(el("p", {}, item.text));
    }
    const note = el("p", { class: "note", "aria-live": "polite" });
    if (item.card) {
      const slot = el("div", { class: "card" });
      article.append(slot);
      drawCard(item, slot, note);
    }
    article.append(note);
    if (item.channel === "outlook") {
      if (item.card_note) article.append(el("p", { class: "meta" }, item.card_note));
      const details = el("details");
      details.append(el("summary", {}, item.card ? "The mail's body (shown by clients without actionable messages)" : "The mail's body"));
      if (item.html) {
        const frame = el("iframe", { sandbox: "", title: "Body of " + (item.subject || "the mail") });
        frame.srcdoc = item.body;
        details.append(frame);
      } else {
        details.append(el("pre", {}, item.body));
      }
      if (!item.card) details.open = true;
      article.append(details);
    }
    return article;
  }

  function place(item, article) {
    const list = lists[item.channel];
    const old = shown.get(item.key);
    if (old) {
      old.element.replaceWith(article);
    } else if (item.channel === "outlook") {
      // Newest mail first: a mail not seen before goes above the others.
      list.prepend(article);
    } else {
      list.append(article);
    }
    shown.set(item.key, { version: item.version, element: article });
  }

  async function refresh() {
    let answer;
    try {
      answer = await fetch(settings.items, { cache: "no-store" });
    } catch (error) {
      status.textContent = "The sandbox did not answer: " + error;
      return;
    }
    if (!answer.ok) {
      status.textContent = "The sandbox answered HTTP " + answer.status;
      return;
    }
    const items = (await answer.json()).items;
    for (const item of items) {
      const old = shown.get(item.key);
      if (!old || old.version !== item.version) place(item, draw(item));
    }
    const count = { teams: 0, outlook: 0 };
    for (const item of items) count[item.channel] += 1;
    for (const [channel, list] of Object.entries(lists)) {
      let empty = list.querySelector(".empty");
      if (count[channel] === 0 && !empty) {
        list.append(el("p", { class: "empty meta" }, channel === "teams" ? "No Teams messages." : "No mail."));
      } else if (count[channel] > 0 && empty) {
        empty.remove();
      }
    }
    const counted = count.teams + " Teams message(s), " + count.outlook +
      " mail(s); new ones appear by themselves.";
    if (status.textContent !== counted) status.textContent = counted;
  }

  async function poll() {
    if (!busy && !document.hidden) await refresh();
    window.setTimeout(poll, POLL_MS);
  }

  refresh().then(() => window.setTimeout(poll, POLL_MS));
})();
