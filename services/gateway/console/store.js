// The Ferry store tab: the tree of folders and files, search by name, download, and exporting the selected
// files to a new or existing Google Drive folder.

import { api, download } from './api.js';
import { $, h, replace, say, setState } from './dom.js';
import { bytes, kind, plural, when } from './format.js';

const PAGE_SIZE = 50;
/** Search reads the newest files page by page, up to this many (the API has no name filter). */
const SEARCH_LIMIT = 1000;
const SEARCH_PAGE = 200;
const MAX_FILES_PER_JOB = 1000;
const STATUS_WORDS = { pending: 'Importing', ready: 'Ready', failed: 'Failed' };

export function createStore({ jobs }) {
  const els = {
    crumbs: $('#store-crumbs'),
    entries: $('#store-entries'),
    state: $('#store-state'),
    more: $('#store-more'),
    refresh: $('#store-refresh'),
    searchForm: $('#search-form'),
    search: $('#search'),
    clearSearch: $('#clear-search'),
    exportCount: $('#export-count'),
    exportClear: $('#export-clear'),
    connection: $('#export-connection'),
    folderName: $('#export-folder-name'),
    intoCurrent: $('#export-into-current'),
    intoCurrentLabel: $('#export-into-label'),
    destination: $('#export-destination'),
    exportButton: $('#export-selected'),
    exportStatus: $('#export-status'),
  };
  /** The folder path from the top level: [{id, name}]. */
  let path = [];
  let offset = 0;
  let query = '';
  let loadSeq = 0;
  let entrySeq = 0;
  let driveFolder = { connectionId: null, id: null, name: 'My Drive' };
  /** Files picked for export, by file id. */
  const picks = new Map();

  const here = () => (path.length ? path[path.length - 1].id : null);

  async function load(more) {
    const seq = ++loadSeq;
    els.more.hidden = true;
    if (!more) {
      offset = 0;
      els.entries.replaceChildren();
    }
    renderCrumbs();
    setState(els.state, 'loading', query ? `Searching for “${query}”…` : 'Loading the store…');
    try {
      if (query) await searchInto(seq);
      else await listInto(seq, more);
    } catch (err) {
      if (seq !== loadSeq) return;
      setState(els.state, 'error', `Could not load the store: ${err.message}`, { label: 'Try again', run: () => load(more) });
    }
  }

  async function listInto(seq, more) {
    const folderId = here();
    const [folders, files] = await Promise.all([
      more ? Promise.resolve({ items: [] }) : api.get('/folders', { parent_id: folderId || undefined, limit: 200 }),
      api.get('/files', { folder_id: folderId || 'root', limit: PAGE_SIZE, offset }),
    ]);
    if (seq !== loadSeq) return;
    const folderRows = Array.isArray(folders.items) ? folders.items : [];
    const fileRows = Array.isArray(files.items) ? files.items : [];
    els.entries.append(...folderRows.map(renderFolder), ...fileRows.map(renderFile));
    offset += fileRows.length;
    els.more.hidden = !files.has_more;
    if (!els.entries.childElementCount) {
      setState(els.state, 'empty', folderId
        ? 'This folder is empty.'
        : 'The store is empty. Import files from Google Drive (the Google Drive tab) and they appear here.');
    } else {
      const total = Number(files.total_count) || 0;
      setState(els.state, '', files.has_more ? '' : `${plural(total, 'file', 'files')} here.`);
    }
  }

  async function searchInto(seq) {
    const needle = query.toLocaleLowerCase();
    const found = [];
    let read = 0;
    let total = 0;
    for (let at = 0; at < SEARCH_LIMIT; at += SEARCH_PAGE) {
      const page = await api.get('/files', { limit: SEARCH_PAGE, offset: at });
      if (seq !== loadSeq) return;
      const rows = Array.isArray(page.items) ? page.items : [];
      read += rows.length;
      total = Number(page.total_count) || read;
      found.push(...rows.filter((f) => String(f.name ?? '').toLocaleLowerCase().includes(needle)));
      if (!page.has_more) break;
    }
    els.entries.append(...found.map(renderFile));
    const scope = total > read ? ` among the newest ${read} of ${total} files` : '';
    setState(els.state, found.length ? '' : 'empty', found.length
      ? `${plural(found.length, 'file matches', 'files match')} “${query}”${scope}.`
      : `No file name contains “${query}”${scope}. Check the spelling, or clear the search.`);
  }

  function renderCrumbs() {
    const nodes = [];
    if (query) {
      nodes.push(h('span', { class: 'crumb current' }, 'Search results'));
    } else {
      nodes.push(path.length
        ? h('button', { type: 'button', class: 'crumb link', onclick: () => go([]) }, 'Store')
        : h('span', { class: 'crumb current', 'aria-current': 'location' }, 'Store'));
      path.forEach((p, i) => {
        nodes.push(h('span', { class: 'sep', 'aria-hidden': 'true' }, '/'));
        nodes.push(i === path.length - 1
          ? h('span', { class: 'crumb current remote', 'aria-current': 'location' }, p.name)
          : h('button', { type: 'button', class: 'crumb link remote', onclick: () => go(path.slice(0, i + 1)) }, p.name));
      });
    }
    replace(els.crumbs, nodes);
  }

  function go(newPath) {
    path = newPath;
    load(false);
  }

  function renderFolder(folder) {
    const name = String(folder.name ?? '');
    return h('li', { class: 'entry is-folder', 'data-testid': 'store-folder', dataset: { name, id: String(folder.id) } },
      h('span', { class: 'icon folder', 'aria-hidden': 'true' }),
      h('div', { class: 'entry-main' },
        h('button', { type: 'button', class: 'name link remote', onclick: () => go([...path, { id: String(folder.id), name }]) }, name),
        h('span', { class: 'muted small' }, `Folder · ${when(folder.created_at)}`)));
  }

  function renderFile(file) {
    const id = String(file.id);
    const name = String(file.name ?? '');
    const status = String(file.status || 'pending');
    const ready = status === 'ready';
    const inputId = `export-pick-${++entrySeq}`;
    const details = [kind(file.mime_type, false), bytes(file.size_bytes), when(file.created_at)].filter(Boolean).join(' · ');
    const failure = file.error && typeof file.error === 'object' ? file.error : null;
    const downloadButton = ready
      ? h('button', {
        type: 'button',
        class: 'small ghost',
        'aria-label': `Download ${name}`,
        onclick: async (event) => {
          const button = event.currentTarget;
          button.disabled = true;
          try {
            await download(id, name);
          } catch (err) {
            setState(els.state, 'error', `Could not download “${name}”: ${err.message}`);
          } finally {
            button.disabled = false;
          }
        },
      }, 'Download')
      : null;
    return h('li', { class: `entry${ready ? '' : ` ${status === 'failed' ? 'failed' : 'pending'}`}`, 'data-testid': 'file-entry', dataset: { name, id, status } },
      h('input', {
        type: 'checkbox',
        id: inputId,
        'data-testid': 'pick',
        checked: picks.has(id),
        disabled: !ready,
        onchange: (event) => {
          if (event.target.checked) picks.set(id, name);
          else picks.delete(id);
          renderExport();
        },
      }),
      h('div', { class: 'entry-main' },
        h('label', { for: inputId, class: 'name remote' }, name),
        h('span', { class: 'muted small' }, details, ' ', h('span', { class: `badge ${STATUS_WORDS[status] ? status : 'unknown'}` }, STATUS_WORDS[status] || status)),
        failure ? h('span', { class: 'item-error' }, String(failure.message || failure.code || 'failed')) : null),
      downloadButton);
  }

  // --- export ------------------------------------------------------------------------------------------

  function renderExport() {
    const n = picks.size;
    els.exportCount.textContent = n
      ? `${plural(n, 'file', 'files')} selected for export.`
      : 'Select ready files in the list to export them to Google Drive.';
    els.exportClear.hidden = n === 0;
    const name = els.folderName.value.trim();
    const usable = driveFolder.id && driveFolder.id !== 'shared_with_me' && driveFolder.connectionId === els.connection.value;
    els.intoCurrent.disabled = !usable;
    if (!usable) els.intoCurrent.checked = false;
    replace(els.intoCurrentLabel, usable
      ? ['Inside the Drive folder open in the Google Drive tab: ', h('strong', { class: 'remote' }, driveFolder.name)]
      : 'Inside the Drive folder open in the Google Drive tab (open one there first)');
    const parent = els.intoCurrent.checked ? ['the Drive folder ', h('strong', { class: 'remote' }, driveFolder.name)] : ['My Drive'];
    replace(els.destination, 'Destination: ',
      name ? ['a new folder ', h('strong', { class: 'remote' }, name), ' in ', parent] : parent, '.');
    els.exportButton.disabled = n === 0 || !els.connection.value;
  }

  function setConnections(connections, preferred) {
    const previous = els.connection.value;
    replace(els.connection, connections.map((c) => h('option', { value: String(c.id) },
      String(c.provider_email || c.provider_display_name || c.id))));
    if (!connections.length) {
      els.connection.append(h('option', { value: '' }, 'Connect a Google Drive first'));
    }
    const keep = [previous, preferred].find((id) => id && connections.some((c) => c.id === id));
    els.connection.value = keep || (connections[0] ? String(connections[0].id) : '');
    els.connection.disabled = connections.length === 0;
    renderExport();
  }

  async function startExport() {
    const ids = [...picks.keys()];
    const connectionId = els.connection.value;
    if (!ids.length || !connectionId) return;
    if (ids.length > MAX_FILES_PER_JOB) {
      say(els.exportStatus, 'error', `One export takes at most ${MAX_FILES_PER_JOB} files; unselect some and try again.`);
      return;
    }
    const name = els.folderName.value.trim();
    if (name.length > 255) {
      say(els.exportStatus, 'error', 'The new folder name is too long: use at most 255 characters.');
      els.folderName.focus();
      return;
    }
    const body = { connection_id: connectionId, image_ids: ids };
    if (name) body.folder_name = name;
    if (els.intoCurrent.checked && driveFolder.id) body.folder_id = driveFolder.id;
    els.exportButton.disabled = true;
    say(els.exportStatus, 'info', `Starting the export of ${plural(ids.length, 'file', 'files')}…`);
    try {
      const started = await api.post('/cloud-storage/export', body);
      jobs.watch(String(started.job_id), { label: `Export of ${plural(ids.length, 'file', 'files')}` });
      say(els.exportStatus, 'ok', `Export started: ${plural(ids.length, 'file', 'files')}. Progress shows under Jobs.`);
      clearPicks();
    } catch (err) {
      say(els.exportStatus, 'error', `The export was not started: ${err.message}`);
    } finally {
      renderExport();
    }
  }

  function clearPicks() {
    picks.clear();
    for (const box of els.entries.querySelectorAll('input[data-testid="pick"]')) box.checked = false;
    renderExport();
  }

  els.more.addEventListener('click', () => load(true));
  els.refresh.addEventListener('click', () => load(false));
  els.searchForm.addEventListener('submit', (event) => {
    event.preventDefault();
    query = els.search.value.trim();
    els.clearSearch.hidden = !query;
    load(false);
  });
  els.clearSearch.addEventListener('click', () => {
    els.search.value = '';
    query = '';
    els.clearSearch.hidden = true;
    load(false);
    els.search.focus();
  });
  els.exportClear.addEventListener('click', clearPicks);
  els.folderName.addEventListener('input', renderExport);
  els.intoCurrent.addEventListener('change', renderExport);
  els.connection.addEventListener('change', renderExport);
  els.exportButton.addEventListener('click', startExport);

  return {
    refresh: () => load(false),
    setConnections,
    setDriveFolder(connectionId, folder) {
      driveFolder = { connectionId, id: folder ? folder.id : null, name: folder ? folder.name : 'My Drive' };
      renderExport();
    },
    reset() {
      path = [];
      query = '';
      loadSeq += 1;
      picks.clear();
      els.search.value = '';
      els.clearSearch.hidden = true;
      els.folderName.value = '';
      els.entries.replaceChildren();
      say(els.exportStatus, '');
      renderExport();
    },
  };
}
