// Small DOM helpers shared by the screens: build elements, and update them
// only when a value changed (so assistive technology hears only changes).

export interface ElProps {
  class?: string;
  text?: string;
  attrs?: Record<string, string>;
  hidden?: boolean;
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: ElProps = {},
  ...children: Node[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (props.class) node.className = props.class;
  if (props.text !== undefined) node.textContent = props.text;
  if (props.hidden) node.hidden = true;
  for (const [name, value] of Object.entries(props.attrs ?? {})) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

export function setText(node: Element, text: string): void {
  if (node.textContent !== text) node.textContent = text;
}

export function setClass(node: Element, className: string): void {
  if (node.className !== className) node.className = className;
}

export function setAttr(node: Element, name: string, value: string | null): void {
  if (value === null) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else if (node.getAttribute(name) !== value) {
    node.setAttribute(name, value);
  }
}

export function setHidden(node: HTMLElement, hidden: boolean): void {
  if (node.hidden !== hidden) node.hidden = hidden;
}

let nextId = 0;
/** A document-unique id for label/description wiring. */
export function uniqueId(prefix: string): string {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/**
 * Texts that follow the language: each binding sets a node's text (or an
 * attribute) from the current messages, and `apply` re-runs them all.
 */
export class Labels<M> {
  private readonly bindings: ((m: M) => void)[] = [];

  text(node: Element, pick: (m: M) => string): void {
    this.bindings.push((m) => setText(node, pick(m)));
  }

  attr(node: Element, name: string, pick: (m: M) => string): void {
    this.bindings.push((m) => setAttr(node, name, pick(m)));
  }

  apply(m: M): void {
    for (const bind of this.bindings) bind(m);
  }
}
