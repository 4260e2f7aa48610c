// Ferry console: signs in with an API key, then wires the Google Drive, store and jobs views together.

import { onUnauthorized, request, session } from './api.js';
import { $, say } from './dom.js';
import { createDrive } from './drive.js';
import { createJobs } from './jobs.js';
import { createStore } from './store.js';

/** The official SDK's key pattern; Ferry's keys are `fry_` + 43 URL-safe characters. */
const KEY_PATTERN = /^[a-z]+_[A-Za-z0-9_-]{20,}$/;

const els = {
  signInView: $('#sign-in-view'),
  signInForm: $('#sign-in-form'),
  key: $('#api-key'),
  signInButton: $('#sign-in'),
  signInStatus: $('#sign-in-status'),
  appView: $('#app-view'),
  sessionBox: $('#session'),
  sessionLabel: $('#session-label'),
  signOut: $('#sign-out'),
  tabs: [...document.querySelectorAll('[data-tab]')],
  jobs: $('#jobs'),
  jobsState: $('#jobs-state'),
  jobsRefresh: $('#jobs-refresh'),
};

let store;
const jobs = createJobs({
  list: els.jobs,
  state: els.jobsState,
  onFinished: (job) => {
    if (job.type === 'import' && store) store.refresh();
  },
});
store = createStore({ jobs });
const drive = createDrive({
  jobs,
  onConnections: (connections, chosen) => store.setConnections(connections, chosen),
  onFolder: (connectionId, folder) => store.setDriveFolder(connectionId, folder),
});

function showTab(name, focus) {
  for (const tab of els.tabs) {
    const selected = tab.dataset.tab === name;
    tab.setAttribute('aria-selected', String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $(`#${tab.getAttribute('aria-controls')}`).hidden = !selected;
    if (selected && focus) tab.focus();
  }
  if (name === 'store') store.refresh();
}

els.tabs.forEach((tab, i) => {
  tab.addEventListener('click', () => showTab(tab.dataset.tab));
  // Arrow keys move between tabs, as in any tab list.
  tab.addEventListener('keydown', (event) => {
    const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
    if (!step) return;
    event.preventDefault();
    showTab(els.tabs[(i + step + els.tabs.length) % els.tabs.length].dataset.tab, true);
  });
});

function enter() {
  const key = session.key();
  els.signInView.hidden = true;
  els.appView.hidden = false;
  els.sessionBox.hidden = false;
  els.sessionLabel.textContent = `Signed in with ${key.slice(0, 8)}…`;
  showTab('drive');
  drive.start();
  jobs.loadRecent();
}

function leave(message) {
  session.clear();
  drive.reset();
  store.reset();
  jobs.reset();
  els.appView.hidden = true;
  els.sessionBox.hidden = true;
  els.signInView.hidden = false;
  if (message) say(els.signInStatus, 'error', message);
  else say(els.signInStatus, '');
  els.key.focus();
}

els.signInForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const key = els.key.value.trim();
  if (!KEY_PATTERN.test(key)) {
    say(els.signInStatus, 'error',
      'That does not look like a Ferry API key. Keys start with “fry_” followed by at least 20 letters, digits, “-” or “_”.');
    els.key.focus();
    return;
  }
  els.signInButton.disabled = true;
  say(els.signInStatus, 'info', 'Checking the key…');
  try {
    await request('GET', '/cloud-storage/connections', { key, query: { limit: 1 } });
  } catch (err) {
    say(els.signInStatus, 'error', err.status === 401
      ? 'The gateway did not accept this key. Check that it was copied whole, or create a new one with “ferryctl api-key create --tenant NAME”.'
      : `Could not check the key: ${err.message}`);
    els.signInButton.disabled = false;
    els.key.focus();
    return;
  }
  els.signInButton.disabled = false;
  session.save(key);
  els.key.value = '';
  say(els.signInStatus, '');
  enter();
});

els.signOut.addEventListener('click', () => leave());
els.jobsRefresh.addEventListener('click', () => jobs.loadRecent());
onUnauthorized(() => {
  if (session.key()) leave('The API key stopped working (it may have been revoked). Sign in again with a valid key.');
});

if (session.key()) enter();
else els.key.focus();
