
const note = document.querySelector('.perturbbook-build');
const target = note.querySelector('summary') || note.querySelector('button.toggle-button')
               || note.querySelector('.admonition-title') || note;
target.click();
