
const main = document.querySelector('article.bd-article') || document.querySelector('main')
             || document.body;  // the page's text, not the side bars ("Contents" is an h2)
const label = main.querySelector('.perturbbook-build');
if (!label) return null;
const h1 = main.querySelector('h1'), h2 = main.querySelector('h2');
const box = label.getBoundingClientRect();
return {text: label.innerText, top: box.top + window.scrollY, height: box.height,
        h1: h1 ? h1.getBoundingClientRect().bottom + window.scrollY : null,
        h2: h2 ? h2.getBoundingClientRect().top + window.scrollY : null};
