// Small DOM helpers: build elements without HTML strings (nothing the API returns is ever
// parsed as markup), and show an error as text.

/** A new `tag` element with `props` (dataset merged) and `children` (nodes or strings). */
export function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  const { dataset, ...rest } = props;
  Object.assign(node, rest);
  if (dataset) Object.assign(node.dataset, dataset);
  node.append(...children);
  return node;
}

/** Show `error` (an ApiError, an Error or a sentence) in `element`; null hides it. */
export function showError(element, error) {
  if (!error) {
    element.hidden = true;
    element.textContent = '';
    return;
  }
  element.textContent = typeof error === 'string' ? error : (error.text || error.message);
  element.hidden = false;
}
