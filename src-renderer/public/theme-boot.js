// Applies the saved theme before first paint, so a dark-mode user never sees a white flash.
// A classic script file rather than inline code, so the strict CSP (script-src 'self') allows it.
try {
  const t = localStorage.getItem('atelier.theme');
  if (t === 'light' || t === 'dark') document.documentElement.dataset.theme = t;
} catch {
  // Storage unavailable: the theme setting applies once the app loads.
}
