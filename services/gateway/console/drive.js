// The Google Drive tab: connections (connect through the popup, disconnect), browsing with breadcrumbs,
// shared drives and "Shared with me", paging, picking files, and starting an import.

import { api } from './api.js';
import { OAuthFailure, connectDrive } from './auth.js';
import { $, h, replace, say, setState } from './dom.js';
import { bytes, kind, plural, when } from './format.js';

const PAGE_SIZE = 50;
const MAX_FILES_PER_JOB = 1000;
const SHARED_WITH_ME = 'shared_with_me';

export function createDrive({ jobs, onConnections, onFolder }) {
  const els = {
    connect: $('#connect-drive'),
    loginHint: $('#login-hint'),
    connectStatus: $('#connect-status'),
    connections: $('#connections'),
    connectionsState: $('#connections-state'),
    browser: $('#browser'),
    account: $('#browse-account'),
    crumbs: $('#breadcrumbs'),
    entries: $('#entries'),
    browseState: $('#browse-state'),
    more: $('#browse-more'),
    refresh: $('#browse-refresh'),
    pickAll: $('#pick-all'),
    importCount: $('#import-count'),
    clearPicks: $('#clear-picks'),
    importButton: $('#import-selected'),
    importStatus: $('#import-status'),
  };
  let connections = [];
  let connectionId = null;
  let folder = { id: null, name: 'My Drive' };
  let nextToken = null;
  let listed = [];
  let loadSeq = 0;
  let entrySeq = 0;
  /** Picked files by Drive id (they stay picked while browsing other folders of the same account). */
  const picks = new Map();

  // --- connections -------------------------------------------------------------------------------------

  async function loadConnections(preferId) {
    setState(els.connectionsState, 'loading', 'Loading your Google Drive connections…');
    let page;
    try {
      page = await api.get('/cloud-storage/connections', { limit: 100 });
    } catch (err) {
      setState(els.connectionsState, 'error', `Could not load connections: ${err.message}`, {
        label: 'Try again',
        run: () => loadConnections(preferId),
      });
      return;
    }
    connections = Array.isArray(page.items) ? page.items : Array.isArray(page.connections) ? page.connections : [];
    const wanted = [preferId, connectionId].find((id) => id && connections.some((c) => c.id === id));
    const chosen = wanted || (connections[0] && connections[0].id) || null;
    renderConnections(chosen);
    if (onConnections) onConnections(connections, chosen);
    if (!connections.length) {
      setState(els.connectionsState, 'empty',
        'No Google Drive connected yet. Click “Connect Google Drive” and sign in in the window that opens.');
      select(null);
    } else {
      setState(els.connectionsState, '', '');
      if (chosen !== connectionId) select(chosen);
    }
  }

  function accountName(c) {
    return String(c.provider_display_name || c.provider_email || 'Google Drive account');
  }

  function renderConnections(selectedId) {
    replace(els.connections, connections.map((c) => {
      const selected = c.id === selectedId;
      const actions = h('div', { class: 'row-actions' });
      const showActions = () => replace(actions,
        h('button', {
          type: 'button',
          class: selected ? 'small' : 'small primary',
          'aria-pressed': String(selected),
          onclick: () => select(c.id),
        }, selected ? 'Browsing' : 'Browse'),
        h('button', { type: 'button', class: 'small ghost', onclick: confirmDisconnect }, 'Disconnect'));
      function confirmDisconnect() {
        const yes = h('button', { type: 'button', class: 'small danger', onclick: () => disconnect(c, actions) }, 'Disconnect');
        replace(actions, h('span', { class: 'confirm' }, 'Disconnect this account?'), yes,
          h('button', { type: 'button', class: 'small ghost', onclick: showActions }, 'Keep'));
        yes.focus();
      }
      showActions();
      return h('li', {
        class: `connection${selected ? ' selected' : ''}`,
        'data-testid': 'connection',
        dataset: { id: c.id },
      },
      h('div', { class: 'row-main' },
        h('strong', { class: 'remote' }, accountName(c)),
        c.provider_email && c.provider_display_name ? h('span', { class: 'muted remote' }, String(c.provider_email)) : null,
        h('span', { class: 'muted small' }, `Connected ${when(c.connected_at || c.created_at)}`)),
      actions);
    }));
  }

  async function disconnect(c, actions) {
    replace(actions, h('span', { class: 'muted' }, 'Disconnecting…'));
    try {
      await api.del(`/cloud-storage/connections/${encodeURIComponent(c.id)}`);
      say(els.connectStatus, 'ok', `Disconnected ${accountName(c)}. Ferry can no longer read that Drive.`);
    } catch (err) {
      say(els.connectStatus, 'error', `Could not disconnect: ${err.message}`);
    }
    if (c.id === connectionId) select(null);
    loadConnections();
  }

  function startConnect() {
    els.connect.disabled = true;
    say(els.connectStatus, 'info', 'Opening the Google sign-in window…');
    connectDrive({
      loginHint: els.loginHint.value.trim(),
      onWaiting: () => say(els.connectStatus, 'info',
        'Finish signing in in the Google window. This page updates by itself when you are done.'),
    })
      .then((connection) => {
        const who = connection.provider_email || connection.display_name || 'the account';
        say(els.connectStatus, 'ok', `Connected ${who}. Browse it below.`);
        loadConnections(connection.id);
      })
      .catch((err) => {
        if (err instanceof OAuthFailure) {
          say(els.connectStatus, 'error',
            'Google did not connect the account: ',
            h('span', { class: 'remote', 'data-testid': 'oauth-error' }, err.message),
            err.description ? [' (', h('span', { class: 'remote description', 'data-testid': 'oauth-error-description' }, err.description), ')'] : null,
            '. Try again, or sign in with another account.');
        } else {
          say(els.connectStatus, 'error', err.message);
        }
      })
      .finally(() => {
        els.connect.disabled = false;
      });
  }

  // --- browsing ----------------------------------------------------------------------------------------

  function select(id) {
    const changed = id !== connectionId;
    connectionId = id;
    if (changed) picks.clear();
    renderConnections(id);
    const connection = connections.find((c) => c.id === id);
    els.browser.hidden = !connection;
    els.account.textContent = connection ? accountName(connection) : '';
    if (connection) open(null);
    else {
      folder = { id: null, name: 'My Drive' };
      if (onFolder) onFolder(null, folder);
    }
    renderPicks();
  }

  async function open(folderId, pageToken) {
    if (!connectionId) return;
    const seq = ++loadSeq;
    const append = Boolean(pageToken);
    els.more.hidden = true;
    if (!append) {
      listed = [];
      els.entries.replaceChildren();
      els.pickAll.checked = false;
    }
    setState(els.browseState, 'loading', append ? 'Loading more…' : 'Loading this folder…');
    els.entries.setAttribute('aria-busy', 'true');
    let page;
    try {
      page = await api.get(`/cloud-storage/connections/${encodeURIComponent(connectionId)}/browse`, {
        folder_id: folderId,
        page_token: pageToken,
        page_size: PAGE_SIZE,
      });
    } catch (err) {
      if (seq !== loadSeq) return;
      els.entries.removeAttribute('aria-busy');
      const hint = err.code === 'NOT_FOUND' ? ' It may have been deleted or the account disconnected.'
        : err.code === 'RATE_LIMITED' ? ' Google is limiting requests; wait a moment.' : '';
      setState(els.browseState, 'error', `Could not open this folder: ${err.message}.${hint}`, {
        label: 'Try again',
        run: () => open(folderId, pageToken),
      });
      if (append && nextToken) els.more.hidden = false;
      return;
    }
    if (seq !== loadSeq) return;
    els.entries.removeAttribute('aria-busy');
    const crumbs = Array.isArray(page.breadcrumbs) ? page.breadcrumbs : [];
    if (!append) {
      const last = crumbs[crumbs.length - 1];
      folder = folderId ? { id: folderId, name: String((last && last.name) || 'Folder') } : { id: null, name: 'My Drive' };
      renderCrumbs(crumbs);
      if (onFolder) onFolder(connectionId, folder);
    }
    const files = Array.isArray(page.files) ? page.files : [];
    listed = listed.concat(files);
    els.entries.append(...files.map(renderEntry));
    nextToken = page.next_page_token || null;
    els.more.hidden = !nextToken;
    if (!listed.length) {
      setState(els.browseState, 'empty', folderId === SHARED_WITH_ME
        ? 'Nothing has been shared with this account.'
        : 'This folder is empty. Go back with the path above, or open another folder.');
    } else {
      setState(els.browseState, '', nextToken ? '' : `${plural(listed.length, 'item', 'items')} in this folder.`);
    }
    syncPickAll();
  }

  function renderCrumbs(crumbs) {
    // The trail from the API may start at the drive's root folder: "My Drive" stands for it.
    const trail = crumbs.filter((c, i) => !(i === 0 && crumbs.length > 0 && c.name === 'My Drive' && c.id !== folder.id));
    const nodes = [];
    const atRoot = !folder.id;
    nodes.push(atRoot
      ? h('span', { class: 'crumb current', 'aria-current': 'location' }, 'My Drive')
      : h('button', { type: 'button', class: 'crumb link', onclick: () => open(null) }, 'My Drive'));
    trail.forEach((crumb, i) => {
      nodes.push(h('span', { class: 'sep', 'aria-hidden': 'true' }, '/'));
      const last = i === trail.length - 1;
      const name = String(crumb.name || 'Folder');
      nodes.push(last
        ? h('span', { class: 'crumb current remote', 'aria-current': 'location' }, name)
        : h('button', { type: 'button', class: 'crumb link remote', onclick: () => open(String(crumb.id)) }, name));
    });
    replace(els.crumbs, nodes);
  }

  function renderEntry(f) {
    const id = String(f.id);
    const name = String(f.name ?? '');
    const inputId = `pick-${++entrySeq}`;
    const folderEntry = Boolean(f.is_folder);
    const importable = !folderEntry && Boolean(f.is_importable);
    const details = [kind(f.mime_type, folderEntry), bytes(f.size_bytes), when(f.modified_at)].filter(Boolean).join(' · ');
    let lead;
    let title;
    if (folderEntry) {
      lead = h('span', { class: 'icon folder', 'aria-hidden': 'true' });
      title = h('button', { type: 'button', class: 'name link remote', onclick: () => open(id) }, name);
    } else {
      lead = h('input', {
        type: 'checkbox',
        id: inputId,
        'data-testid': 'pick',
        checked: picks.has(id),
        disabled: !importable,
        onchange: (event) => {
          if (event.target.checked) picks.set(id, fileOf(f));
          else picks.delete(id);
          renderPicks();
          syncPickAll();
        },
      });
      title = h('label', { for: inputId, class: 'name remote' }, name);
    }
    return h('li', {
      class: `entry${folderEntry ? ' is-folder' : ''}${importable || folderEntry ? '' : ' not-importable'}`,
      'data-testid': 'browse-entry',
      dataset: { name, id, folder: folderEntry ? 'true' : 'false' },
    },
    lead,
    h('div', { class: 'entry-main' }, title,
      h('span', { class: 'muted small' }, details,
        !folderEntry && !importable ? h('span', { class: 'tag' }, 'cannot be imported') : null)));
  }

  function fileOf(f) {
    const file = { id: String(f.id), name: String(f.name ?? '') };
    if (f.mime_type) file.mime_type = String(f.mime_type);
    if (Number.isFinite(f.size_bytes)) file.size_bytes = f.size_bytes;
    return file;
  }

  function syncPickAll() {
    const boxes = [...els.entries.querySelectorAll('input[data-testid="pick"]:not(:disabled)')];
    els.pickAll.disabled = boxes.length === 0;
    els.pickAll.checked = boxes.length > 0 && boxes.every((b) => b.checked);
  }

  function pickAll(checked) {
    for (const f of listed) {
      if (f.is_folder || !f.is_importable) continue;
      if (checked) picks.set(String(f.id), fileOf(f));
      else picks.delete(String(f.id));
    }
    for (const box of els.entries.querySelectorAll('input[data-testid="pick"]:not(:disabled)')) box.checked = checked;
    renderPicks();
  }

  function renderPicks() {
    const n = picks.size;
    els.importCount.textContent = n ? `${plural(n, 'file', 'files')} selected` : 'No files selected';
    els.importButton.disabled = n === 0 || !connectionId;
    els.clearPicks.hidden = n === 0;
  }

  function clearPicks() {
    picks.clear();
    for (const box of els.entries.querySelectorAll('input[data-testid="pick"]')) box.checked = false;
    renderPicks();
    syncPickAll();
  }

  async function startImport() {
    const files = [...picks.values()];
    if (!files.length || !connectionId) return;
    if (files.length > MAX_FILES_PER_JOB) {
      say(els.importStatus, 'error', `One import takes at most ${MAX_FILES_PER_JOB} files; ${files.length} are selected. Unselect some and try again.`);
      return;
    }
    els.importButton.disabled = true;
    say(els.importStatus, 'info', `Starting the import of ${plural(files.length, 'file', 'files')}…`);
    try {
      const started = await api.post('/cloud-storage/import', { connection_id: connectionId, files, tags: [] });
      jobs.watch(String(started.job_id), { label: `Import of ${plural(files.length, 'file', 'files')}` });
      say(els.importStatus, 'ok', `Import started: ${plural(files.length, 'file', 'files')}. Progress shows under Jobs.`);
      clearPicks();
    } catch (err) {
      say(els.importStatus, 'error', `The import was not started: ${err.message}`);
      renderPicks();
    }
  }

  els.connect.addEventListener('click', startConnect);
  els.more.addEventListener('click', () => open(folder.id, nextToken));
  els.refresh.addEventListener('click', () => open(folder.id));
  els.pickAll.addEventListener('change', (event) => pickAll(event.target.checked));
  els.clearPicks.addEventListener('click', clearPicks);
  els.importButton.addEventListener('click', startImport);

  return {
    start() {
      loadConnections();
    },
    reset() {
      connections = [];
      connectionId = null;
      picks.clear();
      loadSeq += 1;
      els.connections.replaceChildren();
      els.entries.replaceChildren();
      els.browser.hidden = true;
      say(els.connectStatus, '');
      say(els.importStatus, '');
      renderPicks();
    },
    currentConnectionId: () => connectionId,
  };
}
