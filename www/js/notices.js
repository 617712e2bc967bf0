// Notices: the short messages that tell the user what happened (declined, busy, no answer,
// cancelled, missed, kicked out, errors). Each shows as a toast, and the latest one also stays
// on the home screen so a message is not lost when the call screen closes at the same moment.

const TOAST_MS = { error: 9000, kicked: 12000 };
const DEFAULT_TOAST_MS = 6000;

export class Notices {
  constructor(container, lastLine) {
    this.container = container;
    this.lastLine = lastLine;
  }

  /**
   * Shows `text`. `kind` is one of: rejected, busy, noanswer, cancelled, timeout, missed,
   * kicked, ended, left, info, error; it picks the colour and is exposed as `data-kind`.
   */
  show(kind, text) {
    const el = document.createElement('div');
    el.className = 'notice';
    el.dataset.kind = kind;
    el.dataset.testid = 'notice';
    el.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    const body = document.createElement('span');
    body.textContent = text;
    const close = document.createElement('button');
    close.type = 'button';
    close.setAttribute('aria-label', 'Dismiss');
    close.textContent = '×';
    close.addEventListener('click', () => el.remove());
    el.append(body, close);
    this.container.append(el);
    // Keep at most three on screen; the oldest goes first.
    while (this.container.children.length > 3) this.container.firstElementChild.remove();
    setTimeout(() => el.remove(), TOAST_MS[kind] ?? DEFAULT_TOAST_MS);

    this.lastLine.textContent = text;
    this.lastLine.dataset.kind = kind;
  }

  /** Shows an error from the SDK (an `Error` with `code`, or an `ERROR` event payload). */
  error(prefix, err) {
    const msg = err?.msg ?? err?.message ?? String(err);
    const code = err?.code;
    this.show('error', `${prefix}: ${msg}${code ? ` (code ${code})` : ''}`);
  }
}
