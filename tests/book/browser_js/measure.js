
const main = document.querySelector('main') || document.body;
const shown = el => el.getClientRects().length > 0 && el.offsetHeight > 0
                    && (!el.checkVisibility || el.checkVisibility({visibilityProperty: true}));
const brief = s => s.replace(/\s+/g, ' ').trim().slice(0, 80);
const pageText = () => {  // prose only: code and scripts may contain $ or \( legitimately
  const copy = main.cloneNode(true);
  copy.querySelectorAll('pre, code, script, style, mjx-container, .highlight').forEach(e => e.remove());
  return copy.textContent;
};
const article = document.querySelector('article.bd-article') || main;
const column = article.getBoundingClientRect();
const pres = Array.from(main.querySelectorAll('div.cell_input pre, div.cell_output pre, div.highlight pre'))
  .filter(shown);
const maths = Array.from(main.querySelectorAll('.math'));
const outputs = Array.from(main.querySelectorAll('div.cell_output'));
const solutions = Array.from(main.querySelectorAll('div.cell')).filter(cell => {
  const code = cell.querySelector('div.cell_input pre');
  return code && code.textContent.trimStart().startsWith('# Solution');
});
return {
  title: document.title,
  images: Array.from(document.images).map(i => ({
    src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0, shown: shown(i)})),
  math: maths.length,
  untypeset: maths.filter(m => !m.querySelector('mjx-container')).map(m => brief(m.textContent)),
  raw_math: (pageText().match(/\$\$|\\\(|\\\[|\$[^$\s][^$\n]*\$/g) || []).map(brief),
  errors: outputs.filter(o => o.querySelector('.traceback, .error, .output.traceback, .output.error')
                              || /Traceback \(most recent call last\)|^\w*(Error|Exception): /m.test(o.textContent))
                 .map(o => brief(o.textContent)),
  wide: pres.filter(p => p.scrollWidth > p.clientWidth + 1 || p.getBoundingClientRect().right > column.right + 1)
            .map(p => ({text: brief(p.textContent.split('\n').reduce((a, b) => (b.length > a.length ? b : a), '')),
                        scroll: p.scrollWidth, client: p.clientWidth})),
  column: Math.round(column.width),
  boxes: Array.from(main.querySelectorAll('table, img, div.cell_output')).filter(shown)
  .map(el => {
    // The box a reader sees of el: el itself, or the nearest ancestor (inside the
    // column) that clips or scrolls it sideways. That box must lie within the column,
    // and el must not start left of it (what starts left of a scroll box cannot be
    // scrolled to).
    let clip = null;
    for (let p = el.parentElement; p && p !== article && !clip; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== 'visible') clip = p;
    }
    const r = el.getBoundingClientRect();
    const c = clip ? clip.getBoundingClientRect() : null;
    const seen = c || r;
    const kind = el.tagName === 'IMG' ? 'figure'
                 : el.tagName === 'TABLE' ? 'table' : 'output';
    const text = kind === 'figure' ? (el.getAttribute('src') || '').split('/').pop()
                                   : brief(el.innerText || el.textContent);
    const problems = [];
    if (seen.left < column.left - 1) problems.push(
        `starts ${Math.round(column.left - seen.left)} px left of the content column`);
    if (seen.right > column.right + 1) problems.push(
        `is wider than the content column (${Math.round(seen.width)} px shown; column `
        + `${Math.round(column.width)} px, its right edge `
        + `${Math.round(seen.right - column.right)} px beyond it)`);
    if (c && r.left < c.left - 1) problems.push(
        `starts ${Math.round(c.left - r.left)} px left of the box it scrolls in `
        + '(that part cannot be reached)');
    const hides = c && /hidden|clip/.test(getComputedStyle(clip).overflowX);
    if (hides && r.right > c.right + 1) problems.push(
        `is cut off: ${Math.round(r.right - c.right)} px of it are hidden on the right `
        + 'and cannot be scrolled to');
    return {kind, text, problems};
  }).filter(b => b.problems.length),
  solutions: solutions.map(cell => ({
    toggles: cell.querySelectorAll('details > summary').length,
    open: cell.querySelectorAll('details[open]').length,
    visible: Array.from(cell.querySelectorAll('div.cell_input, div.cell_output')).filter(shown).length,
    parts: cell.querySelectorAll('div.cell_input, div.cell_output').length,
  })),
};
