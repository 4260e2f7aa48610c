// The console's only way out: Ferry's public API on this page's own origin, with the API key as a bearer
// token. Errors come back as ApiError carrying the API's stable code and message.

const KEY_STORAGE = 'ferry.console.apiKey';

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

/** The key lives in sessionStorage: this tab only, gone when it closes, never in a URL. */
export const session = {
  key() {
    try {
      return sessionStorage.getItem(KEY_STORAGE) || '';
    } catch {
      return '';
    }
  },
  save(key) {
    sessionStorage.setItem(KEY_STORAGE, key);
  },
  clear() {
    try {
      sessionStorage.removeItem(KEY_STORAGE);
    } catch {
      // Storage disabled: nothing was kept.
    }
  },
};

let unauthorized = null;

/** Called when the session's key is refused (revoked while the console is open). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

export function apiUrl(path, query) {
  const url = new URL(`/api/v2${path}`, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, String(value));
  }
  return url;
}

function headers(key, extra) {
  return { Authorization: `Bearer ${key}`, ...extra };
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's error page): fall back to the status.
  }
  const error = body && typeof body === 'object' ? body.error : null;
  if (error && typeof error === 'object') {
    return new ApiError(response.status, String(error.code || `HTTP_${response.status}`),
      String(error.message || `The gateway answered ${response.status}`), error.details);
  }
  return new ApiError(response.status, `HTTP_${response.status}`, `The gateway answered ${response.status}`);
}

/**
 * Sends a request to the API and returns the response when it is a success; throws ApiError otherwise.
 * `explicitKey`: a key being tried (sign-in), whose refusal does not end the session.
 */
async function send(url, init, explicitKey) {
  let response;
  try {
    response = await fetch(url, { ...init, cache: 'no-store', credentials: 'omit' });
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError(0, 'NETWORK', 'The gateway could not be reached. Check that Ferry is running, then try again.');
  }
  if (!response.ok) {
    if (response.status === 401 && !explicitKey && unauthorized) setTimeout(unauthorized, 0);
    throw await errorFrom(response);
  }
  return response;
}

/**
 * One JSON request. `options`: `query`, `body` (sent as JSON), `signal`, `key` (defaults to the session's).
 */
export async function request(method, path, options = {}) {
  const extra = { Accept: 'application/json' };
  let body;
  if (options.body !== undefined) {
    extra['Content-Type'] = 'application/json';
    body = JSON.stringify(options.body);
  }
  const response = await send(apiUrl(path, options.query), {
    method,
    headers: headers(options.key ?? session.key(), extra),
    body,
    signal: options.signal,
  }, options.key);
  if (response.status === 204) return null;
  try {
    return await response.json();
  } catch {
    throw new ApiError(response.status, 'BAD_RESPONSE', 'The gateway sent an answer the console cannot read.');
  }
}

export const api = {
  get: (path, query, signal) => request('GET', path, { query, signal }),
  post: (path, body) => request('POST', path, { body }),
  del: (path) => request('DELETE', path),
};

/**
 * Reads a server-sent event stream with the bearer key (EventSource cannot send headers), calling
 * `onEvent(name, data)` per event. Resolves when the server closes the stream; rejects on errors.
 */
export async function readEvents(path, onEvent, signal) {
  const response = await send(apiUrl(path), {
    headers: headers(session.key(), { Accept: 'text/event-stream' }),
    signal,
  });
  if (!response.body) throw new ApiError(0, 'NO_STREAM', 'This browser cannot read event streams.');
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      dispatchFrame(frame, onEvent);
    }
  }
}

function dispatchFrame(frame, onEvent) {
  let name = 'message';
  const data = [];
  for (const line of frame.split('\n')) {
    if (!line || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') name = value;
    else if (field === 'data') data.push(value);
  }
  if (data.length === 0) return;
  let parsed;
  try {
    parsed = JSON.parse(data.join('\n'));
  } catch {
    return;
  }
  onEvent(name, parsed);
}

/** Downloads a stored file through the API (the key goes in a header, so a plain link cannot do it). */
export async function download(fileId, name) {
  const response = await send(apiUrl(`/files/${encodeURIComponent(fileId)}/content`), { headers: headers(session.key()) });
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = name || fileId;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
