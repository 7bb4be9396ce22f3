
const done = arguments[arguments.length - 1];
const sleep = ms => new Promise(r => setTimeout(r, ms));
(async () => {
  for (const img of document.images) img.loading = 'eager';
  const height = () => document.documentElement.scrollHeight;
  for (let y = 0; y < height(); y += window.innerHeight / 2) { window.scrollTo(0, y); await sleep(25); }
  window.scrollTo(0, 0);
  const t0 = Date.now();
  while (Date.now() - t0 < 20000 && Array.from(document.images).some(i => !i.complete)) await sleep(100);
  let mathjax = 'absent';
  if (document.querySelector('.math')) {
    // the load event has passed, so a MathJax script on the page has run: a few seconds is plenty
    const t1 = Date.now();
    while (Date.now() - t1 < 5000 && !(window.MathJax && MathJax.startup && MathJax.startup.promise)) {
      await sleep(100);
    }
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      try { await MathJax.startup.promise; mathjax = 'typeset'; } catch (e) { mathjax = 'error: ' + e; }
    }
  }
  await sleep(200);
  done(mathjax);
})();
