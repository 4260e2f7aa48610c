// Building the page without HTML strings: every piece of text, above all anything that came from the API or
// from Google, goes in as a text node or an attribute value, never parsed as HTML. (The page's
// Content-Security-Policy also turns on Trusted Types, so any HTML string sink would throw.)

/**
 * Creates an element. `props`: `class`, `text`, `dataset` (object), `on*` listeners, DOM properties
 * (`checked`, `disabled`, `value`, `hidden`) and any other attribute, set with setAttribute.
 * Children may be nodes, strings (added as text) or arrays of them; null/undefined/false are skipped.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = String(value);
    else if (key === 'dataset') {
      for (const [k, v] of Object.entries(value)) if (v !== undefined && v !== null) el.dataset[k] = String(v);
    } else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'checked' || key === 'disabled' || key === 'value' || key === 'hidden') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  appendChildren(el, children);
  return el;
}

function appendChildren(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) appendChildren(el, child);
    else if (child instanceof Node) el.append(child);
    else el.append(document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  appendChildren(el, children);
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

/**
 * A status line (empty, loading, error) under a list: `kind` is '', 'loading', 'empty' or 'error'.
 * `action` optionally adds a button, e.g. { label: 'Try again', run: () => ... }.
 */
export function setState(el, kind, message, action) {
  el.className = `state ${kind || ''}`.trim();
  el.hidden = !message;
  replace(el, message || '');
  if (action) {
    el.append(' ', h('button', { type: 'button', class: 'link', onclick: action.run }, action.label));
  }
}

/** A message in a role=status line: 'ok', 'error' or 'info'. */
export function say(el, kind, ...parts) {
  el.className = `status ${kind || ''}`.trim();
  replace(el, ...parts);
  el.hidden = parts.length === 0;
}
