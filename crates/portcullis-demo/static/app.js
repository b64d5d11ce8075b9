// Loaded with this response's CSP nonce: the only way a script runs on these pages.
document.documentElement.dataset.js = "ready";
for (const time of document.querySelectorAll("time[datetime]")) {
  const date = new Date(time.getAttribute("datetime"));
  if (!Number.isNaN(date.getTime())) {
    time.textContent = date.toLocaleString();
  }
}
