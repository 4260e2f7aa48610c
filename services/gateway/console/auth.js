// Connecting Google Drive with the popup flow: the gateway gives an authorization URL, Google (or the
// emulator) signs the person in inside a popup and redirects it to the gateway's callback page, which posts an
// `oauth-complete` message back to this window.

import { api } from './api.js';

const CALLBACK_PATH = '/api/v2/cloud-storage/auth/google_drive/callback';
const POLL_CLOSED_MS = 400;
/** The callback page posts just before it closes itself: its message may arrive a moment after. */
const CLOSED_GRACE_MS = 1500;
/** The gateway's OAuth state lives 10 minutes; no point waiting longer. */
const GIVE_UP_MS = 10 * 60 * 1000;

/** A failure reported by the callback page: Google's or the gateway's words, to be shown as text. */
export class OAuthFailure extends Error {
  constructor(message, description) {
    super(message);
    this.name = 'OAuthFailure';
    this.description = description || '';
  }
}

/**
 * Runs the flow; call it from a click handler (the popup is opened at once so pop-up blockers allow it).
 * Resolves with the connection the callback reported; rejects with an Error saying what to do next.
 */
export function connectDrive({ loginHint, onWaiting } = {}) {
  const popup = window.open('', 'ferry-google-sign-in', 'popup,width=520,height=680');
  if (!popup) {
    return Promise.reject(
      new Error('The browser blocked the sign-in window. Allow pop-ups for this page, then click Connect Google Drive again.'),
    );
  }
  try {
    popup.document.title = 'Connecting Google Drive…';
    popup.document.body.textContent = 'Opening Google sign-in…';
  } catch {
    // Not ours to write to any more: harmless.
  }

  return new Promise((resolve, reject) => {
    let settled = false;
    let closedTimer = 0;
    let graceTimer = 0;
    const deadline = setTimeout(() => {
      closeQuietly(popup);
      finish(reject, new Error('Google did not answer within 10 minutes. Click Connect Google Drive to start again.'));
    }, GIVE_UP_MS);

    function finish(settle, value) {
      if (settled) return;
      settled = true;
      window.removeEventListener('message', onMessage);
      clearInterval(closedTimer);
      clearTimeout(graceTimer);
      clearTimeout(deadline);
      settle(value);
    }

    function onMessage(event) {
      // Only the gateway's own callback page, in the very window opened here, may answer.
      if (event.origin !== window.location.origin || event.source !== popup) return;
      const data = event.data;
      if (!data || typeof data !== 'object' || data.type !== 'oauth-complete') return;
      if (data.success === true && data.connection && typeof data.connection === 'object') {
        finish(resolve, data.connection);
      } else {
        const description = typeof data.error_description === 'string' ? data.error_description : '';
        finish(reject, new OAuthFailure(String(data.error || 'The account was not connected'), description));
      }
    }
    window.addEventListener('message', onMessage);

    api
      .post('/cloud-storage/auth/google_drive', {
        provider: 'google_drive',
        redirect_uri: `${window.location.origin}${CALLBACK_PATH}`,
        login_hint: loginHint || undefined,
      })
      .then((started) => {
        if (settled) return;
        let target;
        try {
          target = new URL(String(started.authorization_url));
        } catch {
          target = null;
        }
        if (!target || (target.protocol !== 'https:' && target.protocol !== 'http:')) {
          closeQuietly(popup);
          finish(reject, new Error('The gateway gave no usable sign-in address. Check its google.auth_url setting.'));
          return;
        }
        if (popup.closed) {
          finish(reject, new Error('The sign-in window was closed. Click Connect Google Drive to try again.'));
          return;
        }
        popup.location.href = target.href;
        if (onWaiting) onWaiting();
      })
      .catch((err) => {
        closeQuietly(popup);
        finish(reject, err);
      });

    closedTimer = setInterval(() => {
      if (settled || !popup.closed) return;
      clearInterval(closedTimer);
      graceTimer = setTimeout(() => {
        finish(reject, new Error('The sign-in window was closed before Google finished. Click Connect Google Drive to try again.'));
      }, CLOSED_GRACE_MS);
    }, POLL_CLOSED_MS);
  });
}

function closeQuietly(popup) {
  try {
    popup.close();
  } catch {
    // Already gone.
  }
}
