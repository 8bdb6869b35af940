// The Events page's live tail: an EventSource on /console/events/tail (same origin, so the
// session cookie goes with it). Every event is shown with textContent, never as markup, so a
// payload cannot become script.
"use strict";
(function () {
  var section = document.getElementById("tail");
  if (!section) {
    return;
  }
  var list = document.getElementById("tail-events");
  var status = document.getElementById("tail-status");
  var button = document.getElementById("tail-toggle");
  var source = null;
  var shown = 0;

  function say(text) {
    status.textContent = text;
  }

  function stop(text) {
    if (source) {
      source.close();
      source = null;
    }
    button.textContent = "Start tail";
    say(text);
  }

  function add(heading, data) {
    var text = data;
    var event = null;
    try {
      event = JSON.parse(data);
      text = JSON.stringify(event.payload === undefined ? event : event.payload, null, 2);
    } catch (e) {
      event = null;
    }
    var item = document.createElement("li");
    var title = document.createElement("p");
    title.textContent = event && event.type
      ? "#" + event.sequence + " · " + event.type
      : heading;
    var body = document.createElement("pre");
    body.textContent = text;
    item.appendChild(title);
    item.appendChild(body);
    list.insertBefore(item, list.firstChild);
    shown += 1;
    // The page keeps the newest 200; the rest are in the replay list.
    while (list.children.length > 200) {
      list.removeChild(list.lastChild);
    }
    say("Live: " + shown + " event" + (shown === 1 ? "" : "s") + " received.");
  }

  button.addEventListener("click", function () {
    if (source) {
      stop("Stopped.");
      return;
    }
    var url = "/console/events/tail?topic=" + encodeURIComponent(section.dataset.topic);
    source = new EventSource(url);
    button.textContent = "Stop tail";
    say("Connecting…");
    source.addEventListener("subscribed", function () {
      say("Live: waiting for new events.");
      section.dataset.live = "true";
    });
    source.addEventListener("message", function (e) {
      add("event", e.data);
    });
    source.addEventListener("gap", function (e) {
      add("Some events were no longer retained", e.data);
    });
    source.addEventListener("error", function (e) {
      // The server's own last word (shutdown, maximum duration) comes as data; a refusal
      // (too many tails, logged out) or a lost connection as a bare error.
      var why = e.data ? "Ended: " + e.data : "Ended: the tail was refused or the connection was lost.";
      section.dataset.live = "false";
      stop(why);
    });
  });
})();
