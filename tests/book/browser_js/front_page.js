
const main = document.querySelector('article.bd-article') || document.querySelector('main')
             || document.body;
const shown = el => !!el && el.getClientRects().length > 0 && el.offsetHeight > 0
                    && (!el.checkVisibility || el.checkVisibility({visibilityProperty: true}));
const img = Array.from(main.querySelectorAll('img'))
  .find(i => (i.getAttribute('src') || '').includes('figure1'));
const h2 = main.querySelector('h2');
const note = main.querySelector('.perturbbook-build');
const table = note ? note.querySelector('table') : null;
const top = el => el.getBoundingClientRect().top + window.scrollY;
return {
  figure: img ? {ok: img.complete && img.naturalWidth > 0, shown: shown(img),
                 above_h2: !h2 || top(img) < top(h2)} : null,
  answer: main.textContent.includes('The answer.'),
  note: note ? {table_shown: shown(table), rows: table ? table.rows.length : 0,
                text: note.innerText.slice(0, 200)} : null,
};
