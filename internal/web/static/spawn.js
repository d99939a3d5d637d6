// Follows the spawn progress events and opens the server when it is ready.
(function () {
  var box = document.getElementById("progress");
  var bar = document.getElementById("progress-bar");
  var msg = document.getElementById("progress-message");
  var log = document.getElementById("progress-log");
  var err = document.getElementById("spawn-error");
  var source = new EventSource(box.dataset.events);
  source.onmessage = function (e) {
    var ev = JSON.parse(e.data);
    if (ev.progress !== undefined) bar.value = ev.progress;
    if (ev.message) {
      msg.textContent = ev.message;
      var li = document.createElement("li");
      li.textContent = ev.message;
      log.appendChild(li);
    }
    if (ev.ready) {
      source.close();
      window.location.href = ev.url;
    } else if (ev.failed) {
      source.close();
      err.hidden = false;
      err.textContent = "Spawn failed: " + (ev.message || "unknown error");
    }
  };
  source.onerror = function () {
    msg.textContent = "Lost contact with the hub; retrying…";
  };
})();
